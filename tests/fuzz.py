"""Schemathesis over our specs, against the running server (used by every API's fuzz test).

Every run applies all of schemathesis' checks on every operation. `MEDIAGATE_FUZZ_EXAMPLES=N`
replaces each test's (quick) number of examples per operation with N, for the long run
(`scripts/fuzz`). With `MEDIAGATE_FUZZ_REPORT_DIR=dir` each run appends one JSON line (api,
cases, failures by check and operation) to `dir/summary.jsonl` and keeps its whole output as
`dir/<api>-<n>.txt`; `python -m tests.fuzz dir [--min-cases N]` prints the totals (and fails
on any failure, or on an API with fewer than N cases).

`EXPECTED` lists, per operation, the statuses a check must accept besides its defaults because
the refusal depends on something no schema can express (a signature only the server makes, an
SDP's meaning, where a host resolves, a resource's state) or on a transport schemathesis does
not speak (a WebSocket upgrade); the spec documents each (tests/test_fuzz.py checks that). The
harness writes them, each with its reason as a comment, after the test's own
`schemathesis.toml` into the file the run uses.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemathesis.config import ChecksConfig

from gateway.paths import SPECS_DIR
from gateway.specs import SPEC_FILES

EXAMPLES_ENV = "MEDIAGATE_FUZZ_EXAMPLES"
REPORT_DIR_ENV = "MEDIAGATE_FUZZ_REPORT_DIR"
SUMMARY_NAME = "summary.jsonl"
ALL_CHECKS = "all"
REPORT_NAME = "schemathesis-report.json"
OWN_CONFIG_NAME = "schemathesis.toml"
"""A test's own settings (`[parameters]`, ...) in its workdir."""
CONFIG_NAME = "schemathesis-run.toml"
"""What the run uses: the test's own settings plus `EXPECTED`."""

POSITIVE = "positive_data_acceptance"
NEGATIVE = "negative_data_rejection"
_DEFAULTS = ChecksConfig()
DEFAULT_STATUSES = {POSITIVE: _DEFAULTS.positive_data_acceptance.expected_statuses,
                    NEGATIVE: _DEFAULTS.negative_data_rejection.expected_statuses}


@dataclass(frozen=True)
class Expected:
    method: str
    path: str
    """The spec's path template."""
    statuses: tuple[str, ...]
    """Accepted by `check` on this operation besides its defaults."""
    why: str
    check: str = POSITIVE


SESSION_PATH = "/apps/{appId}/sessions/{sessionId}"
_SDP = ("an SDP string that is no usable offer or answer for the session (no media sections, "
        "no ICE credentials, the wrong signalling state) is 400 invalid_session_description")
_CURSOR = "a cursor is signed by the server: any other schema-valid string is 400"
_EGRESS = ("a URL whose host does not resolve, or resolves to a refused address, is 400 "
           "(the egress guard, after DNS)")

