"""Media-session placement across replicas, and forwarding to the owning replica."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from quart import Response

from gateway.app import create_app
from gateway.db import Database
from gateway.migrate import upgrade
from gateway.placement import OwnerUnreachable, Placement, already_forwarded, forward
from gateway.settings import Settings
from gateway.state import gateway_state
from tests.pg import free_port
from tests.server import RunningServer


async def test_claims_are_seen_by_other_replicas(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        a = Placement(db, "http://a:8080")
        b = Placement(db, "http://b:8080/")
        await a.claim("live/room/demo")
        assert await b.owner("live/room/demo") == "http://a:8080"
        assert await a.owner("live/room/demo") is None  # held here
        assert await b.owner("live/room/other") is None
        await b.release("live/room/demo")  # not b's to release
        assert await b.owner("live/room/demo") == "http://a:8080"
        await b.claim("live/room/demo")  # the session moved (a new publisher on b)
        assert await a.owner("live/room/demo") == "http://b:8080"
        await b.reset()  # b restarted: its sessions are gone
        assert await a.owner("live/room/demo") is None
    finally:
        await db.close()


async def test_single_box_claims_nothing(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        single = Placement(db, None)
        await single.claim("live/room/demo")
        assert not single.enabled
        assert await Placement(db, "http://x").owner("live/room/demo") is None
    finally:
        await db.close()


def _replica(tmp_path: Path, database_url: str, replica_url: str):
    settings = Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path), "MEDIAGATE_DATABASE_URL": database_url,
        "MEDIAGATE_REPLICA_URL": replica_url,
    })
    app = create_app(settings)

    @app.get("/api/v1/probe/<key>")
    async def probe(key: str) -> Response:
        placement = gateway_state().placement
        owner = await placement.owner(key)
        if owner and not already_forwarded():
            return await forward(placement, key, owner)
        return Response(f"local {key}", status=200)

    return app


async def test_requests_for_another_replicas_session_are_forwarded(
    server: RunningServer, tmp_path: Path
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    try:
        # the subprocess server plays the owning replica: /api/health exists there
        await Placement(db, server.base_url).claim("api")
    finally:
        await db.close()
    app = _replica(tmp_path / "a", database_url, "http://127.0.0.1:1")
    async with app.test_app():
        client = app.test_client()
        forwarded = await client.get("/api/v1/probe/api")
        assert forwarded.status_code == 404  # the owner has no probe route: its answer came back
        assert (await forwarded.get_json()) == {"error": "not found"}
        local = await client.get("/api/v1/probe/mine")
        assert await local.get_data(as_text=True) == "local mine"


async def test_an_unreachable_owner_is_forgotten(tmp_path: Path) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    await asyncio.to_thread(upgrade, database_url)
    dead = f"http://127.0.0.1:{free_port()}"
    db = Database(database_url)
    try:
        await Placement(db, dead).claim("live/room/gone")
    finally:
        await db.close()
    app = _replica(tmp_path / "a", database_url, "http://127.0.0.1:1")
    async with app.test_app():
        placement = gateway_state_of(app).placement
        async with app.test_request_context("/api/v1/probe/x"):
            with pytest.raises(OwnerUnreachable):
                await forward(placement, "live/room/gone", dead)
        assert await placement.owner("live/room/gone") is None


def gateway_state_of(app):
    return app.extensions["mediagate"]
