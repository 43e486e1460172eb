"""Studio go-live benchmark: a real `mediagate serve`, a real nginx-rtmp, PyAV readers.

    .venv/bin/python bench/studio_golive.py [--window 8] [--runs 5]

1. Gateway CPU per extra RTMP destination, for
   - `copy`: a `media` source (720p30 H.264 + AAC MP4, looped) restreamed with codec copy;
   - `transcode`: a `webrtc-input` source published by aiortc with VP8 + Opus, transcoded once
     per studio to H.264 + AAC and fanned out.
   For N = 1, 2, 4 enabled destinations: go live, wait until every destination is `live`,
   settle 2 s, then the server process's CPU time over `--window` seconds (psutil). The cost
   per extra destination is the least-squares slope of CPU share over N.
2. Go-live latency, `--runs` times from a `media` source (copy) and from a publishing
   `webrtc-input` source (H.264 + Opus): from sending `POST /go-live` to the destination
   reporting `live`, which it does right after the first packet is written to the RTMP
   socket (polled every 10 ms), and to the first packet a PyAV player connected to
   nginx beforehand receives.

Prints JSON and writes bench/results/studio_golive.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.studio.live_helpers import Api, WhipPublisher, make_clip, start_gateway  # noqa: E402
from tests.studio.rtmp import NginxRtmp, RtmpReader  # noqa: E402

RESULTS = ROOT / "bench" / "results"
COUNTS = (1, 2, 4)


def slope(points: list[tuple[int, float]]) -> float:
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


def cpu_share(process: psutil.Process, window: float) -> float:
    before = process.cpu_times()
    started = time.monotonic()
    time.sleep(window)
    after = process.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return used / (time.monotonic() - started)


def wait_live(api: Api, sid: str, ids: list[str], timeout: float = 20) -> None:
    api.wait_for(lambda: all(api.statuses(sid)[d][0] == "live" for d in ids), timeout,
                 "destinations live")


async def publish(api: Api, sid: str, codec: str) -> WhipPublisher:
    source = (await asyncio.to_thread(api, "GET", f"/v1/studios/{sid}/sources", None, 200)
              ).json()["data"][0]
    publisher = WhipPublisher(codec)
    await publisher.publish(api.base, source["whipUrl"], source["ingestToken"])
    for _ in range(200):
        listed = await asyncio.to_thread(api, "GET", f"/v1/studios/{sid}/sources", None, 200)
        if listed.json()["data"][0]["status"] == "live":
            return publisher
        await asyncio.sleep(0.1)
    raise RuntimeError("the publisher never went live")


async def cost_per_destination(mode: str, window: float, tmp: Path) -> dict[str, Any]:
    nginx = NginxRtmp(tmp / f"nginx-{mode}").start()
    server = await asyncio.to_thread(start_gateway, tmp / f"data-{mode}",
                                     MEDIAGATE_LOG_LEVEL="WARNING")
    api = Api(server)
    publisher = None
    try:
        if mode == "copy":
            await asyncio.to_thread(make_clip, server.data_dir / "clip.mp4", 10, "1280x720")
            source = {"name": "clip", "type": "media", "url": "clip.mp4"}
        else:
            source = {"name": "cam", "type": "webrtc-input"}
        sid, _, dids = await asyncio.to_thread(
            api.studio_with, source, [(nginx.url, f"{mode}-{i}") for i in range(max(COUNTS))])
        if mode == "transcode":
            publisher = await publish(api, sid, "video/VP8")
        process = psutil.Process(server.process.pid)
        idle = await asyncio.to_thread(cpu_share, process, window)
        points: list[tuple[int, float]] = []
        for count in COUNTS:
            for i, did in enumerate(dids):
                await asyncio.to_thread(api, "PATCH", f"/v1/studios/{sid}/destinations/{did}",
                                        {"enabled": i < count}, 200)
            await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-live", None, 200)
            await asyncio.to_thread(wait_live, api, sid, dids[:count])
            await asyncio.sleep(2)
            share = await asyncio.to_thread(cpu_share, process, window)
            points.append((count, round(share, 4)))
            await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-offline", None, 200)
            await asyncio.sleep(1)
        return {
            "source": ("media: 1280x720 30 fps H.264 + AAC, copied" if mode == "copy" else
                       "webrtc-input: aiortc VP8 320x240 30 fps + Opus, transcoded once"),
            "idle_cpu_share": round(idle, 4),
            "cpu_share_by_destinations": dict(points),
            "cpu_share_per_extra_destination": round(slope(points), 4),
        }
    finally:
        if publisher is not None:
            await publisher.close()
        api.close()
        await asyncio.to_thread(server.stop)
        nginx.stop()


async def golive_latency(runs: int, tmp: Path) -> dict[str, Any]:
    nginx = NginxRtmp(tmp / "nginx-latency").start()
    server = await asyncio.to_thread(start_gateway, tmp / "data-latency",
                                     MEDIAGATE_LOG_LEVEL="WARNING")
    api = Api(server)
    results: dict[str, Any] = {}
    publisher = None
    try:
        await asyncio.to_thread(make_clip, server.data_dir / "clip.mp4", 4, "1280x720")
        for mode, source in (("media_copy", {"name": "clip", "type": "media",
                                             "url": "clip.mp4"}),
                             ("webrtc_h264_opus", {"name": "cam", "type": "webrtc-input"})):
            sid, _, (did,) = await asyncio.to_thread(
                api.studio_with, source, [(nginx.url, f"lat-{mode}")])
            if mode == "webrtc_h264_opus":
                publisher = await publish(api, sid, "video/H264")
            to_live: list[float] = []
            to_player: list[float] = []
            for _ in range(runs):
                reader = RtmpReader(f"{nginx.url}/lat-{mode}", duration=1).start()
                await asyncio.sleep(0.5)  # the player waits on nginx for the publisher
                requested = time.monotonic()
                await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-live", None, 200)
                while api.statuses(sid)[did][0] != "live":
                    if time.monotonic() - requested > 20:
                        raise RuntimeError("destination never went live")
                    await asyncio.sleep(0.01)
                to_live.append(time.monotonic() - requested)
                await asyncio.to_thread(reader.join, 20)
                if reader.first_packet_at is not None:
                    to_player.append(reader.first_packet_at - requested)
                await asyncio.to_thread(api, "POST", f"/v1/studios/{sid}/go-offline", None, 200)
                await asyncio.sleep(0.5)
            results[mode] = {
                "runs": runs,
                "request_to_first_rtmp_packet_s": summary(to_live),
                "request_to_first_packet_at_player_s": summary(to_player),
            }
            if publisher is not None:
                await publisher.close()
                publisher = None
        return results
    finally:
        if publisher is not None:
            await publisher.close()
        api.close()
        await asyncio.to_thread(server.stop)
        nginx.stop()


def summary(samples: list[float]) -> dict[str, Any]:
    if not samples:
        return {"samples": []}
    return {"median": round(statistics.median(samples), 3), "min": round(min(samples), 3),
            "max": round(max(samples), 3), "samples": [round(s, 3) for s in samples]}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=8.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        root = Path(tmp)
        result = {
            "benchmark": "studio_golive",
            "cpu_cores": psutil.cpu_count(),
            "cpu_per_destination": {
                "copy": await cost_per_destination("copy", args.window, root),
                "transcode": await cost_per_destination("transcode", args.window, root),
            },
            "golive_latency": await golive_latency(args.runs, root),
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "studio_golive.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
