"""Schemathesis over specs/host.openapi.json against a real `mediagate serve`: no 5xx, every
reply conformant; and without the token nothing but health and the console answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import contract
from tests.fuzz import assert_quiet_log, run_schemathesis
from tests.host.conftest import TOKEN
from tests.pg import free_port
from tests.server import RunningServer, start_server


@pytest.fixture
def host_server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "data", env={
        "PUNKTFUNK_MGMT_TOKEN": TOKEN,
        "MEDIAGATE_GAMESTREAM_HTTP_PORT": str(free_port()),
        "MEDIAGATE_GAMESTREAM_HTTPS_PORT": str(free_port()),
    }, ready_path="/api/v1/health")
    yield running
    assert running.stop() == 0, running.log()


def test_fuzz_host_api(host_server: RunningServer, tmp_path: Path) -> None:
    result = run_schemathesis("host", host_server.base_url, path_regex="^/api/v1/",
                              headers={"Authorization": f"Bearer {TOKEN}"}, max_examples=25,
                              workdir=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No operations" not in output and "passed" in output.lower(), output
    assert_quiet_log(host_server.log())


def test_real_server_refuses_without_the_token(host_server: RunningServer) -> None:
    with httpx.Client(base_url=host_server.base_url) as http:
        for path in ("/api/v1/host", "/api/v1/status", "/api/v1/clients", "/api/v1/library"):
            response = http.get(path)
            assert response.status_code == 401
            contract.check("host", "GET", path, response)
        response = http.post("/api/v1/stats/capture/start", json={})
        assert response.status_code == 401
        contract.check("host", "POST", "/api/v1/stats/capture/start", response)
        health = http.get("/api/v1/health")
        assert health.status_code == 200
        contract.check("host", "GET", "/api/v1/health", health)
        ok = http.get("/api/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        contract.check("host", "GET", "/api/v1/status", ok)
