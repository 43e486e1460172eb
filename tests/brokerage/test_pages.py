"""The landing page, the live dashboard in Debian's Chromium, and the QR code."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.brokerage.helpers import Api, Peer
from tests.brokerage.test_signalling import _peer_token
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.server import RunningServer


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                    args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def _row(page: Page, stream: str, cell: str) -> str:
    return await page.locator(f'tr[data-stream="{stream}"] .{cell}').inner_text()


async def test_dashboard_shows_peers_joining_live(api: Api, punch_server: RunningServer,
                                                  browser: Browser) -> None:
    page = await browser.new_page()
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(api.base_url) or r.url.startswith(
        "ws://127.0.0.1") else external.append(r.url))
    # create through the landing page's form: it lands on the observer dashboard
    await page.goto(api.base_url + "/")
    await page.fill("#name", "live-dash")
    await page.fill("#streams", "cam1, cam2")
    await page.click("button[type=submit]")
    await page.wait_for_url("**/s/live-dash?t=*")
    admin = page.url.split("?t=", 1)[1]
    await expect(page.locator("#state")).to_have_text("WAITING")
    await expect(page.get_by_text("(observer)")).to_be_visible()

    token = _peer_token(api, "live-dash", admin, "cam2")
    a = await Peer.connect(api.base_url, "live-dash", token)
    b = await Peer.connect(api.base_url, "live-dash", token)
    try:
        await a.send({"type": "register", "port": 9100})
        await a.expect("registered")
        await b.send({"type": "register", "port": 9102})
        await b.expect("peer")
        await expect(page.locator("#state")).to_have_text("READY")
        await expect(page.locator('tr[data-stream="cam2"] .peers')).to_have_text("2")
        await expect(page.locator('tr[data-stream="cam2"] .sstate')).to_have_text("READY")
        assert await _row(page, "cam1", "peers") == "0"
        await a.send({"type": "health", "status": "healthy", "rtt": 8})
        await expect(page.locator('tr[data-stream="cam2"] .health')).to_contain_text(
            "a: healthy")
        await page.select_option("#tstream", "cam2")
        await page.select_option("#tstate", "program")
        await page.click("#tset")
        assert (await b.expect("tally"))["state"] == "program"
        await expect(page.locator('tr[data-stream="cam2"] .tally')).to_have_text("program")
        await b.send({"type": "status", "srt": "connected"})
        await expect(page.locator("#state")).to_have_text("CONNECTED")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "brokerage-dashboard.png"), full_page=True)
    finally:
        await a.close()
        await b.close()
    assert external == []


async def test_dashboard_join_controls(api: Api, browser: Browser) -> None:
    created = api.create("join-page")
    page = await browser.new_page()
    response = await page.goto(f"{api.base_url}/s/join-page")
    assert response is not None and response.status == 200
    await expect(page.get_by_text("(observer)")).to_have_count(0)
    await page.fill("#jport", "9200")
    await page.select_option("#jrole", "receiver")
    await page.click("#join")
    await expect(page.locator("#joined")).to_have_text("Joined default as peer a")
    peer = await Peer.connect(api.base_url, "join-page",
                              _peer_token(api, "join-page", created["token"]))
    try:
        await peer.send({"type": "register", "port": 9202})
        assert (await peer.expect("peer"))["port"] == 9200
        await expect(page.locator("#peerinfo")).to_contain_text("127.0.0.1:9202")
        # this side receives: its commands read SRT from the other peer into UDP
        command = page.locator('#commands pre[data-format="srt-live-transmit"]')
        await expect(command).to_contain_text("srt://127.0.0.1:9202?mode=rendezvous&port=9200")
        await expect(command).to_contain_text("udp://127.0.0.1:9201")
        text = await command.inner_text()
        assert text.index("srt://") < text.index("udp://")
        await expect(page.locator('#commands pre[data-format="ffmpeg"]')).to_contain_text(
            "output.ts")
    finally:
        await peer.close()
    missing = api.request("GET", "/s/no-such-session")
    assert missing.status_code == 404


async def test_qr_decodes_to_the_dashboard_url(api: Api, browser: Browser) -> None:
    api.create("qr-code")
    response = api.request("GET", "/s/qr-code/qr")
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.lstrip().startswith("<?xml") and "<svg" in response.text
    page = await browser.new_page(viewport={"width": 800, "height": 800})
    await page.goto(f"{api.base_url}/s/qr-code/qr")
    png = await page.locator("svg").screenshot()
    image = Image.open(io.BytesIO(png)).convert("L")
    results = zxingcpp.read_barcodes(image)
    assert [r.text for r in results] == [f"{api.base_url}/s/qr-code"]
