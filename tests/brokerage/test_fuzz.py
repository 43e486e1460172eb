"""Schemathesis over the Punch spec against a real server: no 5xx, everything conformant."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz import run_schemathesis
from tests.server import RunningServer


def test_fuzz_punch_api(punch_server: RunningServer, tmp_path: Path) -> None:
    result = run_schemathesis(
        "brokerage", punch_server.base_url,
        path_regex=r"^/(api/(session|ws|health).*|s/.*|)$", max_examples=40,
        workdir=tmp_path,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No operations" not in output and "passed" in output.lower(), output
