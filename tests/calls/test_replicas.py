"""Two gateway replicas on one PostgreSQL: apps and sessions are visible to both, and a
call for a session reaches the replica holding its PeerConnection."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests import contract
from tests.calls.helpers import APP_ID, APP_SECRET
from tests.pg import PostgresServer, free_port
from tests.server import RunningServer, start_server

HEADERS = {"Authorization": f"Bearer {APP_SECRET}"}
PREFIX = f"/v1/apps/{APP_ID}"


def _replica(root: Path, name: str, database_url: str) -> RunningServer:
    port = free_port()
    return start_server(root / name, port=port, ready_path="/readyz", env={
        "MEDIAGATE_DATABASE_URL": database_url,
        "MEDIAGATE_REPLICA_URL": f"http://127.0.0.1:{port}",
        "MEDIAGATE_SECRET_KEY": "replicas-share-this-secret-key-0123",
        "MEDIAGATE_SHUTDOWN_GRACE": "1",
        "CALLS_APP_ID": APP_ID,
        "CALLS_APP_SECRET": APP_SECRET,
    })


def _call(base: str, method: str, path: str, body: object = None) -> httpx.Response:
    response = httpx.request(method, base + PREFIX + path, headers=HEADERS, json=body,
                             timeout=30)
    contract.check("calls", method, PREFIX + path, response)
    return response


def test_two_replicas_share_apps_and_sessions(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.create_database()
    one = _replica(tmp_path, "one", url)
    two = _replica(tmp_path, "two", url)
    try:
        on_one = _call(one.base_url, "POST", "/sessions/new").json()["sessionId"]
        on_two = _call(two.base_url, "POST", "/sessions/new").json()["sessionId"]
        # either replica answers for either session: the call is forwarded to the holder
        for base in (one.base_url, two.base_url):
            for session_id in (on_one, on_two):
                response = _call(base, "GET", f"/sessions/{session_id}")
                assert response.status_code == 200 and response.json() == {"tracks": []}
        pulled = _call(two.base_url, "POST", f"/sessions/{on_one}/tracks/new", {"tracks": [
            {"location": "remote", "sessionId": on_two, "trackName": "cam"}]})
        assert pulled.status_code == 200
        assert pulled.json()["tracks"][0]["errorCode"] == "session_on_other_instance"
        assert _call(two.base_url, "GET", f"/sessions/{'0' * 32}").status_code == 404

        # replica one dies without a word: its sessions are gone for everyone
        one.stop(signal.SIGKILL)
        gone = _call(two.base_url, "GET", f"/sessions/{on_one}")
        assert gone.status_code == 404 and gone.json()["errorCode"] == "session_closed"
        assert _call(two.base_url, "GET", f"/sessions/{on_two}").status_code == 200
    finally:
        one.stop(signal.SIGKILL)
        assert two.stop() == 0, two.log()[-3000:]
