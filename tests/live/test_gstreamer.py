"""A second real WebRTC stack against the real server: GStreamer 1.22 ``webrtcbin`` (Debian's)
publishing with WHIP and playing with WHEP, bundled and trickled, through
tests/gst/whip_client.py (Debian's Python runs it; tests/gst/driver.py drives it).

Before issue 15 it could not publish at all: the gateway's aiortc, DTLS client for
GStreamer's ``actpass`` offer, offered only ECDHE-ECDSA suites to a server holding an RSA
certificate ("Fatal SSL error" / no shared cipher), and the answer rejected GStreamer's
``bundle-only`` video section.

GStreamer gathers on 127.0.0.1 only; the server's candidates are this host's own addresses
(the real server has no loopback ICE setting), so no packet leaves the machine.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from aiortc import RTCRtpSender

from tests.gst.driver import GstClient, client_rate, rate
from tests.live.helpers import play, publish, rooms, start_live_server
from tests.media.media_clients import Capture, Publisher, Subscriber, decode_numbers, wait_for
from tests.server import RunningServer

WINDOW = 5.0  # seconds of steady media each rate is measured over
MIN_SHARE = 0.9  # of the sent rate
LOCAL_ONLY = ("--ice-address", "127.0.0.1")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_live_server(tmp_path_factory.mktemp("gstreamer") / "data")
    yield server
    assert server.stop() == 0, server.log()


def bundle(sdp: str) -> list[str]:
    match = re.search(r"^a=group:BUNDLE(.*?)\r?$", sdp, flags=re.M)
    assert match is not None, sdp
    return match.group(1).split()


def ports(sdp: str) -> list[int]:
    return [int(p) for p in re.findall(r"^m=\S+ (\d+) ", sdp, flags=re.M)]


def frames_per_second(capture: Capture, start: float, end: float) -> float:
    return sum(1 for f in capture.frames if start <= f.at <= end) / (end - start)


def assert_shares(measured: dict[str, tuple[float, float]]) -> None:
    """`measured[kind] = (sent per second, received per second)`."""
    for sent, received in measured.values():
        assert sent > 0 and received >= MIN_SHARE * sent, measured
    print(" ".join(f"{k}: sent {s:.1f}/s received {r:.1f}/s ({r / s:.0%})"
                   for k, (s, r) in measured.items()))


async def measure_window() -> tuple[float, float]:
    start = time.monotonic()
    await asyncio.sleep(WINDOW)
    end = time.monotonic()
    await asyncio.sleep(0.3)  # the helper's next counts line lies past the window
    return start, end


async def start_publisher(base_url: str, room: str, *args: str) -> GstClient:
    return await GstClient.start("publish", f"{base_url}/api/whip/publish/{room}",
                                 "--seconds", "90", *LOCAL_ONLY, *args)


async def finish(client: GstClient) -> None:
    assert await client.stop() == 0, client.log()
    deleted = client.first("delete")
    assert deleted is not None and deleted["status"] == 200, client.log()


@pytest.mark.parametrize(("codec", "extras"), [
    ("vp8", ()),
    ("h264", ()),
    # NACK + RTX (GStreamer also offers RTX for Opus) and the sdes:mid header extension
    ("vp8", ("--nack", "--mid-extension")),
], ids=["vp8", "h264", "vp8-rtx-mid"])
async def test_gstreamer_publishes_to_an_aiortc_viewer(
    live_server: RunningServer, http: httpx.AsyncClient, codec: str, extras: tuple[str, ...]
) -> None:
    room = f"gst-{codec}-{len(extras)}"
    client = await start_publisher(live_server.base_url, room, "--video", codec, *extras)
    viewer = Subscriber()
    try:
        await client.wait_for(lambda c: c.connected, 30)
        offer, answer = client.first("offer")["sdp"], client.first("answer")["sdp"]  # type: ignore[index]
        # GStreamer's real shape: the video section is bundle-only ...
        assert bundle(offer) == ["audio0", "video1"] and ports(offer) == [9, 0]
        assert "a=bundle-only" in offer and "a=setup:actpass" in offer
        # ... and is answered inside the bundle, on its transport; we are the DTLS client
        assert bundle(answer) == ["audio0", "video1"]
        assert ports(answer)[0] == ports(answer)[1] > 0
        assert "a=setup:active" in answer
        if extras:
            assert "rtx/90000" in answer
            assert "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid" in answer
        # trickled after the POST, ended with end-of-candidates, all accepted
        await client.wait_for(
            lambda c: any("a=end-of-candidates" in p["fragment"] for p in c.all("patch")), 15)
        patches = client.all("patch")
        assert [p["status"] for p in patches] == [204] * len(patches)
        assert any("a=candidate:" in p["fragment"] for p in patches)
        assert (await rooms(http))[room]["tracks"] == 2

        response = await play(http, room, viewer)
        assert response.status_code == 201, response.text
        await wait_for(lambda: len(viewer.captures) == 2
                       and len(viewer.capture("video").frames) >= 30, 20)
        start, end = await measure_window()
        video, audio = viewer.capture("video"), viewer.capture("audio")
        assert video.frames[0].mime.lower() == f"video/{codec}"
        assert_shares({
            "video": (client_rate(client, "sent_video", start, end),
                      frames_per_second(video, start, end)),
            "audio": (client_rate(client, "sent_audio", start, end),
                      frames_per_second(audio, start, end)),
        })
        # what arrived is GStreamer's real bitstream: a plain decoder decodes all of it
        decoded = decode_numbers(video.frames)
        assert len(decoded) >= MIN_SHARE * len(video.frames)
    finally:
        await viewer.close()
        await finish(client)


async def test_gstreamer_viewer_plays_an_aiortc_publisher(
    live_server: RunningServer, http: httpx.AsyncClient
) -> None:
    room = "gst-viewer"
    publisher = Publisher()
    client: GstClient | None = None
    sent: dict[str, list[tuple[float, int]]] = {"video": [], "audio": []}

    async def sample(audio: RTCRtpSender) -> None:
        while True:
            stats = await audio.getStats()
            packets = next(s.packetsSent for s in stats.values() if s.type == "outbound-rtp")
            now = time.monotonic()
            sent["video"].append((now, publisher.video.count))
            sent["audio"].append((now, packets))
            await asyncio.sleep(0.1)

    sampler: asyncio.Task[None] | None = None
    try:
        response = await publish(http, room, publisher)
        assert response.status_code == 201, response.text
        await wait_for(lambda: publisher.pc.connectionState == "connected", 15)
        audio_sender = next(s for s in publisher.pc.getSenders() if s.kind == "audio")
        sampler = asyncio.ensure_future(sample(audio_sender))

        client = await GstClient.start("play", f"{live_server.base_url}/api/whep/play/{room}",
                                       "--seconds", "90", *LOCAL_ONLY)
        await client.wait_for(lambda c: c.counts()["video_frames"] >= 30, 30)
        offer, answer = client.first("offer")["sdp"], client.first("answer")["sdp"]  # type: ignore[index]
        assert ports(offer) == [9, 0] and "a=bundle-only" in offer
        assert bundle(answer) == ["audio0", "video1"] and 0 not in ports(answer)
        assert answer.count("a=sendonly") == 2

        start, end = await measure_window()
        assert_shares({
            "video": (rate(sent["video"], start, end),
                      client_rate(client, "video_frames", start, end)),
            "audio": (rate(sent["audio"], start, end),
                      client_rate(client, "audio_buffers", start, end)),
        })
    finally:
        if sampler is not None:
            sampler.cancel()
        await publisher.close()
        if client is not None:
            await finish(client)


@pytest.mark.parametrize(("setup", "answered"), [("active", "passive"), ("passive", "active")])
async def test_gstreamer_picks_its_dtls_role(
    live_server: RunningServer, http: httpx.AsyncClient, setup: str, answered: str
) -> None:
    """RFC 8842: an offer that fixes its role gets the other one; either way GStreamer's RSA
    certificate meets our ECDSA one."""
    room = f"gst-setup-{setup}"
    client = await start_publisher(live_server.base_url, room, "--setup", setup)
    viewer = Subscriber(kinds=("video",))
    try:
        await client.wait_for(lambda c: c.connected, 30)
        assert f"a=setup:{answered}" in client.first("answer")["sdp"]  # type: ignore[index]
        assert (await play(http, room, viewer)).status_code == 201
        await wait_for(
            lambda: bool(viewer.captures) and len(viewer.capture("video").frames) >= 15, 20)
    finally:
        await viewer.close()
        await finish(client)


async def test_server_logs_why_dtls_failed(live_server: RunningServer) -> None:
    client = await start_publisher(live_server.base_url, "gst-bad-fingerprint",
                                   "--wrong-fingerprint")
    try:
        await client.wait_for(lambda c: c.first("answer") is not None, 20)
        await wait_for(lambda: "fingerprint mismatch" in live_server.log(), 20)
    finally:
        await client.stop()
    line = next(line for line in live_server.log().splitlines() if "fingerprint mismatch" in line)
    assert re.search(r"WARNING media\.dtls: DTLS handshake failed as client \(remote "
                     r"candidates .*127\.0\.0\.1:\d+.*\): fingerprint mismatch", line), line
