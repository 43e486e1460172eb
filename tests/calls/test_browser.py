"""A real Chromium runs the official echo flow against the gateway from another origin."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Response, sync_playwright

from tests import contract
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.calls.helpers import APP_ID, APP_SECRET
from tests.server import RunningServer, start_server

PAGES = Path(__file__).parent / "pages"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """The test page on its own port: another origin than the API, so CORS is exercised."""
    handler = functools.partial(_Quiet, directory=str(PAGES))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def calls_server(tmp_path: Path) -> Iterator[RunningServer]:
    server = start_server(tmp_path / "data",
                          env={"CALLS_APP_ID": APP_ID, "CALLS_APP_SECRET": APP_SECRET,
                               "MEDIAGATE_SHUTDOWN_GRACE": "2"})
    yield server
    assert server.stop() == 0, server.log()[-3000:]


def test_browser_echo_plays_pulled_video(calls_server: RunningServer, page_origin: str) -> None:
    api = f"{calls_server.base_url}/v1"
    artifacts = ARTIFACTS
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            api_responses: list[Response] = []
            page.on("response", lambda response: api_responses.append(response)
                    if response.url.startswith(api) else None)
            page.goto(f"{page_origin}/echo.html?api={api}&app={APP_ID}&secret={APP_SECRET}")
            result = page.evaluate("runEcho()")
            assert result["kinds"] == ["audio", "video"], console
            page.wait_for_function(
                "document.getElementById('remote-video').videoWidth > 0", timeout=10_000
            )
            first = page.evaluate("document.getElementById('remote-video').currentTime")
            page.wait_for_function(
                f"document.getElementById('remote-video').currentTime > {first} + 1",
                timeout=10_000,
            )
            size = page.evaluate(
                "[document.getElementById('remote-video').videoWidth,"
                " document.getElementById('remote-video').videoHeight]"
            )
            assert size[0] > 0 and size[1] > 0
            page.wait_for_function("window.firstFrameAt !== undefined", timeout=5_000)
            delay_ms = page.evaluate("window.firstFrameAt - window.renegotiateAt")
            print(f"renegotiate -> first frame in the browser: {delay_ms:.0f} ms")
            page.screenshot(path=str(artifacts / "calls-browser-echo.png"))
            closed = page.evaluate("closeVideo()")
            assert closed["signalingState"] == "stable", console
            # what the browser got from the API, checked against the contract
            checked = 0
            for response in api_responses:
                request = response.request
                if request.method == "OPTIONS":
                    continue
                path = response.url[len(calls_server.base_url):]
                contract.check("calls", request.method, path, response, response.body())
                assert "origin" in response.headers.get("vary", "").lower()
                assert response.headers["access-control-allow-origin"] == page_origin
                checked += 1
            assert checked == 6  # 2 x sessions/new, 2 x tracks/new, renegotiate, tracks/close
            # the audio keeps flowing after the renegotiation
            audio_ok = page.evaluate(
                "window.echo.localPeerConnection.connectionState"
            )
            assert audio_ok == "connected"
        finally:
            browser.close()

    # the gateway's view: the closed video is inactive for its pusher and its puller
    headers = {"Authorization": f"Bearer {APP_SECRET}"}
    statuses: dict[str, dict[str, str]] = {}
    for session_id in (result["pushSession"], result["pullSession"]):
        path = f"/v1/apps/{APP_ID}/sessions/{session_id}"
        response = httpx.get(calls_server.base_url + path, headers=headers, timeout=10)
        contract.check("calls", "GET", path, response)
        statuses[session_id] = {t["kind"] if "kind" in t else t["location"]: t["status"]
                                for t in response.json()["tracks"]}
        by_mid = {t.get("mid"): t["status"] for t in response.json()["tracks"]}
        if session_id == result["pushSession"]:
            assert by_mid[closed["mid"]] == "inactive"
            assert sorted(by_mid.values()) == ["active", "inactive"]
        else:
            assert sorted(by_mid.values()) == ["active", "inactive"], by_mid


async def test_browser_watches_a_whip_room_through_calls(
    calls_server: RunningServer, page_origin: str
) -> None:
    """A WHIP publisher (aiortc, live API) watched by Chromium through the Calls API."""
    import asyncio

    from aiortc import RTCSessionDescription
    from playwright.async_api import async_playwright

    from tests.media.media_clients import Publisher

    publisher = Publisher("video/VP8")
    await publisher.pc.setLocalDescription(await publisher.pc.createOffer())
    path = "/api/whip/publish/stage"
    async with httpx.AsyncClient(base_url=calls_server.base_url, timeout=30) as client:
        response = await client.post(path, content=publisher.pc.localDescription.sdp,
                                     headers={"Content-Type": "application/sdp"})
    contract.check("live", "POST", path, response)
    assert response.status_code == 201, response.text
    await publisher.pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    api = f"{calls_server.base_url}/v1"
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                await page.goto(
                    f"{page_origin}/watch.html?api={api}&app={APP_ID}&secret={APP_SECRET}"
                )
                session_id = await page.evaluate("watchRoom('stage')")
                await page.wait_for_function(
                    "document.getElementById('remote-video').videoWidth === 320",
                    timeout=15_000,
                )
                first = await page.evaluate(
                    "document.getElementById('remote-video').currentTime"
                )
                await page.wait_for_function(
                    f"document.getElementById('remote-video').currentTime > {first} + 1",
                    timeout=10_000,
                )
                artifacts = ARTIFACTS
                artifacts.mkdir(exist_ok=True)
                await page.screenshot(path=str(artifacts / "calls-browser-whip-room.png"))
            finally:
                await browser.close()
    finally:
        await publisher.close()
    path = f"/v1/apps/{APP_ID}/sessions/{session_id}"
    async with httpx.AsyncClient(base_url=calls_server.base_url, timeout=30) as client:
        for _ in range(50):  # the publisher left: the watched tracks go inactive
            response = await client.get(path, headers={"Authorization": f"Bearer {APP_SECRET}"})
            contract.check("calls", "GET", path, response)
            tracks = response.json()["tracks"]
            if {t["status"] for t in tracks} == {"inactive"}:
                break
            await asyncio.sleep(0.2)
    assert [t["sessionId"] for t in tracks] == ["live:stage", "live:stage"]
    assert {t["status"] for t in tracks} == {"inactive"}
