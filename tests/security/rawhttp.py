"""HTTP/1.1 over a plain socket: exactly the bytes a hostile or careless client sends, and
whether the connection was reset on the way."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass
class RawReply:
    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    send_error: str | None = None
    """The error a `send` hit (a reset or broken pipe means the server closed too early)."""
    recv_error: str | None = None

    @property
    def reset(self) -> bool:
        return self.send_error is not None or self.recv_error is not None


def _parse(data: bytes) -> tuple[int | None, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        return None, {}, body
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def exchange(base_url: str, method: str, path: str, headers: dict[str, str] | None = None,
             body_size: int = 0, *, timeout: float = 60, chunk: int = 64 * 1024) -> RawReply:
    """Send a request (a `body_size`-byte body of `x` when asked) on a fresh connection,
    then read the reply until the server closes or the announced length has arrived."""
    address = urlsplit(base_url)
    connection = socket.create_connection((address.hostname, address.port), timeout=timeout)
    all_headers = {"Host": f"{address.hostname}:{address.port}", **(headers or {})}
    if body_size:
        all_headers.setdefault("Content-Length", str(body_size))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in all_headers.items()) + "\r\n"
    reply = RawReply(None)
    try:
        connection.sendall(head.encode("latin-1"))
        block = b"x" * chunk
        sent = 0
        while sent < body_size:
            sent += connection.send(block[: body_size - sent])
    except OSError as exc:
        reply.send_error = type(exc).__name__
    data = b""
    try:
        while True:
            received = connection.recv(65536)
            if not received:
                break
            data += received
            status, found, body = _parse(data)
            if status is not None and "content-length" in found and \
                    len(body) >= int(found["content-length"]):
                break
    except OSError as exc:
        reply.recv_error = type(exc).__name__
    finally:
        connection.close()
    reply.status, reply.headers, reply.body = _parse(data)
    return reply