EXPECTED: dict[str, tuple[Expected, ...]] = {
    "brokerage": (
        Expected("GET", "/api/ws/{name}", ("426",),
                 "a WebSocket endpoint: a plain GET (schemathesis sends no upgrade) is 426"),
        Expected("GET", "/api/ws/{name}", ("426",), "also without `t`: 426 before the token",
                 NEGATIVE),
        Expected("GET", "/api/session/{name}/connect", ("400",),
                 "400 until both peers of the stream registered, or for a `stream` naming no "
                 "stream of the session: the session's state"),
    ),
    "calls": tuple(
        Expected(method, path, ("400",), _SDP) for method, path in (
            ("POST", "/apps/{appId}/sessions/new"), ("POST", f"{SESSION_PATH}/tracks/new"),
            ("PUT", f"{SESSION_PATH}/renegotiate"), ("PUT", f"{SESSION_PATH}/tracks/close"))
    ),
    "live": (
        *(Expected("POST", path, ("400",), "a string that is no offer the SFU can answer is "
                   "the documented 400") for path in (
            "/api/whip/publish/{room}", "/api/whep/play/{room}")),
        Expected("GET", "/records/{name}", ("416",),
                 "a byte range past the end of the file is the documented 416"),
    ),
    "studio": (
        *(Expected("GET", path, ("400",), _CURSOR) for path in (
            "/v1/studios", "/v1/studios/{id}/sources", "/v1/studios/{id}/destinations",
            "/v1/connections", "/v1/media", "/v1/webhooks")),
        Expected("GET", "/v1/connections/oauth/{platform}/callback", ("400",),
                 "only a state this server issued (single use, not expired) links an account"),
        *(Expected(method, path, ("400",), _EGRESS) for method, path in (
            ("POST", "/v1/connections"), ("POST", "/v1/webhooks"),
            ("PUT", "/v1/studios/{id}/chat/platforms/{platform}"),
            ("PATCH", "/v1/studios/{id}/destinations/{destId}"))),
        Expected("POST", "/v1/studios/{id}/destinations", ("400",),
                 f"{_EGRESS}; a `connectionId` must name a connection of the owner"),
        Expected("POST", "/v1/studios/{id}/chat/messages", ("400",),
                 "`platforms` must name platforms enabled on this studio: its state"),
    ),
}


def _config(api: str, workdir: Path) -> Path:
    """The test's own schemathesis.toml plus one block per operation of `EXPECTED`."""
    own = workdir / OWN_CONFIG_NAME
    text = own.read_text() if own.exists() else ""
    by_operation: dict[tuple[str, str], list[Expected]] = {}
    for entry in EXPECTED.get(api, ()):
        by_operation.setdefault((entry.method, entry.path), []).append(entry)
    for (method, path), entries in by_operation.items():
        # one filter (the label): `include-method` + `include-path` would match either
        text += f'\n[[operations]]\ninclude-name = "{method} {path}"\n'
        for entry in entries:
            statuses = [*DEFAULT_STATUSES[entry.check], *entry.statuses]
            text += f"# {entry.why}\n"
            text += f"checks.{entry.check}.expected-statuses = {json.dumps(statuses)}\n"
    config = workdir / CONFIG_NAME
    config.write_text(text)
    return config


def examples(default: int, long_factor: int = 1) -> int:
    """The quick default, or the long run's `MEDIAGATE_FUZZ_EXAMPLES` (times `long_factor`
    for an API with so few operations that it would get fewer than 1000 cases)."""
    value = os.environ.get(EXAMPLES_ENV, "").strip()
    return int(value) * long_factor if value else default


