"""A `webcam` source for real: Chromium publishes its fake camera (VP8 + Opus) over WHIP from
another origin (CORS), the studio goes live, and the RTMP stream carries H.264 + AAC
transcoded once from it."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.async_api import async_playwright

from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.studio.live_helpers import Api, start_gateway, wait_async
from tests.studio.rtmp import NginxRtmp, RtmpReader

PUBLISH = """
async ({whipUrl, token}) => {
  const stream = await navigator.mediaDevices.getUserMedia(
      {video: {width: 640, height: 360}, audio: true});
  document.getElementById("preview").srcObject = stream;
  const pc = new RTCPeerConnection();
  for (const track of stream.getTracks()) pc.addTransceiver(track, {direction: "sendonly"});
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && resolve();
  });
  const response = await fetch(whipUrl, {
    method: "POST", body: pc.localDescription.sdp,
    headers: {"Content-Type": "application/sdp", "Authorization": "Bearer " + token}});
  const answer = await response.text();
  if (response.status === 201) await pc.setRemoteDescription({type: "answer", sdp: answer});
  window.publisher = pc;
  return {status: response.status, location: response.headers.get("Location"),
          requestId: response.headers.get("X-Request-Id")};
}
"""


@contextmanager
def page_origin(directory: Path) -> Iterator[str]:
    """A second loopback origin serving the publisher page (so WHIP is cross-origin)."""
    (directory / "webcam.html").write_text('<video id="preview" autoplay muted></video>')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_chromium_webcam_source_goes_live(tmp_path: Path) -> None:
    nginx = NginxRtmp(tmp_path / "nginx").start()
    server = await asyncio.to_thread(start_gateway, tmp_path / "data")
    api = Api(server)
    try:
        sid, _, _ = await asyncio.to_thread(
            api.studio_with, {"name": "browser", "type": "webcam"}, [(nginx.url, "webcam")])
        source = (await asyncio.to_thread(api, "GET", f"/v1/studios/{sid}/sources", None, 200)
                  ).json()["data"][0]
        pages = tmp_path / "pages"
        pages.mkdir()
        with page_origin(pages) as origin:
            await publish_and_go_live(api, server.base_url, origin, sid, source, nginx)
    finally:
        api.close()
        assert await asyncio.to_thread(server.stop) == 0, server.log()
        nginx.stop()
    log = server.log()
    assert "video video/vp8: transcode to H.264, once for 1 destination(s)" in log, log[-3000:]
    assert "audio audio/opus: transcode to AAC, once for 1 destination(s)" in log


async def publish_and_go_live(api: Api, base_url: str, origin: str, sid: str,
                              source: dict[str, str], nginx: NginxRtmp) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{origin}/webcam.html")
            published = await page.evaluate(PUBLISH, {
                "whipUrl": base_url + source["whipUrl"],
                "token": source["ingestToken"]})
            # cross-origin: the browser could read Location and X-Request-Id (CORS)
            assert published["status"] == 201, published
            assert published["location"].startswith(source["whipUrl"] + "/")
            assert published["requestId"].startswith("req_")

            def source_live() -> bool:
                data = api("GET", f"/v1/studios/{sid}/sources", expect=200).json()["data"]
                return data[0]["status"] == "live"

            await wait_async(source_live, 30, "the browser to publish")
            await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-live", None, 200)
            reader = RtmpReader(f"{nginx.url}/webcam", duration=4).start()
            await wait_async(lambda: reader.ended_at is not None, 40, "the RTMP reader")
            assert reader.error is None, reader.error
            assert (reader.video_codec, reader.audio_codec) == ("h264", "aac")
            assert reader.video_frames >= 30 and reader.audio_frames >= 60, reader
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "studio-webcam.png"))
            await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-offline", None, 200)
        finally:
            await browser.close()
