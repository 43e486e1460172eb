"""A real browser: Chromium publishes its fake camera from /web/publisher.html and a second
page plays it from /web/player.html, both trickling ICE through the session resources."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.async_api import Page, async_playwright

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.live.helpers import request, rooms, start_live_server
from tests.server import RunningServer


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_live_server(tmp_path_factory.mktemp("browser") / "data",
                               ROOM_TOKENS="browser:page-token")
    yield server
    assert server.stop() == 0, server.log()


async def status_of(page: Page) -> str:
    return await page.locator("#status").inner_text()


async def test_chromium_publishes_and_plays(live_server: RunningServer,
                                            http: httpx.AsyncClient) -> None:
    base = live_server.base_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            publisher = await browser.new_page()
            await publisher.goto(
                f"{base}/web/publisher.html?room=browser&token=page-token&autostart=1")
            await publisher.wait_for_function(
                "document.getElementById('status').textContent.endsWith('connected')",
                timeout=30_000)
            listed = (await rooms(http))["browser"]
            assert listed["hasPublisher"] is True and listed["tracks"] == 2

            index = await browser.new_page()
            await index.goto(f"{base}/web/index.html")
            await index.wait_for_selector("tr[data-room=browser]", timeout=10_000)

            player = await browser.new_page()
            await player.goto(f"{base}/web/player.html?room=browser&token=page-token&autostart=1")
            await player.wait_for_function(
                "document.getElementById('video').videoWidth > 0", timeout=30_000)
            first = await player.evaluate("document.getElementById('video').currentTime")
            await player.wait_for_function(
                f"document.getElementById('video').currentTime > {first} + 1.0",
                timeout=15_000)
            width = await player.evaluate("document.getElementById('video').videoWidth")
            height = await player.evaluate("document.getElementById('video').videoHeight")
            assert width > 0 and height > 0
            assert (await status_of(player)).endswith("connected")
            assert (await rooms(http))["browser"]["subscribers"] == 1
            ARTIFACTS.mkdir(exist_ok=True)
            await player.screenshot(path=str(ARTIFACTS / "live-player.png"))
            await publisher.screenshot(path=str(ARTIFACTS / "live-publisher.png"))

            # Stop deletes the player's session resource; the room keeps its publisher
            await player.click("#stop")
            await player.wait_for_function(
                "document.getElementById('status').textContent === 'stopped'")
            listed = (await rooms(http))["browser"]
            assert listed["subscribers"] == 0 and listed["hasPublisher"] is True

            # the wrong token is refused in the page
            await player.fill("#token", "wrong")
            await player.click("#start")
            await player.wait_for_function(
                "document.getElementById('status').textContent.startsWith('error: 401')")
        finally:
            await browser.close()
    response = await request(http, "GET", "/api/rooms")
    assert response.status_code == 200
