"""Part 2 storage (media library, chat, webhooks) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from gateway.db import Database
from gateway.egress import EgressPolicy
from gateway.keys import load_or_create_secret
from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.studio.chat import ChatService
from gateway.studio.chat_adapters import default_adapters
from gateway.studio.connections import ConnectionService
from gateway.studio.library import StudioLibrary
from gateway.studio.service import StudioService
from gateway.studio.webhooks import WebhookService
from media import MediaCore
from tests.studio.media_files import png_bytes


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    for offset in range(0, len(data), 7):
        yield data[offset:offset + 7]


async def test_media_library_storage(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path)})
    library = StudioLibrary(settings, db, load_or_create_secret(tmp_path, None))
    try:
        data = png_bytes()
        created = []
        for i in range(3):
            asset, query = await library.create_upload("olga", f"p{i}.png", "image/png",
                                                       len(data), "stills" if i else None)
            created.append((asset, query))
        await library.create_upload("someone", "x.png", "image/png", 5, None)
        first = await library.list_assets("olga", None, 2)
        second = await library.list_assets("olga", first.next_key, 2)
        assert [a.id for a in first.items + second.items] == [a.id for a, _ in created]
        assert second.next_key is None
        asset, query = created[1]
        params = dict(part.split("=") for part in query.split("&"))
        await library.receive(asset.id, params["expires"], params["signature"], "image/png",
                              None, _chunks(data))
        await library.wait_idle()
        stored = await library.get_asset("olga", asset.id)
        assert (stored.status, stored.kind, stored.folder) == ("READY", "image", "stills")
        assert stored.byte_size == len(data)
        # A process that died between storing and probing: the next one probes it.
        pending, pending_query = created[2]
        params = dict(part.split("=") for part in pending_query.split("&"))
        library.path(pending).parent.mkdir(parents=True, exist_ok=True)
        library.path(pending).write_bytes(data)
        restarted = StudioLibrary(settings, db, load_or_create_secret(tmp_path, None))
        await restarted.start()
        await restarted.wait_idle()
        assert (await restarted.get_asset("olga", pending.id)).status == "READY"
        assert (await restarted.get_asset("olga", created[0][0].id)).status == "UPLOADING"
    finally:
        await library.stop()
        await db.close()


async def test_chat_and_webhook_storage(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path),
                                  "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"})
    secret = load_or_create_secret(tmp_path, None)
    egress = EgressPolicy.from_cidrs(settings.egress_allow)
    http = egress.http_client()
    webhooks = WebhookService(settings, db, secret, egress, http)
    chat = ChatService(settings, db, secret, webhooks, default_adapters(http))
    studios = StudioService(settings, db, secret, MediaCore())
    try:
        studio = await studios.create_studio("olga", "s", None)
        sent = [(await chat.send("olga", studio.id, f"m{i}", None))[0].id for i in range(4)]
        await chat.receive_from_page(studio.id, "Ann", "from the page")
        recent = await chat.recent("olga", studio.id, 3)
        assert [m.text for m in recent] == ["m2", "m3", "from the page"]
        assert [m.id for m in await chat.recent("olga", studio.id, 4)][:3] == sent[1:]
        view = await chat.configure("olga", studio.id, "webhook",
                                    {"url": "http://127.0.0.1:9/x", "secret": "s" * 20,
                                     "enabled": False})
        assert view.has_secret and not view.enabled
        hook = await webhooks.create("olga", "http://127.0.0.1:9/h", ["chat.message"],
                                     "w" * 20, True)
        assert "w" * 20 not in hook.secret_sealed
        assert webhooks.box.open(hook.id, hook.secret_sealed) == "w" * 20
        assert [w.id for w in (await webhooks.list("olga", None, 10)).items] == [hook.id]
        await webhooks.delete("olga", hook.id)
        assert (await webhooks.list("olga", None, 10)).items == []
    finally:
        await webhooks.stop()
        await http.aclose()
        await db.close()


async def test_connection_storage_and_refresh_claims(database_url: str, tmp_path: Path) -> None:
    await asyncio.to_thread(upgrade, database_url)
    db = Database(database_url)
    settings = Settings.from_env({"MEDIAGATE_DATA_DIR": str(tmp_path),
                                  "MEDIAGATE_EGRESS_ALLOW": "127.0.0.0/8"})
    secret = load_or_create_secret(tmp_path, None)
    one = ConnectionService(settings, db, secret)
    other = ConnectionService(settings, db, secret)  # another replica
    try:
        row = await one.create_manual("olga", "custom", "Mine", "rtmps://127.0.0.1/app", "key-123")
        page = await one.list("olga", None, 10)
        assert [c.id for c in page.items] == [row.id] and page.next_key is None
        assert "key-123" not in (row.stream_key_sealed or "")
        assert await other.resolve_output("olga", row.id) == ("rtmps://127.0.0.1/app", "key-123")
        now = datetime.now(UTC)
        assert await one._claim(row.id, now)
        assert not await other._claim(row.id, now)  # held by the first replica
        await one.delete("olga", row.id)
        assert (await other.list("olga", None, 10)).items == []
    finally:
        await db.close()
