"""Helpers for the Studio webhook/chat security tests: an app on a chosen database, and local
probe servers that answer the ways a port scan tells apart (refused, silent, reset, status)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from quart import Quart

from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.state import EXTENSION, GatewayState

LOOPBACK_ALLOWED = {"MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}


@contextlib.asynccontextmanager
async def studio_app(data_dir: Path, database_url: str | None = None,
                     **env: str) -> AsyncIterator[Quart]:
    """The app started as if served; apps sharing `data_dir` share the instance secret."""
    values = {"MEDIAGATE_DATA_DIR": str(data_dir), "STUDIO_RATE_LIMIT_RPS": "0", **env}
    if database_url is not None:
        values["MEDIAGATE_DATABASE_URL"] = database_url
    settings = Settings.from_env(values)
    await asyncio.to_thread(upgrade, settings.database_url)
    app = create_app(settings)
    async with app.test_app():
        yield app


def state_of(app: Quart) -> GatewayState:
    return app.extensions[EXTENSION]


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    answered: int | None


@dataclass
class Probe:
    """A TCP endpoint on 127.0.0.1 and the connections it saw."""

    name: str
    port: int
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Answers for the next requests, in order (then the probe's own `status`)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def closed_port() -> Probe:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Probe("refused", port)


@contextlib.asynccontextmanager
async def probe(name: str, *, status: int | None = None, reset: bool = False,
                location: str | None = None) -> AsyncIterator[Probe]:
    """`status`: answer it; `reset`: read the request, then RST; neither: never answer."""
    found = Probe(name, 0)
    hold: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        found.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            pairs = (line.split(": ", 1) for line in head[1:] if ": " in line)
            headers = {name.lower(): value for name, value in pairs}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.close()
            return
        answer = found.statuses.pop(0) if found.statuses else status
        found.requests.append(Request(headers, body, None if reset else answer))
        if reset:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if answer is None:
            hold.append(writer)  # silent: keep the connection open, say nothing
            return
        extra = f"Location: {location}\r\n" if location else ""
        writer.write(f"HTTP/1.1 {answer} X\r\n{extra}Content-Length: 0\r\n"
                     "Connection: close\r\n\r\n".encode())
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, family=socket.AF_INET)
    found.port = server.sockets[0].getsockname()[1]
    try:
        yield found
    finally:
        for writer in hold:
            writer.transport.abort()
        server.close()
