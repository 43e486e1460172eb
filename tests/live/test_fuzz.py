"""Schemathesis with all checks over specs/live.openapi.yaml against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.paths import PROJECT_ROOT
from tests.fuzz import assert_clean, assert_quiet_log, run_schemathesis
from tests.live.helpers import start_live_server
from tests.server import RunningServer


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("fuzz")
    records = base / "records"
    records.mkdir()
    (records / "demo_video1_1700000000.ivf").write_bytes(b"DKIF" + bytes(64))
    server = start_live_server(base / "data", RECORD_ENABLED="1", RECORD_DIR=str(records),
                               ADMIN_TOKEN="fuzz-admin", MAX_SUBS_PER_ROOM="3")
    yield server
    assert server.stop() == 0, server.log()


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer fuzz-admin"}],
                         ids=["anonymous", "admin"])
def test_fuzz_live_api(live_server: RunningServer, tmp_path: Path, headers: dict[str, str],
                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHEMATHESIS_HOOKS", "tests.live.fuzz_hooks")
    monkeypatch.setenv("PYTHONPATH", str(PROJECT_ROOT))
    run = run_schemathesis("live", live_server.base_url, path_regex="^/", headers=headers,
                           max_examples=25, workdir=tmp_path)
    assert_clean(run)
    assert_quiet_log(live_server.log())
