"""WHEP benchmark through the live-rooms HTTP API of a real `mediagate serve` subprocess.

    .venv/bin/python bench/live_whep.py [--runs 10] [--viewers 4] [--window 10]

1. WHEP time-to-first-frame: from sending `POST /api/whep/play/{room}` to the first video
   frame arriving at a fresh aiortc viewer, `--runs` times (median, min, max). Each viewer
   then ends its session with `DELETE` on its `Location`.
2. Gateway CPU per viewer: the server process's CPU time (psutil) over `--window` seconds
   with one WHIP publisher (Opus + VP8 320x240 30 fps) and no viewers, then with `--viewers`
   viewers playing audio and video; (CPU with viewers - CPU without) / viewers / seconds.

Viewers capture encoded frames through media.hook (nothing decodes). Prints JSON and writes
bench/results/live_whep.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiortc import RTCSessionDescription

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.media.media_clients import Publisher, Subscriber, wait_for  # noqa: E402
from tests.server import start_server  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ROOM = "bench"
SDP = {"Content-Type": "application/sdp"}


async def publish(http: httpx.AsyncClient) -> Publisher:
    publisher = Publisher()
    pc = publisher.pc
    await pc.setLocalDescription(await pc.createOffer())
    response = await http.post(f"/api/whip/publish/{ROOM}", content=pc.localDescription.sdp,
                               headers=SDP)
    response.raise_for_status()
    await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    await wait_for(lambda: pc.connectionState == "connected", 20)
    return publisher


async def play(http: httpx.AsyncClient, kinds: tuple[str, ...]) -> tuple[Subscriber, str, float]:
    """Returns the viewer, its session resource and the time the POST was sent."""
    viewer = Subscriber(kinds=kinds)
    pc = viewer.pc
    await pc.setLocalDescription(await pc.createOffer())
    viewer.hook_receivers()
    started = time.monotonic()
    response = await http.post(f"/api/whep/play/{ROOM}", content=pc.localDescription.sdp,
                               headers=SDP)
    response.raise_for_status()
    await pc.setRemoteDescription(RTCSessionDescription(response.text, "answer"))
    viewer.hook_receivers()
    return viewer, response.headers["Location"], started


async def time_to_first_frame(http: httpx.AsyncClient, runs: int) -> list[float]:
    samples: list[float] = []
    for _ in range(runs):
        viewer, location, started = await play(http, ("video",))
        try:
            await wait_for(lambda v=viewer: bool(v.capture("video").frames), 20)
            samples.append(viewer.capture("video").frames[0].at - started)
        finally:
            await viewer.close()
            await http.delete(location)
        await asyncio.sleep(0.3)
    return samples


async def cpu_seconds(process: psutil.Process, window: float) -> float:
    before = process.cpu_times()
    await asyncio.sleep(window)
    after = process.cpu_times()
    return (after.user + after.system) - (before.user + before.system)


async def run(runs: int, viewers: int, window: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="live-bench-") as tmp:
        server = start_server(Path(tmp) / "data", env={"MEDIAGATE_LOG_LEVEL": "WARNING"},
                              ready_path="/healthz")
        base = server.base_url
        gateway = psutil.Process(server.process.pid)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                publisher = await publish(http)
                await asyncio.sleep(2)  # let the encoder settle
                ttff = await time_to_first_frame(http, runs)

                await asyncio.sleep(2)
                idle = await cpu_seconds(gateway, window)
                sessions = [await play(http, ("audio", "video")) for _ in range(viewers)]
                await wait_for(lambda: all(
                    len(v.capture("video").frames) > 10 for v, _, _ in sessions), 30)
                await asyncio.sleep(2)
                frames_before = [len(v.capture("video").frames) for v, _, _ in sessions]
                loaded = await cpu_seconds(gateway, window)
                frames_after = [len(v.capture("video").frames) for v, _, _ in sessions]
                rooms = (await http.get("/api/rooms")).json()
                for viewer, location, _ in sessions:
                    await viewer.close()
                    await http.delete(location)
                await publisher.close()
        finally:
            server.stop()
    per_viewer = (loaded - idle) / viewers / window
    return {
        "benchmark": "live_whep",
        "whep_time_to_first_frame_s": {
            "runs": runs,
            "median": round(statistics.median(ttff), 4),
            "min": round(min(ttff), 4),
            "max": round(max(ttff), 4),
            "samples": [round(s, 4) for s in ttff],
        },
        "gateway_cpu": {
            "window_s": window,
            "viewers": viewers,
            "publisher_only_cpu_s_per_s": round(idle / window, 4),
            "with_viewers_cpu_s_per_s": round(loaded / window, 4),
            "cpu_s_per_viewer_second": round(per_viewer, 5),
            "viewer_video_fps": [round((a - b) / window, 1)
                                 for a, b in zip(frames_after, frames_before, strict=True)],
        },
        "rooms": rooms,
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.runs, args.viewers, args.window))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live_whep.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
