from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aioice.ice
import pytest
from quart import Quart

from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.settings import Settings
from tests import contract
from tests.pg import free_port

TOKEN = "test-mgmt-token-0123456789"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Gather ICE host candidates on 127.0.0.1 only (aioice skips loopback by default)."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    yield


@asynccontextmanager
async def running_app(env: dict[str, str]) -> AsyncIterator[Quart]:
    settings = Settings.from_env({"MEDIAGATE_BIND": "127.0.0.1:18080", **env})
    await asyncio.to_thread(upgrade, settings.database_url)
    application = create_app(settings)
    async with application.test_app():
        yield application


class Api:
    """The Quart test client with the bearer token, every reply checked against the spec."""

    def __init__(self, app: Quart, token: str | None = TOKEN) -> None:
        self.app = app
        self.client = app.test_client()
        self.token = token

    async def call(self, method: str, path: str, *, json: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None, auth: bool = True,
                   check: bool = True) -> Any:
        all_headers = dict(headers or {})
        if auth and self.token:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        kwargs: dict[str, Any] = {"headers": all_headers}
        if json is not None:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        response = await self.client.open(path, method=method, **kwargs)
        body = await response.get_data()
        if check:
            contract.check("host", method, path, response, body)
        response.body_bytes = body
        return response

    async def json(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.body_bytes)
        import json as _json

        return _json.loads(response.body_bytes) if response.body_bytes else None


AppFactory = Callable[..., Awaitable[Any]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def device_ports_env(data_dir: Path) -> dict[str, str]:
    """Settings of an app with the token and the device-facing ports (free loopback ports)."""
    return {
        "MEDIAGATE_DATA_DIR": str(data_dir), "PUNKTFUNK_MGMT_TOKEN": TOKEN,
        "MEDIAGATE_GAMESTREAM_HTTP_PORT": str(free_port()),
        "MEDIAGATE_GAMESTREAM_HTTPS_PORT": str(free_port()),
    }


@pytest.fixture
async def device_app(data_dir: Path) -> AsyncIterator[Quart]:
    async with running_app(device_ports_env(data_dir)) as app:
        yield app


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[Api]:
    async with running_app({"MEDIAGATE_DATA_DIR": str(data_dir),
                            "PUNKTFUNK_MGMT_TOKEN": TOKEN}) as app:
        yield Api(app)
