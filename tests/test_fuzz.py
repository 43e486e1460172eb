"""Fuzzing the health and spec endpoints of every API from their specs: no 5xx, all conformant."""

from __future__ import annotations

import pytest

from tests.fuzz import run_schemathesis
from tests.server import RunningServer

TARGETS = [
    ("brokerage", "^/api/health$"),
    ("host", "^/api/v1/health$"),
    ("live", "^/healthz$"),
    ("studio", "^/v1/(health|openapi\\.json)$"),
]


@pytest.mark.parametrize(("api", "paths"), TARGETS)
def test_fuzz_health(server: RunningServer, tmp_path, api: str, paths: str) -> None:
    result = run_schemathesis(api, server.base_url, path_regex=paths, workdir=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No operations" not in output and "passed" in output.lower(), output
