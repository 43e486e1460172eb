"""Shared /v1 conventions: keys, request ids, error envelope, rate limits, write gating."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from quart import Quart

from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.studio.apikeys import ALL_SCOPES, hash_key
from tests.studio.conftest import StudioClient, make_key


async def test_health_is_public_and_reports_write_enabled(studio: StudioClient) -> None:
    reply = await studio.call("GET", "/v1/health")
    assert reply.status == 200
    assert reply.json() == {"status": "ok", "writeEnabled": True}
    assert reply.headers["X-Request-Id"].startswith("req_")
    spec = await studio.call("GET", "/v1/openapi.json")
    assert "/v1/studios" in spec.json()["paths"]


async def test_request_id_is_echoed_or_generated(studio: StudioClient, admin_key: str) -> None:
    mine = await studio.call("GET", "/v1/studios", key=admin_key,
                             headers={"X-Request-Id": "client-123"})
    assert mine.headers["X-Request-Id"] == "client-123"
    failed = await studio.call("GET", "/v1/studios", headers={"X-Request-Id": "client-456"})
    assert failed.status == 401
    assert failed.json()["error"]["requestId"] == "client-456"
    generated = await studio.call("GET", "/v1/studios/nope", key=admin_key)
    rid = generated.headers["X-Request-Id"]
    assert rid.startswith("req_") and int(rid[4:], 16) >= 0
    assert generated.json()["error"] == {"code": "not_found", "message": "studio not found",
                                         "requestId": rid}


async def test_keys_by_bearer_or_x_api_key(studio: StudioClient, admin_key: str) -> None:
    assert (await studio.call("GET", "/v1/studios", key=admin_key)).status == 200
    alias = await studio.call("GET", "/v1/studios", headers={"X-API-Key": admin_key})
    assert alias.status == 200
    for headers in ({}, {"Authorization": "Bearer sk_live_" + "x" * 30},
                    {"Authorization": "Basic Zm9vOmJhcg=="}, {"X-API-Key": "nope"}):
        reply = await studio.call("GET", "/v1/studios", headers=headers)
        assert reply.status == 401, headers
        assert reply.json()["error"]["code"] == "invalid_key"


async def test_insufficient_scope_names_the_required_scope(app: Quart,
                                                           studio: StudioClient) -> None:
    key = await make_key(app, "bob", ["studios:read"])
    reply = await studio.call("POST", "/v1/studios", key=key, json_body={"name": "x"})
    assert reply.status == 403
    error = reply.json()["error"]
    assert error["code"] == "insufficient_scope" and error["requiredScope"] == "studios:write"


async def test_keys_are_stored_as_hashes(app: Quart, settings: Settings) -> None:
    key = await make_key(app, "carol", ["studios:read"])
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("mediagate.db*"))
    assert key.encode() not in raw
    assert hash_key(key).encode() in raw


class TestRateLimit:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0.5", "STUDIO_RATE_LIMIT_BURST": "3"}

    async def test_per_key_token_bucket(self, app: Quart, studio: StudioClient,
                                        admin_key: str) -> None:
        other = await make_key(app, "dave", ["studios:read"])
        statuses = [(await studio.call("GET", "/v1/studios", key=admin_key)).status
                    for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = await studio.call("GET", "/v1/studios", key=admin_key)
        assert limited.status == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert (await studio.call("GET", "/v1/studios", key=other)).status == 200


class TestWriteGate:
    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"STUDIO_RATE_LIMIT_RPS": "0", "PUBLIC_API_WRITE_ENABLED": "false"}

    async def test_health_reports_it(self, studio: StudioClient) -> None:
        assert (await studio.call("GET", "/v1/health")).json()["writeEnabled"] is False


class TestBootstrapKey:
    KEY = "sk_live_bootstrap_" + "a1" * 12

    @pytest.fixture
    def studio_env(self) -> dict[str, str]:
        return {"MEDIAGATE_BOOTSTRAP_API_KEY": self.KEY}

    async def test_bootstrap_key_has_every_scope(self, studio: StudioClient) -> None:
        created = await studio.call("POST", "/v1/studios", key=self.KEY, json_body={"name": "b"})
        assert created.status == 201 and created.json()["ownerSub"] == "bootstrap"
        sid = created.json()["id"]
        for path in ("/v1/studios", f"/v1/studios/{sid}/sources",
                     f"/v1/studios/{sid}/destinations", f"/v1/studios/{sid}/stream-status"):
            assert (await studio.call("GET", path, key=self.KEY)).status == 200


def test_cli_creates_a_key_shown_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"MEDIAGATE_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"}
    upgrade(Settings.from_env(env).database_url)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "studio-key", *args],
                              capture_output=True, text=True, env=env, timeout=60)

    result = run("create", "--owner", "erin", "--scope", "studios:read",
                 "--scope", "stream:read")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["key"].startswith("sk_live_") and created["owner"] == "erin"
    assert created["scopes"] == ["studios:read", "stream:read"]
    everything = json.loads(run("create", "--owner", "erin", "--all-scopes").stdout)
    assert everything["scopes"] == list(ALL_SCOPES)
    listed = run("list")
    assert created["key"] not in listed.stdout and created["id"] in listed.stdout
    assert run("create", "--owner", "erin", "--scope", "bogus").returncode != 0
    revoked = json.loads(run("revoke", created["id"]).stdout)
    assert revoked == {"id": created["id"], "revoked": True}
