"""The real server: apps from the admin CLI, sessions in the database, fuzzing the spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from gateway.calls.apps import AppStore, verify_secret
from gateway.db import Database
from gateway.migrate import upgrade
from tests import contract
from tests.fuzz import assert_quiet_log, run_schemathesis
from tests.server import start_server


def _cli(data_dir: Path, *args: str) -> object:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIAGATE_", "CALLS_"))}
    env["MEDIAGATE_DATA_DIR"] = str(data_dir)
    result = subprocess.run([sys.executable, "-m", "gateway", "calls-app", *args],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_cli_apps_and_fuzzing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    created = _cli(data_dir, "create", "--name", "demo")
    assert isinstance(created, dict) and set(created) >= {"appId", "appSecret"}
    listed = _cli(data_dir, "list")
    assert isinstance(listed, list)
    assert [a["appId"] for a in listed] == [created["appId"]]
    assert "appSecret" not in json.dumps(listed) and created["appSecret"] not in json.dumps(listed)

    server = start_server(data_dir)
    try:
        base = server.base_url
        headers = {"Authorization": f"Bearer {created['appSecret']}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            for prefix in ("/v1", ""):
                path = f"{prefix}/apps/{created['appId']}/sessions/new"
                response = client.post(path)
                contract.check("calls", "POST", path, response)
                assert response.status_code == 201
            session_id = response.json()["sessionId"]
            path = f"/v1/apps/{created['appId']}/sessions/{session_id}"
            response = client.get(path)
            contract.check("calls", "GET", path, response)
            assert response.json() == {"tracks": []}
        (tmp_path / "fuzz").mkdir()
        (tmp_path / "fuzz" / "schemathesis.toml").write_text(
            f'[parameters]\n"path.appId" = "{created["appId"]}"\n'
            f'"path.sessionId" = "{session_id}"\n'
        )
        # every check: what the spec calls invalid is refused (body-less calls, nulls) too
        result = run_schemathesis(
            "calls", base + "/v1", path_regex="^/apps/", max_examples=25,
            long_factor=2,  # 8 operations: at 100 examples each the long run had 1136 cases
            headers=headers, workdir=tmp_path / "fuzz",
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert "passed" in output.lower(), output[-3000:]
        assert_quiet_log(server.log())
    finally:
        assert server.stop() == 0, server.log()[-3000:]


async def test_app_store(database_url: str) -> None:
    import asyncio

    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        store = AppStore(db)
        info, secret = await store.create(name="one")
        assert await store.authenticate(info.id, secret)
        assert await store.authenticate(info.id, secret)  # the cached path
        assert not await store.authenticate(info.id, secret + "x")
        assert not await store.authenticate("missing", secret)
        await store.ensure(info.id, "a-new-secret-value")
        assert not await store.authenticate(info.id, secret)
        assert await store.authenticate(info.id, "a-new-secret-value")
        ensured = await store.ensure("fixed-id", "bootstrap-secret")
        assert ensured.id == "fixed-id"
        assert [a.id for a in await store.list()] == [info.id, "fixed-id"]
        assert await store.delete("fixed-id")
        assert not verify_secret("x", "not-a-hash")
    finally:
        await db.close()
