"""Two gateway replicas on one PostgreSQL: apps and sessions are visible to both."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests import contract
from tests.calls.helpers import APP_ID, APP_SECRET
from tests.pg import PostgresServer
from tests.server import start_server

HEADERS = {"Authorization": f"Bearer {APP_SECRET}"}


def _call(base: str, method: str, path: str) -> httpx.Response:
    response = httpx.request(method, base + path, headers=HEADERS, timeout=30)
    contract.check("calls", method, path, response)
    return response


def test_two_replicas_share_apps_and_sessions(postgres: PostgresServer, tmp_path: Path) -> None:
    env = {
        "MEDIAGATE_DATABASE_URL": postgres.create_database(),
        "MEDIAGATE_SECRET_KEY": "replicas-share-this-secret-key-0123",
        "CALLS_APP_ID": APP_ID,
        "CALLS_APP_SECRET": APP_SECRET,
    }
    one = start_server(tmp_path / "one", env=env)
    two = start_server(tmp_path / "two", env=env)
    try:
        prefix = f"/v1/apps/{APP_ID}"
        session_id = _call(one.base_url, "POST", f"{prefix}/sessions/new").json()["sessionId"]
        assert _call(one.base_url, "GET", f"{prefix}/sessions/{session_id}").status_code == 200
        elsewhere = _call(two.base_url, "GET", f"{prefix}/sessions/{session_id}")
        assert elsewhere.status_code == 409
        assert elsewhere.json()["errorCode"] == "session_on_other_instance"
        assert _call(two.base_url, "POST", f"{prefix}/sessions/new").status_code == 201
        missing = _call(two.base_url, "GET", f"{prefix}/sessions/{'0' * 32}")
        assert missing.status_code == 404
        # replica one stops: its sessions are marked closed for everyone
        assert one.stop() == 0, one.log()[-3000:]
        closed = _call(two.base_url, "GET", f"{prefix}/sessions/{session_id}")
        assert closed.status_code == 404 and closed.json()["errorCode"] == "session_closed"
    finally:
        one.stop()
        assert two.stop() == 0, two.log()[-3000:]
