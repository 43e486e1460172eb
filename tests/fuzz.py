"""Schemathesis over our specs, against the running server (used by every API's fuzz test)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway.paths import SPECS_DIR
from gateway.specs import SPEC_FILES

CONFORMANCE = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


def run_schemathesis(api: str, base_url: str, *, path_regex: str, checks: str = CONFORMANCE,
                     max_examples: int = 50, headers: dict[str, str] | None = None,
                     extra: list[str] | None = None, workdir: Path | None = None,
                     ) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(SPECS_DIR / SPEC_FILES[api]),
        "--url", base_url, "--include-path-regex", path_regex, "--checks", checks,
        "--max-examples", str(max_examples), "--seed", "1", "--workers", "1",
        "--suppress-health-check", "all", "--request-timeout", "30",
    ]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    command += extra or []
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=workdir)
