"""RTMPS to a pinned address with the hostname kept for TLS (SNI).

Restream destinations and pull sources connect to the address the caller's check resolved
(the URL's host replaced by an IP, so FFmpeg never looks the name up again). Given an IP,
FFmpeg's TLS sends no SNI: libavformat's tls_gnutls.c / tls_openssl.c set the server name
only when the URL's host is not numeric, and the `verifyhost` option does not change that
(PyAV also opens an output's I/O without any options). A server that picks its certificate
or its backend by name (CDN ingest) then fails the handshake.

So FFmpeg speaks plain RTMP to a one-shot listener on 127.0.0.1, and a child process carries
the bytes over TLS to the checked address, with the name the client gave as SNI. A child and
not a thread: PyAV opens an output (RTMP handshake, connect, publish) holding the GIL, so no
thread of this process could forward what FFmpeg is waiting for. The child is this file run
as a script, with the standard library only.

Like FFmpeg's own TLS default, the bridge encrypts and does not verify the certificate.
"""

from __future__ import annotations

import ipaddress
import logging
import selectors
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("mediagate.media.tlsbridge")

SETUP_BYTES = 64 * 1024
"""Until the client has sent this much (handshake, connect and publish are a few KB), the
server must answer within the timeout: FFmpeg waits for it holding the GIL."""


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass
class TlsBridge:
    process: subprocess.Popen[bytes]
    port: int
    """The loopback port FFmpeg connects to (once)."""

    @classmethod
    def open(cls, address: tuple[str, int], server_name: str, timeout: float) -> TlsBridge:
        """Connect to `address` (already checked) and start the child that speaks TLS to it
        as `server_name`; raises OSError if the address does not answer within `timeout`."""
        upstream = socket.create_connection(address, timeout=timeout)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            fds = (listener.fileno(), upstream.fileno())
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", __file__, *map(str, fds), server_name,
                 str(timeout)],
                pass_fds=fds, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            return cls(process, listener.getsockname()[1])
        finally:  # the child has its own copies
            listener.close()
            upstream.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        assert self.process.stderr is not None
        try:
            self.process.wait(5)
            why = self.process.stderr.read(2000).decode(errors="replace").strip()
        finally:
            self.process.stderr.close()
        if why:
            log.info("TLS bridge to the destination ended: %s", why)


def bridged(given: str, pinned: str, timeout: float) -> tuple[str, TlsBridge | None]:
    """The URL FFmpeg should open for `pinned` (the checked address of `given`), and the
    bridge that carries it if one is needed: for rtmps:// to a name pinned to an address."""
    want, got = urlsplit(given), urlsplit(pinned)
    name = want.hostname
    if want.scheme != "rtmps" or not name or _is_ip(name) or got.hostname in (None, name):
        return pinned, None
    bridge = TlsBridge.open((got.hostname, got.port or 443), name, timeout)
    netloc = f"127.0.0.1:{bridge.port}"
    if "@" in got.netloc:
        netloc = got.netloc.rpartition("@")[0] + "@" + netloc
    return urlunsplit(got._replace(scheme="rtmp", netloc=netloc)), bridge


# -- the child ------------------------------------------------------------------------------


def _pump(local: socket.socket, remote: ssl.SSLSocket, timeout: float) -> None:
    selector = selectors.DefaultSelector()
    selector.register(local, selectors.EVENT_READ, remote)
    selector.register(remote, selectors.EVENT_READ, local)
    sent = 0
    while True:
        if remote.pending():
            ready = [remote]
        else:
            events = selector.select(timeout if sent < SETUP_BYTES else None)
            if not events:
                raise TimeoutError("the server did not answer")
            ready = [key.fileobj for key, _ in events]  # type: ignore[misc]
        for source in ready:
            assert isinstance(source, socket.socket)
            data = source.recv(65536)
            if not data:
                return
            (remote if source is local else local).sendall(data)
            if source is local:
                sent += len(data)


def main(argv: list[str]) -> int:
    listen_fd, upstream_fd, server_name, timeout = int(argv[0]), int(argv[1]), argv[2], \
        float(argv[3])
    listener = socket.socket(fileno=listen_fd)
    upstream = socket.socket(fileno=upstream_fd)
    try:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        upstream.settimeout(timeout)
        remote = context.wrap_socket(upstream, server_hostname=server_name)
        remote.settimeout(None)
        listener.settimeout(timeout)
        local, _ = listener.accept()
        listener.close()
        local.settimeout(None)
        with local, remote:
            _pump(local, remote, timeout)
    except (OSError, ValueError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
