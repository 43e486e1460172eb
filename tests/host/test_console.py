"""The operator console in Debian's Chromium against the gateway served by Hypercorn:
a Moonlight PIN typed into the page completes pairing, and a stats capture of a real
aiortc publisher with two viewers draws live charts, then is viewed, downloaded, deleted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypercorn.asyncio import serve as hypercorn_serve
from playwright.async_api import Page, async_playwright

from gateway.app import create_app
from gateway.migrate import upgrade
from gateway.serve import hypercorn_config
from gateway.settings import Settings
from tests import contract
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.host.conftest import TOKEN
from tests.host.test_gamestream import MoonlightClient
from tests.host.test_stats import _publish
from tests.media.media_clients import Subscriber
from tests.pg import free_port


async def wait_points(page: Page, selector: str, at_least: int) -> None:
    """Poll the first chart's plotted point count (the page's CSP forbids eval)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        charts = page.locator(selector)
        if await charts.count():
            points = await charts.first.get_attribute("data-points")
            if points is not None and int(points) >= at_least:
                return
        assert asyncio.get_running_loop().time() < deadline, f"{selector}: too few points"
        await asyncio.sleep(0.25)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, object]]:
    port = free_port()
    settings = Settings.from_env({
        "MEDIAGATE_DATA_DIR": str(tmp_path / "data"), "MEDIAGATE_BIND": f"127.0.0.1:{port}",
        "PUNKTFUNK_MGMT_TOKEN": TOKEN, "MEDIAGATE_GAMESTREAM_HTTP_PORT": str(free_port()),
        "MEDIAGATE_GAMESTREAM_HTTPS_PORT": str(free_port())})
    await asyncio.to_thread(upgrade, settings.database_url)
    app = create_app(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(hypercorn_serve(app, hypercorn_config(settings),
                                               shutdown_trigger=stop.wait))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(f"{base}/api/v1/health")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
    yield base, app
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_console_pairs_and_charts_a_capture(served: tuple[str, object],
                                                  tmp_path: Path) -> None:
    base, app = served
    state = app.extensions["mediagate"]  # type: ignore[attr-defined]
    core = state.media
    auth = {"Authorization": f"Bearer {TOKEN}"}
    publisher, track_id = await _publish(core)
    viewers = [Subscriber(kinds=("video",)) for _ in range(2)]
    moonlight = MoonlightClient(tmp_path)
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    device = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{state.settings.gamestream_http_port}", timeout=60)
    try:
        for viewer in viewers:
            await viewer.play(await core.create_peer(), [track_id])
        pairing = asyncio.create_task(moonlight.pair(device, "5678", done))
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1100},
                                              accept_downloads=True)
                await page.goto(f"{base}/api/v1/console")
                await page.wait_for_selector("#auth:not(.hidden)")
                await page.fill("#token", TOKEN)
                await page.click("#auth-form button")

                await page.wait_for_selector("#pin-prompt:not(.hidden)", timeout=15_000)
                await page.fill("#pin", "5678")
                await page.click("#pin-submit")
                outcome = await asyncio.wait_for(pairing, 30)
                assert outcome.paired and outcome.server_proved_pin
                await page.wait_for_selector(
                    f"#paired tr[data-fingerprint='{moonlight.fingerprint}']", timeout=10_000)

                await page.click("#arm")
                await page.wait_for_selector("#native-armed:not(.hidden)")
                pin = await page.inner_text("#native-pin")
                assert len(pin) == 4 and pin.isdigit()

                await page.click("#capture-start")
                await wait_points(page, "#live-charts svg", 8)
                paths = await page.locator("#live-charts svg path").count()
                assert paths >= 4
                ARTIFACTS.mkdir(exist_ok=True)
                await page.screenshot(path=str(ARTIFACTS / "host-console-live.png"),
                                      full_page=True)

                await page.click("#capture-stop")
                row = page.locator("#recordings tr[data-id]")
                await row.first.wait_for(timeout=10_000)
                recording_id = await row.first.get_attribute("data-id")
                await row.first.locator("button.view").click()
                await wait_points(page, "#view-charts svg", 8)
                await page.screenshot(path=str(ARTIFACTS / "host-console-recording.png"),
                                      full_page=True)

                async with page.expect_download() as download_info:
                    await row.first.locator("button.download").click()
                download = await download_info.value
                assert download.suggested_filename == f"{recording_id}.json"
                downloaded_path = await download.path()
                downloaded = json.loads(await asyncio.to_thread(Path(downloaded_path).read_text))
                async with httpx.AsyncClient(base_url=base, headers=auth) as http:
                    path = f"/api/v1/stats/recordings/{recording_id}"
                    saved = await http.get(path)
                    contract.check("host", "GET", path, saved)
                    assert downloaded == saved.json()
                    assert len(saved.json()["samples"]) >= 4

                    await row.first.locator("button.delete").click()
                    await page.wait_for_selector(
                        f"#recordings tr[data-id='{recording_id}']", state="detached")
                    gone = await http.get(path)
                    contract.check("host", "GET", path, gone)
                    assert gone.status_code == 404
            finally:
                await browser.close()
    finally:
        await device.aclose()
        for viewer in viewers:
            await viewer.pc.close()
        await publisher.close()
