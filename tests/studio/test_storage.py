"""Studio storage on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.db import Database
from gateway.keys import load_or_create_secret
from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.studio import apikeys
from gateway.studio.service import StudioService
from media import MediaCore
from tests.pg import PostgresServer
from tests.studio.conftest import StudioClient


async def test_service_storage(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path),
                                  "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"})
    svc = StudioService(settings, db, load_or_create_secret(tmp_path, None), MediaCore())
    try:
        issued = await apikeys.create_key(db, "olga", ["studios:read", "stream:read"])
        principal = await apikeys.authenticate(db, issued.key)
        assert principal is not None and principal.owner == "olga"
        assert principal.scopes == {"studios:read", "stream:read"}
        await apikeys.ensure_bootstrap_key(db, "sk_live_" + "b" * 20)
        await apikeys.ensure_bootstrap_key(db, "sk_live_" + "b" * 20)
        boot = await apikeys.authenticate(db, "sk_live_" + "b" * 20)
        assert boot is not None and boot.scopes == set(apikeys.ALL_SCOPES)
        assert await apikeys.revoke_key(db, issued.id)
        assert await apikeys.authenticate(db, issued.key) is None

        ids = [(await svc.create_studio("olga", f"s{i}", None)).id for i in range(5)]
        first = await svc.list_studios("olga", None, 2)
        second = await svc.list_studios("olga", first.next_key, 2)
        third = await svc.list_studios("olga", second.next_key, 2)
        assert [s.id for s in first.items + second.items + third.items] == ids
        assert third.next_key is None
        a = await svc.create_source("olga", ids[0], "a", "webrtc-input", None, None)
        b = await svc.create_source("olga", ids[0], "b", "srt", "srt://127.0.0.1:9000", True)
        listed = await svc.list_sources("olga", ids[0], None, 10)
        assert {s.id: s.active for s in listed.items} == {a.id: False, b.id: True}
        dest = await svc.create_destination(
            "olga", ids[0], {"name": "d", "platform": "p", "rtmp_url": "rtmp://127.0.0.1/app"},
            "the-stream-key-123")
        async with db.session() as session:
            sealed = (await session.execute(text(
                "SELECT stream_key_sealed FROM studio_destinations"))).scalar_one()
        assert "the-stream-key-123" not in sealed
        assert svc.sealer.open(dest.id, sealed) == "the-stream-key-123"
        assert svc.sealer.open("dst_other", sealed) is None
    finally:
        await db.close()


class TestOverHttpOnPostgres:
    @pytest.fixture
    def studio_env(self, postgres: PostgresServer) -> dict[str, str]:
        return {"MEDIAGATE_DATABASE_URL": postgres.create_database(),
                "STUDIO_RATE_LIMIT_RPS": "0", "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"}

    async def test_odd_input_is_400_or_404_never_500(self, studio: StudioClient,
                                                     admin_key: str) -> None:
        sid = (await studio.call("POST", "/v1/studios", key=admin_key,
                                 json_body={"name": "pg"})).json()["id"]
        for path in ("/v1/studios/%00", f"/v1/studios/{sid}/sources/%00x",
                     "/v1/studios/" + "a" * 300):
            method = "PATCH" if "sources" in path else "GET"
            reply = await studio.call(method, path, key=admin_key, json_body={"name": "n"})
            assert reply.status == 404, path
        for body in ({"name": "a\u0000b"}, {"name": "ok", "description": "\u0000"}):
            reply = await studio.call("POST", "/v1/studios", key=admin_key, json_body=body)
            assert reply.status == 400, body
        dest = await studio.call("POST", f"/v1/studios/{sid}/destinations", key=admin_key,
                                 json_body={"name": "d", "platform": "p\u0000"})
        assert dest.status == 400
        listed = await studio.call("GET", "/v1/studios?limit=1", key=admin_key)
        assert [s["id"] for s in listed.json()["data"]] == [sid]


async def test_replicas_share_live_state(database_url: str, tmp_path: Path) -> None:
    """Two gateway processes on one database: one runs the broadcast, both see it, either
    can end it, and a replica that died stops counting as live."""
    from gateway.studio import service as service_module

    await asyncio.to_thread(upgrade, database_url)
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path),
                                  "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"})
    secret = load_or_create_secret(tmp_path, None)
    db_one, db_two = Database(database_url), Database(database_url)
    one = StudioService(settings, db_one, secret, MediaCore())
    two = StudioService(settings, db_two, secret, MediaCore())
    await one.start()
    await two.start()
    try:
        studio = await one.create_studio("rita", "shared", None)
        await one.create_source("rita", studio.id, "cam", "webrtc-input", None, True)
        await one.create_destination("rita", studio.id, {
            "name": "d", "platform": "p", "rtmp_url": "rtmp://127.0.0.1:9/live"}, "k")
        stream_id, ids = await one.go_live("rita", studio.id)
        assert (await two.stream_status("rita", studio.id)).encoder_stream_id == stream_id
        assert await two.go_live("rita", studio.id) == (stream_id, ids)
        assert not two.broadcasts  # not started twice

        await two.go_offline("rita", studio.id)
        for _ in range(50):  # the owner notices at its next heartbeat
            if not one.broadcasts:
                break
            await asyncio.sleep(0.1)
        assert not one.broadcasts
        assert (await one.stream_status("rita", studio.id)).live is False

        stream_id, _ = await one.go_live("rita", studio.id)
        # `one` crashes: its media stops, its heartbeat too, the row still says live
        assert one._keeper is not None
        one._keeper.cancel()
        await one._stop_broadcast(studio.id, local_only=True)
        assert (await two.stream_status("rita", studio.id)).live is True
        async with db_two.session() as session:
            await session.execute(text(
                "UPDATE studio_studios SET live_heartbeat_at = :old"), {
                "old": datetime.now(UTC) - timedelta(seconds=service_module.STALE_SECONDS + 1)})
        assert (await two.stream_status("rita", studio.id)).live is False
        taken_over, _ = await two.go_live("rita", studio.id)
        assert taken_over != stream_id and studio.id in two.broadcasts
    finally:
        await one.stop()
        await two.stop()
        await db_one.close()
        await db_two.close()
