"""Part 2 storage (media library) on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.db import Database
from gateway.keys import load_or_create_secret
from gateway.migrate import upgrade
from gateway.settings import Settings
from gateway.studio.library import StudioLibrary
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
