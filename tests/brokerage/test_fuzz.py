"""Schemathesis over the Punch spec against a real server: no 5xx, everything conformant."""

from __future__ import annotations

from pathlib import Path

from tests.brokerage.helpers import Api
from tests.fuzz import assert_quiet_log, run_schemathesis
from tests.server import RunningServer

PATHS = r"^/(api/(session|ws|health).*|s/.*|)$"


def _assert_clean(result: object, server: RunningServer) -> None:
    output = result.stdout + result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 0, output  # type: ignore[attr-defined]
    assert "No operations" not in output and "passed" in output.lower(), output
    assert_quiet_log(server.log())


def test_fuzz_punch_api(punch_server: RunningServer, tmp_path: Path) -> None:
    _assert_clean(run_schemathesis("brokerage", punch_server.base_url, path_regex=PATHS,
                                   max_examples=40, workdir=tmp_path), punch_server)


def test_fuzz_punch_api_with_a_real_session(api: Api, punch_server: RunningServer,
                                            tmp_path: Path) -> None:
    """Every `{name}` is a live session and every request carries its admin token."""
    created = api.create("fuzzed", streams=["cam1", "cam2"])
    (tmp_path / "schemathesis.toml").write_text('[parameters]\n"path.name" = "fuzzed"\n')
    result = run_schemathesis(
        "brokerage", punch_server.base_url, path_regex=r"^/(api/session/|s/)",
        max_examples=30, workdir=tmp_path,
        headers={"Authorization": f"Bearer {created['token']}"},
    )
    _assert_clean(result, punch_server)
    output = result.stdout + result.stderr
    assert "Authentication failed" not in output, output
