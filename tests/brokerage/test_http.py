"""The session HTTP API in-process: bodies, errors, tokens, TTL, rate limit, Turnstile."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from quart import Quart
from sqlalchemy import select

from gateway.app import create_app
from gateway.brokerage.models import PunchPeer, PunchSession, PunchStream
from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.state import EXTENSION
from tests import contract
from tests.brokerage.helpers import check_server_message


@asynccontextmanager
async def running_app(tmp_path: Path, **env: str) -> AsyncIterator[Quart]:
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path / "data"), **env})
    await asyncio.to_thread(upgrade, settings.database_url)
    application = create_app(settings)
    async with application.test_app():
        yield application


class Client:
    def __init__(self, app: Quart) -> None:
        self.app = app
        self.client = app.test_client()

    @property
    def service(self) -> Any:
        return self.app.extensions[EXTENSION].services["brokerage"]

    async def call(self, method: str, path: str, *, token: str | None = None,
                   json_body: Any = None, data: str | None = None,
                   query: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"headers": headers, "query_string": query}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
            headers["Content-Type"] = "application/json"
        response = await self.client.open(path, method=method, **kwargs)
        body = await response.get_data()
        contract.check("brokerage", method, path, response, body)
        parsed = json.loads(body) if body and response.mimetype == "application/json" else None
        return response.status_code, parsed, response

    async def create(self, name: str, **fields: Any) -> dict[str, Any]:
        status, body, _ = await self.call("POST", "/api/session",
                                          json_body={"name": name, **fields})
        assert status == 201, body
        return body


def _peer_token(client: Client, session: str, stream: str) -> str:
    async def mint() -> str:
        row = await client.service.live_session(session)
        return client.service.mint(row, stream)

    return mint  # type: ignore[return-value]


async def test_session_lifecycle(tmp_path: Path) -> None:
    async with running_app(tmp_path, MEDIAGATE_PUBLIC_URL="https://punch.example") as app:
        api = Client(app)
        created = await api.create("nab-iso-shoot", streams=["cam-wide", "cam-close"],
                                   latency=250, ttl=3600)
        assert created["url"] == "https://punch.example/s/nab-iso-shoot"
        assert created["qr"] == "https://punch.example/s/nab-iso-shoot/qr"
        assert (created["state"], created["latency"], created["ttl"]) == ("WAITING", 250, 3600)
        assert created["streams"] == ["cam-wide", "cam-close"]
        admin = created["token"]
        assert admin.startswith("p_")
        minimal = await api.create("minimal")
        assert (minimal["streams"], minimal["latency"], minimal["ttl"]) == (["default"], 200,
                                                                             1800)

        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot", token=admin)
        assert status == 200
        assert body["state"] == "WAITING" and body["latency"] == 250
        assert set(body["streams"]) == {"cam-wide", "cam-close"}
        assert body["streams"]["cam-wide"]["peers"] == 0
        assert len(body["streams"]["cam-wide"]["passphrase"]) == 32
        assert abs(body["expiresAt"] / 1000 - (time.time() + 3600)) < 60
        # the token may also come as ?t=
        status, _, _ = await api.call("GET", "/api/session/nab-iso-shoot",
                                      query={"t": admin})
        assert status == 200

        peer = await _peer_token(api, "nab-iso-shoot", "cam-close")()
        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot", token=peer)
        assert status == 200 and set(body["streams"]) == {"cam-close"}
        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot/connect",
                                         token=peer, query={"stream": "cam-wide"})
        assert (status, body["error"]) == (403, "AUTH_FAILED")
        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot/connect",
                                         token=peer)
        assert (status, body["error"]) == (400, "INVALID_MESSAGE")  # peers not registered
        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot/connect",
                                         token=admin, query={"role": "both"})
        assert status == 400

        for token, expected in ((None, 401), (minimal["token"], 403), (peer, 403)):
            status, body, _ = await api.call("DELETE", "/api/session/nab-iso-shoot",
                                             token=token)
            assert (status, body["error"]) == (expected, "AUTH_FAILED")
        status, _, _ = await api.call("DELETE", "/api/session/nab-iso-shoot", token=admin)
        assert status == 204
        for method in ("GET", "DELETE"):
            status, body, _ = await api.call(method, "/api/session/nab-iso-shoot", token=admin)
            assert (status, body["error"]) == (404, "SESSION_EXPIRED")
        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot/connect",
                                         token=admin)
        assert (status, body["error"]) == (404, "SESSION_EXPIRED")
        # a closed name can be taken again; the old token does not open the new one
        await asyncio.sleep(1.1)  # tokens tell sessions of one name apart by their expiry
        await api.create("nab-iso-shoot")
        status, body, _ = await api.call("GET", "/api/session/nab-iso-shoot", token=admin)
        assert (status, body["error"]) == (403, "AUTH_FAILED")


async def test_bad_requests(tmp_path: Path) -> None:
    async with running_app(tmp_path, PUNCH_MAX_STREAMS="2", PUNCH_RATE_LIMIT="0") as app:
        api = Client(app)
        await api.create("taken")
        cases: list[tuple[Any, int, str]] = [
            ({"name": "taken"}, 409, "SESSION_EXISTS"),
            ({}, 400, "INVALID_MESSAGE"),
            ({"name": "-bad"}, 400, "INVALID_MESSAGE"),
            ({"name": "x" * 65}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "latency": 10}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "latency": "200"}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "ttl": 59}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "ttl": True}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "streams": ["a", "a"]}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "streams": ["a", "b", "c"]}, 400, "INVALID_MESSAGE"),
            ({"name": "ok", "streams": "a"}, 400, "INVALID_MESSAGE"),
            (["name"], 400, "INVALID_MESSAGE"),
        ]
        for body, expected, code in cases:
            status, reply, _ = await api.call("POST", "/api/session", json_body=body)
            assert (status, reply["error"]) == (expected, code), body
        status, reply, _ = await api.call("POST", "/api/session", data="{not json")
        assert (status, reply["error"]) == (400, "INVALID_MESSAGE")
        status, reply, _ = await api.call("GET", "/api/session/taken")
        assert (status, reply["error"]) == (401, "AUTH_FAILED")
        status, _, response = await api.call("GET", "/api/ws/taken")
        assert status == 426 and response.headers["Upgrade"] == "websocket"


def _flip(token: str, part: int) -> str:
    """Flip one byte of the payload (part 0) or the signature (part 1)."""
    payload, signature = token[2:].split(".")
    pieces = [payload, signature]
    raw = bytearray(base64.urlsafe_b64decode(pieces[part] + "=" * (-len(pieces[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    pieces[part] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return "p_" + ".".join(pieces)


async def test_token_tampering_and_foreign_keys(tmp_path: Path) -> None:
    secret = "s" * 64
    async with running_app(tmp_path / "one", PUNCH_SECRET=secret) as app:
        api = Client(app)
        admin = (await api.create("tamper"))["token"]
        payload = json.loads(base64.urlsafe_b64decode(admin[2:].split(".")[0] + "=="))
        assert payload["session"] == "tamper" and payload["role"] == "admin"
        assert "stream" not in payload and isinstance(payload["exp"], int)
        for bad in (_flip(admin, 0), _flip(admin, 1), admin[:-1], admin + "x", "p_.",
                    "Bearer", admin.replace("p_", "q_", 1)):
            status, body, _ = await api.call("GET", "/api/session/tamper", token=bad)
            assert (status, body["error"]) == (401, "AUTH_FAILED"), bad
        status, _, _ = await api.call("GET", "/api/session/tamper", token=admin)
        assert status == 200
    async with running_app(tmp_path / "two", PUNCH_SECRET="t" * 64) as other:
        api = Client(other)
        await api.create("tamper")
        status, body, _ = await api.call("GET", "/api/session/tamper", token=admin)
        assert (status, body["error"]) == (401, "AUTH_FAILED")
    async with running_app(tmp_path / "three") as derived:
        # without PUNCH_SECRET the key is derived from the instance secret
        api = Client(derived)
        token = (await api.create("tamper"))["token"]
        assert token != admin
        status, _, _ = await api.call("GET", "/api/session/tamper", token=token)
        assert status == 200


async def test_ttl_expiry_closes_and_sweeps(tmp_path: Path) -> None:
    async with running_app(tmp_path) as app:
        api = Client(app)
        created = await api.create("short", ttl=60)
        admin = created["token"]
        async with api.client.websocket(f"/api/ws/short?t={admin}") as ws:
            first = json.loads(await ws.receive())
            check_server_message(first)
            assert first == {"type": "state", "state": "WAITING"}
            start = time.time()
            api.service.clock = lambda: start + 61
            assert await api.service.sweep() == 1
            closed = json.loads(await asyncio.wait_for(ws.receive(), 5))
            check_server_message(closed)
            assert closed == {"type": "state", "state": "CLOSED"}
        status, body, _ = await api.call("GET", "/api/session/short", token=admin)
        assert (status, body["error"]) == (401, "SESSION_EXPIRED")
        async with app.extensions[EXTENSION].db.session() as db:
            row = await db.get(PunchSession, "short")
            assert row is not None and row.state == "CLOSED"
        api.service.clock = lambda: start + 61 + 400
        await api.service.sweep()
        async with app.extensions[EXTENSION].db.session() as db:
            assert await db.get(PunchSession, "short") is None
            assert (await db.execute(select(PunchStream))).first() is None
            assert (await db.execute(select(PunchPeer))).first() is None
        api.service.clock = time.time
        await api.create("short")  # the name is free again


async def test_rate_limit_per_ip(tmp_path: Path) -> None:
    async with running_app(tmp_path, PUNCH_RATE_LIMIT="3") as app:
        api = Client(app)
        for index in range(3):
            await api.create(f"rl-{index}")
        status, body, response = await api.call("POST", "/api/session",
                                                json_body={"name": "rl-3"})
        assert (status, body["error"]) == (429, "RATE_LIMITED")
        assert int(response.headers["Retry-After"]) >= 1
        status, _, _ = await api.call("GET", "/api/health")  # other routes are not limited
        assert status == 200


@contextmanager
def fake_siteverify() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    calls: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            calls.append(form)
            ok = form.get("secret") == ["ts-secret"] and form.get("response") == ["good"]
            body = json.dumps({"success": ok, "error-codes": [] if ok else ["invalid"]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/siteverify", calls
    finally:
        server.shutdown()
        server.server_close()


async def test_turnstile(tmp_path: Path) -> None:
    with fake_siteverify() as (url, calls):
        async with running_app(tmp_path, TURNSTILE_SECRET="ts-secret",
                               TURNSTILE_VERIFY_URL=url) as app:
            api = Client(app)
            for body in ({"name": "ts"}, {"name": "ts", "turnstileToken": "bad"}):
                status, reply, _ = await api.call("POST", "/api/session", json_body=body)
                assert (status, reply["error"]) == (403, "TURNSTILE_FAILED")
            await api.create("ts", turnstileToken="good")
            assert [call["response"] for call in calls] == [["bad"], ["good"]]
            assert all("remoteip" in call for call in calls)
        async with running_app(tmp_path, TURNSTILE_SECRET="ts-secret",
                               TURNSTILE_VERIFY_URL="http://127.0.0.1:9/down") as app:
            status, reply, _ = await Client(app).call(
                "POST", "/api/session", json_body={"name": "ts2", "turnstileToken": "good"})
            assert (status, reply["error"]) == (403, "TURNSTILE_FAILED")
