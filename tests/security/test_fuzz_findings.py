"""What the long schemathesis pass (scripts/fuzz, all checks) found in host and live."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.conftest import TOKEN, Api, running_app
from tests.live.test_auth_http import call, client_for

RECORD = "demo_video1_1700000000.ivf"
CONTENT = b"DKIF" + bytes(range(64))


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / RECORD).write_bytes(CONTENT)
    return directory


@pytest.mark.parametrize(("header", "status", "expected", "content_range"), [
    ("bytes=-1", 206, CONTENT[-1:], "bytes 67-67/68"),  # a suffix range was a 500
    ("bytes=-10", 206, CONTENT[-10:], "bytes 58-67/68"),
    ("bytes=-100", 206, CONTENT, "bytes 0-67/68"),  # longer than the file: all of it
    ("bytes=60-", 206, CONTENT[60:], "bytes 60-67/68"),
    ("bytes=4-7", 206, CONTENT[4:8], "bytes 4-7/68"),
    ("", 200, CONTENT, None),  # an empty Range is no range (as Go's file server has it)
    ("bytes=-0", 416, None, None),
    ("bytes=100-200", 416, None, None),
], ids=["last-byte", "suffix", "long-suffix", "open-end", "span", "empty", "empty-suffix",
        "past-the-end"])
async def test_record_ranges(tmp_path: Path, record_dir: Path, header: str, status: int,
                             expected: bytes | None, content_range: str | None) -> None:
    client = client_for(tmp_path, RECORD_ENABLED="1", RECORD_DIR=str(record_dir))
    got, body, response = await call(client, "GET", f"/records/{RECORD}",
                                     headers={"Range": header})  # contract-checked
    assert got == status, body
    if expected is not None:
        assert body == expected
    assert response.headers.get("Content-Range") == content_range


async def test_arm_takes_an_integral_number(tmp_path: Path) -> None:
    """JSON Schema's `integer` includes 60.0; the server refused it with 422."""
    async with running_app({"MEDIAGATE_DATA_DIR": str(tmp_path / "data"),
                            "PUNKTFUNK_MGMT_TOKEN": TOKEN}) as app:
        await _arm_cases(Api(app))


async def _arm_cases(api: Api) -> None:
    for body in ({"ttl_secs": 60.0}, {"ttl_secs": 847679.0}):
        response = await api.call("POST", "/api/v1/native/pair/arm", json=body)
        assert response.status_code == 503, response.body_bytes  # no native host here
    for body in ({"ttl_secs": 60.5}, {"ttl_secs": -1.0}, {"ttl_secs": 1e300}):
        response = await api.call("POST", "/api/v1/native/pair/arm", json=body)
        assert response.status_code == 422, response.body_bytes


def test_an_empty_limit_is_refused_like_any_non_number() -> None:
    """`?limit=` was taken as no limit: schemathesis' negative case (an integer parameter
    sent empty) was answered 200 on every paginated Studio listing."""
    from gateway.pagination import PaginationError, parse_limit

    assert parse_limit(None) == 50
    for raw in ("", " ", "ten"):
        with pytest.raises(PaginationError):
            parse_limit(raw)
