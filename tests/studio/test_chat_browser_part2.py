"""The built-in chat page in Debian's Chromium: live over SSE, viewers write into the store."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.studio.live_helpers import Api, start_gateway


async def test_chromium_shows_sent_messages_and_sends_its_own(tmp_path: Path) -> None:
    server = start_gateway(tmp_path / "data")
    api = Api(server)
    try:
        sid = api("POST", "/v1/studios", {"name": "Friday show"}, expect=201).json()["id"]
        api("POST", f"/v1/studios/{sid}/chat/messages", {"text": "before the page opened"},
            expect=201)
        platforms = api("GET", f"/v1/studios/{sid}/chat/platforms", expect=200).json()["data"]
        page_url = next(p["pageUrl"] for p in platforms if p["platform"] == "mediagate")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(page_url)
                assert await page.title() == "Chat: Friday show"
                await page.wait_for_selector("text=before the page opened", timeout=10_000)
                await page.wait_for_function(
                    "document.getElementById('status').textContent === 'live'", timeout=10_000)
                # Sent through the API while the page is open: pushed, not reloaded.
                await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/chat/messages",
                                        {"text": "hello <viewers> & friends"}, expect=201)
                item = page.locator("#messages li", has_text="hello <viewers> & friends")
                await item.wait_for(timeout=10_000)
                assert await item.locator(".platform").text_content() == "mediagate"
                assert await page.locator("#messages li b").count() == 0  # text, not HTML
                # A viewer writes on the page: it lands in the store.
                await page.fill("#author", "Ann")
                await page.fill("#text", "greetings from chromium")
                await page.click("button[type=submit]")
                await page.wait_for_selector("text=greetings from chromium", timeout=10_000)
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "studio-chat-page.png"))
            finally:
                await browser.close()
        listed = api("GET", f"/v1/studios/{sid}/chat/messages", expect=200).json()["data"]
        assert [(m["authorDisplayName"], m["text"], m["direction"]) for m in listed][-1] == (
            "Ann", "greetings from chromium", "in")
        assert len(listed) == 3
    finally:
        api.client.close()
        assert server.stop() == 0, server.log()[-5000:]
    assert "Traceback" not in server.log(), server.log()[-5000:]


def test_event_stream_ends_when_the_server_drains(tmp_path: Path) -> None:
    server = start_gateway(tmp_path / "data")
    api = Api(server)
    lines: list[str] = []
    try:
        sid = api("POST", "/v1/studios", {"name": "s"}, expect=201).json()["id"]
        platforms = api("GET", f"/v1/studios/{sid}/chat/platforms", expect=200).json()["data"]
        page_url = next(p["pageUrl"] for p in platforms if p["platform"] == "mediagate")
        events_url = page_url.replace("/chat/page?", "/chat/events?")

        def follow() -> None:
            with httpx.stream("GET", events_url, timeout=30) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    lines.append(line)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        time.sleep(0.5)
        sent = api("POST", f"/v1/studios/{sid}/chat/messages", {"text": "streamed"},
                   expect=201).json()
        deadline = time.monotonic() + 10
        while not any(sent["messageId"] in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.1)
        assert f"id: {sent['messageId']}" in lines
        stopping = time.monotonic()
    finally:
        api.client.close()
        assert server.stop() == 0, server.log()[-5000:]
    assert time.monotonic() - stopping < 3  # the open stream does not hold the shutdown
    reader.join(5)
    assert not reader.is_alive()
    assert "Traceback" not in server.log(), server.log()[-5000:]