@dataclass
class FuzzRun:
    api: str
    process: subprocess.CompletedProcess[str]
    report: dict[str, Any]

    @property
    def returncode(self) -> int:
        return self.process.returncode

    @property
    def stdout(self) -> str:
        return self.process.stdout

    @property
    def stderr(self) -> str:
        return self.process.stderr

    @property
    def output(self) -> str:
        return self.process.stdout + self.process.stderr

    @property
    def cases(self) -> int:
        return int(self.report.get("test_cases", {}).get("generated", 0))

    @property
    def failures(self) -> dict[str, int]:
        """Unique failures by check ("ST101 Server error": 2, ...)."""
        counts: Counter[str] = Counter()
        for failure in self.report.get("failures", []):
            counts[f"{failure['code']} {failure['title']}"] += int(failure.get("count", 1))
        return dict(counts)

    def summary(self) -> dict[str, Any]:
        where = {f"{f['code']} {f['title']}": f.get("operations", [])
                 for f in self.report.get("failures", [])}
        return {"api": self.api, "cases": self.cases, "failures": self.failures,
                "operations": where, "exit_code": self.returncode}

    def keep(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        number = len(list(directory.glob(f"{self.api}-*.txt"))) + 1
        (directory / f"{self.api}-{number}.txt").write_text(self.output)
        with (directory / SUMMARY_NAME).open("a", encoding="utf-8") as summary:
            summary.write(json.dumps(self.summary()) + "\n")


def run_schemathesis(api: str, base_url: str, *, workdir: Path, path_regex: str,
                     checks: str = ALL_CHECKS, exclude_checks: tuple[str, ...] = (),
                     max_examples: int = 50, long_factor: int = 1,
                     headers: dict[str, str] | None = None,
                     extra: list[str] | None = None) -> FuzzRun:
    report_dir = workdir / "schemathesis-report"
    report_path = report_dir / REPORT_NAME
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(_config(api, workdir)),
        "run", str(SPECS_DIR / SPEC_FILES[api]),
        "--url", base_url, "--include-path-regex", path_regex,
        "--max-examples", str(examples(max_examples, long_factor)), "--seed", "1", "--workers", "1",
        "--suppress-health-check", "all", "--request-timeout", "30", "--continue-on-failure",
        "--report", "json", "--report-dir", str(report_dir),
        "--report-json-path", str(report_path),
    ]
    if checks != ALL_CHECKS:
        command += ["--checks", checks]
    if exclude_checks:
        command += ["--exclude-checks", ",".join(exclude_checks)]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    command += extra or []
    process = subprocess.run(command, capture_output=True, text=True, timeout=3600, cwd=workdir)
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    run = FuzzRun(api, process, report)
    if os.environ.get(REPORT_DIR_ENV):
        run.keep(Path(os.environ[REPORT_DIR_ENV]))
    return run


def assert_clean(run: FuzzRun) -> None:
    """Every check passed on every case, and something was actually tested."""
    output = run.output
    assert run.returncode == 0, output[-8000:]
    assert "No operations" not in output and run.cases > 0, output[-3000:]


_ERROR_LOGGED = re.compile(r"^\S+ \S+ (?:ERROR|CRITICAL) |^Traceback|\[(?:ERROR|CRITICAL)\]",
                           re.MULTILINE)


def assert_quiet_log(log: str) -> None:
    """The fuzzed server logged no error-level record and no traceback."""
    found = _ERROR_LOGGED.search(log)
    assert found is None, log[max(0, found.start() - 2000):found.start() + 3000]


def print_totals(directory: Path, min_cases: int = 0) -> int:
    """Cases and failures per API over every run kept in a `MEDIAGATE_FUZZ_REPORT_DIR`;
    returns the number of failures plus the number of APIs with fewer than `min_cases`."""
    cases: Counter[str] = Counter()
    failures: dict[str, Counter[str]] = {}
    where: dict[str, set[str]] = {}
    for line in (directory / SUMMARY_NAME).read_text().splitlines():
        run = json.loads(line)
        cases[run["api"]] += run["cases"]
        failures.setdefault(run["api"], Counter()).update(run["failures"])
        for check, operations in run.get("operations", {}).items():
            where.setdefault(f"{run['api']}: {check}", set()).update(operations)
    print(f"{'api':<10} {'cases':>7}  failures by check")
    for api in sorted(cases):
        found = ", ".join(f"{check}: {n}" for check, n in sorted(failures[api].items()))
        print(f"{api:<10} {cases[api]:>7}  {found or 'none'}")
    for key in sorted(where):
        print(f"{key}: {'; '.join(sorted(where[key]))}")
    apis = sorted(api for api, file in SPEC_FILES.items() if ".openapi." in file)
    short = [api for api in apis if cases[api] < min_cases]
    if short:
        print(f"fewer than {min_cases} cases: {', '.join(short)}")
    print(f"whole outputs: {directory}/<api>-<n>.txt")
    return sum(sum(counts.values()) for counts in failures.values()) + len(short)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Totals of the fuzz runs kept in DIRECTORY.")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--min-cases", type=int, default=0,
                        help="also fail when an API got fewer cases than this")
    arguments = parser.parse_args()
    sys.exit(1 if print_totals(arguments.directory, arguments.min_cases) else 0)
