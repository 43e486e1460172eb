"""Stats capture from the real media core while an aiortc publisher and two viewers run;
session control (status, IDR, stop) on the same media."""

from __future__ import annotations

import asyncio
import fractions
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from quart import Quart

from media import MediaCore
from tests.host.conftest import TOKEN, Api, running_app
from tests.media.media_clients import Subscriber, prefer
from tests.rtc import local_peer_connection

FPS = 15
WIDTH, HEIGHT = 320, 240


class NoiseTrack(MediaStreamTrack):
    """Random pictures: the encoder runs at its target bitrate, a steady load to measure."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / FPS
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(os.urandom(WIDTH * HEIGHT))
        frame.planes[1].update(b"\x80" * (WIDTH * HEIGHT // 4))
        frame.planes[2].update(b"\x80" * (WIDTH * HEIGHT // 4))
        frame.pts = self._count * (90000 // FPS)
        frame.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        return frame


async def _publish(core: MediaCore, codec: str = "video/VP8") -> tuple[RTCPeerConnection, str]:
    pc = local_peer_connection()
    prefer(pc.addTransceiver(NoiseTrack(), direction="sendonly"), codec)
    await pc.setLocalDescription(await pc.createOffer())
    peer = await core.create_peer()
    answer = await peer.accept_offer(pc.localDescription.sdp, publish_prefix="hosttest/pub")
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    track_id = next(t.track_id for t in core.list_tracks("hosttest/"))
    for _ in range(200):
        if core.track_started(track_id):
            break
        await asyncio.sleep(0.05)
    assert core.track_started(track_id)
    return pc, track_id


async def _bytes_sent(pc: RTCPeerConnection) -> int:
    report = await pc.getSenders()[0].getStats()
    return sum(s.bytesSent for s in report.values() if s.type == "outbound-rtp")


@pytest.fixture
async def media_app(tmp_path: Path) -> AsyncIterator[Quart]:
    async with running_app({"MEDIAGATE_DATA_DIR": str(tmp_path / "data"),
                            "PUNKTFUNK_MGMT_TOKEN": TOKEN}) as app:
        yield app


async def test_capture_reports_the_real_bitrate_and_reloads(media_app: Quart,
                                                            tmp_path: Path) -> None:
    api = Api(media_app)
    core: MediaCore = media_app.extensions["mediagate"].media
    publisher, track_id = await _publish(core)
    viewers = [Subscriber(kinds=("video",)) for _ in range(2)]
    try:
        for viewer in viewers:
            await viewer.play(await core.create_peer(), [track_id])
        for _ in range(100):
            if all(v.captures and v.capture("video").frames for v in viewers):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # let the encoder settle on its bitrate

        started = await api.json("POST", "/api/v1/stats/capture/start")
        assert started["armed"] and started["kind"] == "webrtc"
        sent_at_start, t_start = await _bytes_sent(publisher), time.monotonic()
        again = await api.json("POST", "/api/v1/stats/capture/start")
        assert again == await api.json("GET", "/api/v1/stats/capture/status")
        assert again["started_unix_ms"] == started["started_unix_ms"]

        status = await api.json("GET", "/api/v1/status")
        assert status["video_streaming"] and not status["audio_streaming"]
        assert status["session"]["width"] == WIDTH and status["session"]["height"] == HEIGHT
        assert status["stream"] is None  # VP8 is not a GameStream codec
        assert (await api.call("POST", "/api/v1/session/idr")).status_code == 202

        await asyncio.sleep(7.0)
        live = await api.json("GET", "/api/v1/stats/capture/live")
        meta = await api.json("POST", "/api/v1/stats/capture/stop")
        sent_at_stop, t_stop = await _bytes_sent(publisher), time.monotonic()
    finally:
        for viewer in viewers:
            await viewer.pc.close()
        await publisher.close()

    samples = live["samples"]
    assert len(samples) >= 4, samples
    assert {s["session_id"] for s in samples} == {0}
    assert [s["t_ms"] for s in samples] == sorted(s["t_ms"] for s in samples)
    stages = {st["name"]: st for st in samples[-1]["stages"]}
    assert list(stages) == ["receive", "forward", "send"]  # viewers report RTT by now
    assert all(0 < st["p50_us"] <= st["p99_us"] < 1_000_000 for st in stages.values())
    real_kbps = 8 * (sent_at_stop - sent_at_start) / (t_stop - t_start) / 1000
    assert real_kbps > 100, real_kbps
    ingest_kbps = sum(s["bitrate_kbps"] for s in samples) / len(samples)
    transmit_mbps = sum(s["mbps"] for s in samples) / len(samples)
    assert abs(ingest_kbps - real_kbps) <= 0.2 * real_kbps, (ingest_kbps, real_kbps)
    # two viewers: the gateway transmits the publisher's bitrate twice
    assert abs(transmit_mbps * 1000 - 2 * real_kbps) <= 0.2 * 2 * real_kbps, (
        transmit_mbps, real_kbps)
    mean_fps = sum(s["fps"] for s in samples) / len(samples)
    assert FPS * 0.7 <= mean_fps <= FPS * 1.3, mean_fps

    assert meta["kind"] == "webrtc" and meta["codec"] == "vp8"
    assert (meta["width"], meta["height"]) == (WIDTH, HEIGHT)
    assert meta["sample_count"] >= len(samples) and meta["client"] == track_id
    assert meta["id"].endswith(f"_{WIDTH}x{HEIGHT}")
    saved = await api.json("GET", f"/api/v1/stats/recordings/{meta['id']}")
    assert saved["meta"] == meta
    assert saved["samples"][:len(samples)] == samples
    on_disk = tmp_path / "data" / "host" / "captures" / f"{meta['id']}.json"
    assert json.loads(on_disk.read_text()) == saved
    assert not [p for p in on_disk.parent.iterdir() if p.name.endswith(".tmp")]

    assert (await api.call("POST", "/api/v1/stats/capture/stop")).status_code == 204
    await api.json("GET", "/api/v1/stats/capture/live", status=404)
    listed = await api.json("GET", "/api/v1/stats/recordings")
    assert [m["id"] for m in listed] == [meta["id"]]

    # operator kill switch: every media session ends
    assert (await api.call("DELETE", "/api/v1/session")).status_code == 204
    assert core.peers == {}
    await api.json("POST", "/api/v1/session/idr", status=409)


async def test_recordings_newest_first_delete_and_traversal(media_app: Quart,
                                                            tmp_path: Path) -> None:
    api = Api(media_app)
    ids = []
    for _ in range(2):
        await api.json("POST", "/api/v1/stats/capture/start")
        ids.append((await api.json("POST", "/api/v1/stats/capture/stop"))["id"])
        await asyncio.sleep(0.02)
    assert ids[0] != ids[1]
    listed = [m["id"] for m in await api.json("GET", "/api/v1/stats/recordings")]
    assert listed == [ids[1], ids[0]]
    secret = tmp_path / "data" / "secret_key"
    assert secret.exists()
    for bad in ("..", "..%2Fsecret_key", "%2E%2E%2Fsecret_key", ".hidden", "a.b"):
        await api.json("GET", f"/api/v1/stats/recordings/{bad}", status=404)
        await api.json("DELETE", f"/api/v1/stats/recordings/{bad}", status=404)
    assert secret.exists()
    captures = tmp_path / "data" / "host" / "captures"
    (captures / "broken.json").write_text("{not json")
    response = await api.json("GET", "/api/v1/stats/recordings/broken", status=500)
    assert response["error"] == "the recording file is unreadable"
    assert [m["id"] for m in await api.json("GET", "/api/v1/stats/recordings")] == listed
    assert (await api.call("DELETE", f"/api/v1/stats/recordings/{ids[0]}")).status_code == 204
    await api.json("GET", f"/api/v1/stats/recordings/{ids[0]}", status=404)
    await api.json("DELETE", f"/api/v1/stats/recordings/{ids[0]}", status=404)


async def test_status_reports_an_h264_stream(media_app: Quart) -> None:
    api = Api(media_app)
    core: MediaCore = media_app.extensions["mediagate"].media
    publisher, _ = await _publish(core, "video/H264")
    try:
        for _ in range(100):
            status = await api.json("GET", "/api/v1/status")
            if status["stream"] and status["stream"]["width"] and status["stream"]["fps"]:
                break
            await asyncio.sleep(0.1)
        stream = status["stream"]
        assert stream is not None and stream["codec"] == "h264"
        assert (stream["width"], stream["height"]) == (WIDTH, HEIGHT)
        assert stream["bitrate_kbps"] > 0 and stream["packet_size"] > 0
        assert status["session"] == {"width": WIDTH, "height": HEIGHT, "fps": stream["fps"]}
    finally:
        await publisher.close()
    for _ in range(100):
        if not (await api.json("GET", "/api/v1/status"))["video_streaming"]:
            break
        await asyncio.sleep(0.1)
    assert (await api.json("GET", "/api/v1/status"))["stream"] is None
