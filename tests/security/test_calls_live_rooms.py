"""Calls pulls of live (WHIP) rooms honour the rooms' protection (finding 3 of issue 13).

A room the live-rooms API protects (its `ROOM_TOKENS` entry, else `AUTH_TOKEN`, else
`JWT_SECRET`) is pulled as `sessionId: "live:<room>"` only by the Calls apps
`CALLS_LIVE_ROOMS` grants it to; the refusal is a per-track error that reads the same
whether or not the room exists. Open rooms stay pullable by any app.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from quart import Quart

from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.settings import Settings, SettingsError
from gateway.state import EXTENSION
from tests.calls.helpers import (
    APP_ID,
    APP_SECRET,
    CallsApi,
    CallsPeer,
    publish_whip,
    pull,
    wait_for,
)
from tests.media.media_clients import Publisher

JWT_SECRET = "calls-live-jwt-secret-0123456789"
ONE_APP, ONE_SECRET = "granted-one", "granted-one-secret-0123"
ALL_APP, ALL_SECRET = "granted-all", "granted-all-secret-0123"
GRANTS = f"{ONE_APP}:stage,side;{ALL_APP}:*"


def _jwt(room: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return jwt.encode({"alg": "HS256"}, {"room": room, "exp": int(time.time()) + 600},
                          OctKey.import_key(JWT_SECRET), algorithms=["HS256"])


# protection mode -> (live env, the publisher's credentials for room `stage`)
MODES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "room_tokens": ({"ROOM_TOKENS": "stage:stage-token;backstage:backstage-token"},
                    {"Authorization": "Bearer stage-token"}),
    "auth_token": ({"AUTH_TOKEN": "live-auth-token"}, {"X-Auth-Token": "live-auth-token"}),
    "jwt": ({"JWT_SECRET": JWT_SECRET}, {"Authorization": f"Bearer {_jwt('stage')}"}),
}


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(tmp_path: Path, mode: str) -> Settings:
    return Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path / "data"),
        "CALLS_APP_ID": APP_ID, "CALLS_APP_SECRET": APP_SECRET,
        "CALLS_LIVE_ROOMS": GRANTS,
        **MODES[mode][0],
    })


@pytest.fixture
async def stage(app: Quart, mode: str) -> AsyncIterator[Publisher]:
    """A publisher in the protected room `stage`, and the granted apps created."""
    service = app.extensions[EXTENSION].services["calls"]
    await service.apps.ensure(ONE_APP, ONE_SECRET)
    await service.apps.ensure(ALL_APP, ALL_SECRET)
    publisher = Publisher("video/VP8")
    assert await publish_whip(app.test_client(), "stage", publisher, MODES[mode][1]) == 201
    yield publisher
    await publisher.close()


def _api(app: Quart, app_id: str = APP_ID, secret: str = APP_SECRET) -> CallsApi:
    return CallsApi(app.test_client(), app_id=app_id, secret=secret)


async def _try_pull(api: CallsApi, session_id: str, room: str) -> dict[str, Any]:
    reply = await api.call("POST", f"/sessions/{session_id}/tracks/new", {"tracks": [
        {"location": "remote", "sessionId": f"live:{room}", "trackName": "video"}]})
    assert reply.status == 200, reply.body
    return reply.body


async def test_ungranted_app_is_refused_alike_for_existing_and_missing_rooms(
    app: Quart, stage: Publisher
) -> None:
    api = _api(app)
    session_id = await api.new_session()
    existing = await _try_pull(api, session_id, "stage")
    missing = await _try_pull(api, session_id, "backstage")  # protected, no publisher
    refusals = [(b["tracks"][0]["errorCode"], b["tracks"][0]["errorDescription"])
                for b in (existing, missing)]
    assert refusals[0] == refusals[1], refusals
    assert refusals[0][0] == "forbidden"
    for body in (existing, missing):
        assert body["requiresImmediateRenegotiation"] is False
        assert "sessionDescription" not in body
    state = await api.state(session_id)
    assert state == {}  # nothing was subscribed


async def test_granted_apps_pull_the_protected_room(app: Quart, stage: Publisher) -> None:
    for app_id, secret in ((ONE_APP, ONE_SECRET), (ALL_APP, ALL_SECRET)):
        api = _api(app, app_id, secret)
        viewer = CallsPeer()
        viewer.session_id = await api.new_session()
        mids = await pull(api, viewer, "live:stage", ["video"])
        await wait_for(lambda v=viewer, m=mids: len(v.captures[m["video"]].frames) >= 3, 10)
        await viewer.close()


async def test_a_grant_is_per_room(app: Quart, stage: Publisher, mode: str) -> None:
    """`granted-one` may pull `stage` and `side`, not `backstage` (protected in every mode)."""
    api = _api(app, ONE_APP, ONE_SECRET)
    session_id = await api.new_session()
    body = await _try_pull(api, session_id, "backstage")
    assert body["tracks"][0]["errorCode"] == "forbidden"
    # a granted room without a publisher says so, as for an open room
    body = await _try_pull(api, session_id, "side")
    assert body["tracks"][0]["errorCode"] == "session_not_found"


@pytest.mark.parametrize("live_env", [{}, {"ROOM_TOKENS": "stage:stage-token"}],
                         ids=["no-live-auth", "other-room-has-a-token"])
async def test_open_rooms_stay_pullable(tmp_path: Path, live_env: dict[str, str]) -> None:
    """No live auth at all, or ROOM_TOKENS alone naming other rooms: any app may pull."""
    settings = Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path / "data"),
        "CALLS_APP_ID": APP_ID, "CALLS_APP_SECRET": APP_SECRET, **live_env,
    })
    await asyncio.to_thread(upgrade, settings.database_url)
    application = create_app(settings)
    async with application.test_app():
        publisher = Publisher("video/VP8")
        assert await publish_whip(application.test_client(), "lobby", publisher) == 201
        api = _api(application)
        viewer = CallsPeer()
        viewer.session_id = await api.new_session()
        mids = await pull(api, viewer, "live:lobby", ["video"])
        await wait_for(lambda: len(viewer.captures[mids["video"]].frames) >= 3, 10)
        await viewer.close()
        await publisher.close()


@pytest.mark.parametrize("value", [
    "app1", "app1:", ":room", "app1:room/x", "app 1:room", "app1:room;app2", "a:" + "r" * 65,
])
def test_bad_grants_stop_start_up(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path), "CALLS_LIVE_ROOMS": value})
    message = str(raised.value)
    assert message.startswith("CALLS_LIVE_ROOMS:") and "\n" not in message


def test_grants_parse() -> None:
    settings = Settings.from_env({"CALLS_LIVE_ROOMS": " a:r1, r2 ; b:* ;a:r3;"})
    assert settings.calls_live_rooms == {"a": {"r1", "r2", "r3"}, "b": {"*"}}
