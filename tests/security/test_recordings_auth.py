"""Recordings (`GET /api/records`, `/records/{name}`) are admin-only as soon as any live auth
is configured (finding 9 of issue 13); open only when none is. Admin is what admin close takes:
`ADMIN_TOKEN`, or a JWT with `role=admin` / `admin: true`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.live.test_auth_http import bearer, call, client_for, exp, token

RECORD = "demo_video1_1700000000.ivf"
ADMIN = "admin-token-for-records"
ROOM_TOKEN = "room-token-for-records"
PATHS = ("/api/records", f"/records/{RECORD}")


@pytest.fixture
def record_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "rec"
    directory.mkdir()
    (directory / RECORD).write_bytes(b"DKIF" + bytes(28))
    return directory


async def statuses(tmp_path: Path, record_dir: Path, headers: dict[str, str],
                   **env: str) -> list[int]:
    client = client_for(tmp_path, RECORD_ENABLED="1", RECORD_DIR=str(record_dir), **env)
    found = []
    for path in PATHS:
        status, body, _ = await call(client, "GET", path, headers=headers)  # contract-checked
        if status == 401:
            assert body == b"unauthorized\n"
        found.append(status)
    return found


async def test_open_when_no_auth_is_configured(tmp_path: Path, record_dir: Path) -> None:
    assert await statuses(tmp_path, record_dir, {}) == [200, 200]


@pytest.mark.parametrize("env", [
    {"ADMIN_TOKEN": ADMIN},
    {"JWT_SECRET": "jwt-secret-for-tests"},
    {"ADMIN_TOKEN": ADMIN, "JWT_SECRET": "jwt-secret-for-tests"},
    {"AUTH_TOKEN": ROOM_TOKEN},
    {"ROOM_TOKENS": f"demo:{ROOM_TOKEN}"},
], ids=["admin-token", "jwt", "admin-and-jwt", "auth-token", "room-tokens"])
async def test_closed_to_anyone_but_an_admin_once_auth_is_configured(
        tmp_path: Path, record_dir: Path, env: dict[str, str]) -> None:
    for headers in ({}, bearer("wrong"), {"X-Auth-Token": "wrong"}, bearer(ROOM_TOKEN),
                    {"X-Auth-Token": ROOM_TOKEN},
                    bearer(token({"exp": exp(60), "room": "demo"})),
                    bearer(token({"exp": exp(60), "role": "viewer"})),
                    bearer(token({"exp": exp(-120), "role": "admin"}))):
        assert await statuses(tmp_path, record_dir, headers, **env) == [401, 401], headers


@pytest.mark.parametrize(("env", "headers"), [
    ({"ADMIN_TOKEN": ADMIN}, lambda: bearer(ADMIN)),
    ({"ADMIN_TOKEN": ADMIN}, lambda: {"X-Auth-Token": ADMIN}),
    ({"ADMIN_TOKEN": ADMIN, "AUTH_TOKEN": ROOM_TOKEN}, lambda: bearer(ADMIN)),
    ({"JWT_SECRET": "jwt-secret-for-tests"},
     lambda: bearer(token({"exp": exp(60), "role": "admin"}))),
    ({"JWT_SECRET": "jwt-secret-for-tests"},
     lambda: bearer(token({"exp": exp(60), "admin": True}))),
], ids=["bearer", "x-auth-token", "with-auth-token", "jwt-role", "jwt-admin-claim"])
async def test_an_admin_reads_them(tmp_path: Path, record_dir: Path, env: dict[str, str],
                                   headers: Callable[[], dict[str, str]]) -> None:
    assert await statuses(tmp_path, record_dir, headers(), **env) == [200, 200]


async def test_unknown_names_are_401_before_404(tmp_path: Path, record_dir: Path) -> None:
    """Without admin rights nothing tells which recordings exist."""
    client = client_for(tmp_path, RECORD_ENABLED="1", RECORD_DIR=str(record_dir),
                        ADMIN_TOKEN=ADMIN)
    status, _, _ = await call(client, "GET", "/records/nothing_video1_1.ivf")
    assert status == 401
    status, _, _ = await call(client, "GET", "/records/nothing_video1_1.ivf",
                              headers=bearer(ADMIN))
    assert status == 404
