"""The four health endpoints, exactly per each contract, on the real server."""

from __future__ import annotations

import httpx

from gateway import __version__
from tests import contract
from tests.server import RunningServer


def test_punch_health_get_and_head(server: RunningServer) -> None:
    response = httpx.get(server.base_url + "/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": __version__}
    assert response.headers["Punch-Version"] == __version__
    contract.check("brokerage", "GET", "/api/health", response)

    head = httpx.head(server.base_url + "/api/health")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Punch-Version"] == __version__
    contract.check("brokerage", "HEAD", "/api/health", head)


def test_punktfunk_health_needs_no_auth(server: RunningServer) -> None:
    response = httpx.get(server.base_url + "/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == __version__
    assert isinstance(body["abi_version"], int)
    contract.check("host", "GET", "/api/v1/health", response)


def test_live_healthz_is_plain_ok(server: RunningServer) -> None:
    response = httpx.get(server.base_url + "/healthz")
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["content-type"].startswith("text/plain")
    contract.check("live", "GET", "/healthz", response)


def test_studio_health_reports_write_gate(server: RunningServer) -> None:
    response = httpx.get(server.base_url + "/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "writeEnabled": True}
    assert response.headers["X-Request-Id"].startswith("req_")
    contract.check("studio", "GET", "/v1/health", response)


async def test_studio_health_follows_the_setting(tmp_path) -> None:
    from gateway.app import create_app
    from gateway.settings import Settings

    settings = Settings.from_env(
        {"MEDIAGATE_DATA_DIR": str(tmp_path), "PUBLIC_API_WRITE_ENABLED": "false"}
    )
    response = await create_app(settings).test_client().get("/v1/health")
    assert await response.get_json() == {"status": "ok", "writeEnabled": False}
