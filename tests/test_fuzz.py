"""Fuzzing the health and spec endpoints of every API from their specs: no 5xx, all conformant."""

from __future__ import annotations

import pytest

from gateway.specs import SpecStore
from tests.fuzz import EXPECTED, run_schemathesis
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


@pytest.mark.parametrize("api", sorted(EXPECTED))
def test_every_expected_status_names_an_operation_its_spec_documents(api: str) -> None:
    """An entry of `tests/fuzz.py` `EXPECTED` that matches no operation would widen nothing
    (or, misspelt, the wrong thing); the status it allows is one the spec lists for it."""
    paths = SpecStore().get(api)["paths"]
    for entry in EXPECTED[api]:
        assert entry.method.lower() in paths.get(entry.path, {}), entry
        responses = paths[entry.path][entry.method.lower()]["responses"]
        for status in entry.statuses:
            assert status in responses, (entry, status)
