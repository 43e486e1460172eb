"""/web/index.html in Chromium lists and downloads recordings when they are open, and with
admin-only recordings (finding 9 of issue 13) still lists the rooms, asks for the admin token
and then lists and downloads them with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.live.helpers import start_live_server
from tests.server import RunningServer

RECORD = "demo_video1_1700000000.ivf"
CONTENT = b"DKIF" + bytes(range(60))
ADMIN = "page-admin-token"


def _server(base: Path, **env: str) -> RunningServer:
    records = base / "records"
    records.mkdir(parents=True)
    (records / RECORD).write_bytes(CONTENT)
    return start_live_server(base / "data", RECORD_ENABLED="1", RECORD_DIR=str(records), **env)


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = _server(tmp_path_factory.mktemp("open"))
    yield server
    assert server.stop() == 0, server.log()


@pytest.fixture(scope="module")
def admin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = _server(tmp_path_factory.mktemp("admin"), ADMIN_TOKEN=ADMIN,
                     ROOM_TOKENS="demo:room-token")
    yield server
    assert server.stop() == 0, server.log()


async def _downloaded(browser: Browser, url: str) -> bytes:
    page = await browser.new_page()
    try:
        await page.goto(url)
        row = page.locator(f"tr[data-record='{RECORD}']")
        await row.wait_for(timeout=10_000)
        async with page.expect_download() as info:
            await row.locator("a").click()
        download = await info.value
        saved = await download.path()
        return await asyncio.to_thread(Path(saved).read_bytes)
    finally:
        await page.close()


async def test_index_page_lists_and_downloads_recordings(open_server: RunningServer,
                                                         admin_server: RunningServer) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # open: a plain link
            assert await _downloaded(browser, f"{open_server.base_url}/web/index.html") == CONTENT

            # admin-only, no token: the rooms table still works, the recordings ask for it
            page = await browser.new_page()
            await page.goto(f"{admin_server.base_url}/web/index.html")
            await page.wait_for_function(
                "document.getElementById('records').textContent.includes('admin token')",
                timeout=10_000)
            assert "error" not in await page.locator("#rooms").inner_text()
            # a room token is not enough
            await page.fill("#token", "room-token")
            await page.dispatch_event("#token", "change")
            await page.wait_for_function(
                "document.getElementById('records').textContent.includes('admin token')")
            await page.close()

            # with the admin token: listed, and downloaded through fetch with the token
            url = f"{admin_server.base_url}/web/index.html?token={ADMIN}"
            assert await _downloaded(browser, url) == CONTENT
        finally:
            await browser.close()
