"""Shared helpers for the Punch tests: message-schema checks and a WebSocket peer."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import websockets
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from gateway.specs import SpecStore
from tests import contract
from tests.server import RunningServer, start_server

SCHEMA_ID = "urn:test:punch-messages"


@cache
def _validator(definition: str) -> Draft202012Validator:
    schema = SpecStore().get("punch-messages")
    Draft202012Validator.check_schema(schema)
    registry = Registry().with_resource(SCHEMA_ID, Resource.from_contents(schema))
    return Draft202012Validator({"$ref": f"{SCHEMA_ID}#/$defs/{definition}"}, registry=registry)


def check_server_message(message: dict[str, Any]) -> None:
    errors = [e.message for e in _validator("ServerMessage").iter_errors(message)]
    assert not errors, f"server message {message} breaks the schema: {errors}"


def check_client_message(message: dict[str, Any]) -> None:
    errors = [e.message for e in _validator("ClientMessage").iter_errors(message)]
    assert not errors, f"client message {message} breaks the schema: {errors}"


def is_client_message(message: object) -> bool:
    return not list(_validator("ClientMessage").iter_errors(message))


def free_udp_port() -> int:
    """A port free for UDP whose +1 neighbour (the bridge port) is free too."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def serve_punch(root: Path, **env: str) -> Iterator[RunningServer]:
    """A real server for a module's fixture: no session-creation limit, `env` on top."""
    running = start_server(root / "data", env={"PUNCH_RATE_LIMIT": "0", **env})
    yield running
    assert running.stop() == 0, running.log()


def api_for(server: RunningServer) -> Iterator[Api]:
    client = Api(server.base_url)
    yield client
    client.close()


class Api:
    """httpx against a running server; every response goes through the contract."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=15)

    def request(self, method: str, path: str, *, token: str | None = None,
                **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        contract.check("brokerage", method, path, response)
        return response

    def create(self, name: str, **body: Any) -> dict[str, Any]:
        response = self.request("POST", "/api/session", json={"name": name, **body})
        assert response.status_code == 201, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()


@dataclass
class Peer:
    """A signalling WebSocket that validates every message both ways."""

    ws: Any
    received: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    async def connect(cls, base_url: str, session: str, token: str) -> Peer:
        url = base_url.replace("http://", "ws://") + f"/api/ws/{session}?t={token}"
        return cls(await websockets.connect(url, open_timeout=10))

    async def send(self, message: dict[str, Any], *, valid: bool = True) -> None:
        if valid:
            check_client_message(message)
        await self.ws.send(json.dumps(message))

    async def send_raw(self, text: str) -> None:
        await self.ws.send(text)

    async def recv(self, wait: float = 10) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), wait))
        check_server_message(message)
        self.received.append(message)
        return message

    async def expect(self, kind: str, wait: float = 10, **fields: Any) -> dict[str, Any]:
        """Read until a message of `kind` (matching `fields`) arrives."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            message = await self.recv(max(0.01, deadline - loop.time()))
            if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                return message

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        try:
            while True:
                got.append(await self.recv(seconds))
        except TimeoutError:
            return got

    async def close(self) -> None:
        await self.ws.close()
