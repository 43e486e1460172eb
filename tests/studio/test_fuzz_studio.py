"""Schemathesis over specs/studio.openapi.yaml against the real server, every check: no 5xx,
all conformant, data the spec calls invalid is refused and data it calls valid is accepted
(`tests/fuzz.py` `EXPECTED` lists the refusals no schema can express: a cursor's signature,
where a URL's host resolves, whether a connection exists), `Allow` lists only the path's
methods, and deleted resources stay gone.
"""

from __future__ import annotations

from pathlib import Path

from tests.fuzz import assert_quiet_log, run_schemathesis
from tests.studio.live_helpers import ADMIN_KEY, start_gateway

# WHIP takes application/sdp, which schemathesis cannot generate; tests/studio/test_golive.py
# and test_whip.py drive it with real offers. The upload PUT is signed: test_media_part2.py.
PATHS = (r"^/v1/(health|openapi\.json|media|connections(/(providers|\{connectionId\}))?|studios"
         r"(/\{id\}(/(sources|destinations|stream-status|go-live|go-offline)"
         r"(/\{(sourceId|destId)\})?)?)?)$")


def test_fuzz_studio_api(tmp_path: Path) -> None:
    server = start_gateway(tmp_path / "data")
    try:
        result = run_schemathesis("studio", server.base_url, path_regex=PATHS,
                                  headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                                  max_examples=40, workdir=tmp_path)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-6000:]
        assert "No operations" not in output and "passed" in output.lower(), output[-3000:]
    finally:
        assert server.stop() == 0, server.log()[-5000:]
    assert_quiet_log(server.log())
