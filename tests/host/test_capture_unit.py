"""The capture's arithmetic and bounds on synthetic core snapshots; saving at shutdown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.host import capture
from gateway.host.capture import StatsRecorder
from media import CoreStats, SubscriptionStats, TrackStats
from tests.host.conftest import TOKEN, Api, running_app


class FakeCore:
    def __init__(self) -> None:
        self.snapshot = CoreStats()

    def stats(self) -> CoreStats:
        return self.snapshot


def snapshot(t: float, frames: int, nbytes: int, lost: int, subs: list[tuple[int, int, int]]
             ) -> CoreStats:
    stats = CoreStats(timestamp=t)
    stats.tracks["live/a/0"] = TrackStats(
        track_id="live/a/0", peer_id="p", kind="video", codec="video/H264", mid="0",
        frames=frames, bytes=nbytes, packets_lost=lost, jitter_ms=4.0)
    stats.tracks["live/a/1"] = TrackStats(
        track_id="live/a/1", peer_id="p", kind="audio", codec="audio/opus", mid="1",
        frames=frames, bytes=nbytes)
    for index, (payload, dropped, nacked) in enumerate(subs):
        stats.subscriptions[f"s{index}"] = SubscriptionStats(
            subscription_id=f"s{index}", track_id="live/a/0", peer_id=f"v{index}", mid="0",
            payload_bytes_sent=payload, frames_dropped=dropped, nacked_packets=nacked,
            packets_lost=dropped, queued=3, rtt_ms=10.0 * (index + 1))
    return stats


async def test_window_deltas_become_a_sample(tmp_path: Path) -> None:
    core = FakeCore()
    core.snapshot = snapshot(100.0, 0, 0, 0, [(0, 0, 0)])
    recorder = StatsRecorder(core, tmp_path, 1.0, lambda _t: (1280, 720))  # type: ignore[arg-type]
    await recorder.start()
    # one second later: 30 frames, 250 kB in; one viewer got 250 kB, a new one 125 kB
    core.snapshot = snapshot(101.0, 30, 250_000, 5, [(250_000, 2, 7), (125_000, 0, 0)])
    recorder._observe(core.stats())
    live = recorder.live()
    assert live is not None
    [sample] = live["samples"]
    assert sample["fps"] == 30.0 and sample["bitrate_kbps"] == 2000
    assert sample["mbps"] == 3.0  # (250 + 125) kB * 8 / 1 s
    assert (sample["frames_dropped"], sample["packets_dropped"], sample["send_dropped"],
            sample["fec_recovered"]) == (2, 5, 2, 7)
    stages = {s["name"]: s for s in sample["stages"]}
    assert stages["receive"]["p50_us"] == 4000.0
    assert stages["forward"]["p50_us"] >= 100_000.0  # 3 queued frames at 30 fps
    assert stages["send"] == {"name": "send", "p50_us": 5000.0, "p99_us": 10000.0}
    recorder._observe(core.stats())  # the same snapshot again adds nothing
    meta = await recorder.stop()
    assert meta is not None and meta["sample_count"] == 1
    assert (meta["width"], meta["height"], meta["codec"], meta["fps"]) == (1280, 720, "h264", 30)
    assert json.loads((tmp_path / f"{meta['id']}.json").read_text())["meta"] == meta


async def test_ring_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture, "RING_SECONDS", 5)
    core = FakeCore()
    core.snapshot = snapshot(0.0, 0, 0, 0, [])
    recorder = StatsRecorder(core, tmp_path, 1.0)  # type: ignore[arg-type]
    await recorder.start()
    for second in range(1, 20):
        core.snapshot = snapshot(float(second), 30 * second, 1000 * second, 0, [])
        recorder._observe(core.stats())
    live: dict[str, Any] = recorder.live() or {}
    assert len(live["samples"]) == 5
    assert recorder.status()["sample_count"] == 5
    await recorder.stop()


async def test_running_capture_is_saved_when_the_app_stops(tmp_path: Path) -> None:
    env = {"MEDIAGATE_DATA_DIR": str(tmp_path / "data"), "PUNKTFUNK_MGMT_TOKEN": TOKEN}
    async with running_app(env) as app:
        started = await Api(app).json("POST", "/api/v1/stats/capture/start")
        await asyncio.sleep(0.1)
    async with running_app(env) as app:
        api = Api(app)
        listed = await api.json("GET", "/api/v1/stats/recordings")
        assert [m["started_unix_ms"] for m in listed] == [started["started_unix_ms"]]
        assert (await api.json("GET", "/api/v1/stats/capture/status"))["armed"] is False
