"""Issue 13 follow-up: RTMPS after IP pinning. Destinations and pull sources connect to the
address the egress guard checked, so FFmpeg's TLS (given an IP) sent no server name (SNI) and
the preflight sent the IP: a CDN ingest that routes by name fails the handshake. Every TLS
connection now carries the hostname the client gave.

The RTMPS server here is nginx-rtmp behind a TLS front on 127.0.0.1 that records the SNI of
every connection and, like a CDN, drops connections without one. The hostname is `localhost`,
allowed through MEDIAGATE_EGRESS_ALLOW."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.studio.live_helpers import Api, make_clip, start_gateway
from tests.studio.rtmp import NginxRtmp, RtmpReader


class SniFront:
    """TLS on 127.0.0.1 in front of a plain TCP server; records each connection's SNI."""

    def __init__(self, directory: Path, upstream_port: int) -> None:
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True, timeout=60)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = self._sni
        self.upstream_port = upstream_port
        self.names: list[str | None] = []
        self._name = threading.local()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self._name.value = name

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        self._name.value = None
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (OSError, ssl.SSLError):
            conn.close()
            return
        self.names.append(self._name.value)
        if self._name.value is None:  # like a CDN: no name, no route
            tls.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=_copy, args=(upstream, tls), daemon=True).start()
        _copy(tls, upstream)

    def close(self) -> None:
        self._closing = True
        self.listener.close()


def _copy(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def encoder(clip: Path, url: str) -> Iterator[None]:
    process = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
         "-c", "copy", "-f", "flv", url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.kill()
        process.wait()


def test_rtmps_keeps_the_hostname_for_tls(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    front = SniFront(tmp_path, nginx.port)
    server = start_gateway(tmp_path / "data", MEDIAGATE_EGRESS_ALLOW="127.0.0.0/8,::1/128")
    api = Api(server)
    rtmps = f"rtmps://localhost:{front.port}/live"
    clip = make_clip(tmp_path / "ingest.mp4", seconds=2, size="320x240")
    try:
        with encoder(clip, f"{nginx.url}/ingest"):
            sid, _, (destination,) = api.studio_with(
                {"name": "pull", "type": "rtmp", "url": f"{rtmps}/ingest"}, [(rtmps, "out")])
            api("POST", f"/v1/studios/{sid}/go-live", expect=200)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and api.statuses(sid)[destination][0] != "live":
                time.sleep(0.2)
            reader = RtmpReader(f"{nginx.url}/out", duration=3).start().join()
            api("POST", f"/v1/studios/{sid}/go-offline", expect=200)
        # the pulled source, the destination's preflight and its stream: all by name
        assert len(front.names) >= 3 and set(front.names) == {"localhost"}, front.names
        assert reader.error is None, reader.error
        assert reader.video_frames >= 45 and reader.audio_frames >= 60, reader
    finally:
        api.close()
        front.close()
        assert server.stop() == 0, server.log()[-5000:]
        nginx.stop()
