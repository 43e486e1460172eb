"""Calls pull benchmark against a real `mediagate serve` subprocess.

    .venv/bin/python bench/calls_pull.py [--runs 10] [--pullers 4] [--window 10]

1. Time from `PUT renegotiate` (the puller's answer) to the first video frame arriving at
   the puller, for `--runs` fresh puller sessions (median, min, max).
2. Gateway CPU per pulled track: the server process's CPU time over `--window` seconds with
   one publisher (audio + VP8 video) and no pullers, then with `--pullers` sessions each
   pulling both tracks; the difference divided by the number of pulled tracks.

The publisher sends Opus (aiortc's silence) and a 720p30 H.264 clip of about 1.2 Mbit/s,
encoded once with libx264 and looped (bench/fanout.py's ClipTrack; a PLI restarts it at its
keyframe, as an encoder would send one). Pullers capture encoded frames through media.hook
(nothing decodes). Prints JSON and writes bench/results/calls_pull.json.
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
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fanout import ClipTrack, encode_clip  # noqa: E402
from media import hook  # noqa: E402
from tests.rtc import local_peer_connection  # noqa: E402
from tests.server import start_server  # noqa: E402

APP_ID = "bench-app"
APP_SECRET = "bench-secret-0123456789"
RESULTS = ROOT / "bench" / "results"


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.prefix = f"/v1/apps/{APP_ID}"

    async def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = await self.client.request(method, self.prefix + path, json=body)
        payload = response.json()
        if response.status_code >= 400 or "errorCode" in payload:
            raise RuntimeError(f"{method} {path}: {response.status_code} {payload}")
        for track in payload.get("tracks", []):
            if "errorCode" in track:
                raise RuntimeError(f"{method} {path}: {track}")
        return payload


async def push(api: Api, clip: list[bytes]) -> tuple[RTCPeerConnection, str, dict[str, str]]:
    pc = local_peer_connection()
    audio, video = AudioStreamTrack(), ClipTrack(clip)
    pc.addTransceiver(audio, direction="sendonly")
    transceiver = pc.addTransceiver(video, direction="sendonly")
    transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs
                                     if c.mimeType in ("video/H264", "video/rtx")])
    transceiver.sender._send_keyframe = video.restart  # type: ignore[method-assign]
    session = (await api.call("POST", "/sessions/new"))["sessionId"]
    await pc.setLocalDescription(await pc.createOffer())
    mids = {t.sender.track.id: t.mid for t in pc.getTransceivers()}
    reply = await api.call("POST", f"/sessions/{session}/tracks/new", {
        "sessionDescription": {"type": "offer", "sdp": pc.localDescription.sdp},
        "tracks": [{"location": "local", "mid": mid, "trackName": name}
                   for name, mid in mids.items()],
    })
    await pc.setRemoteDescription(RTCSessionDescription(**reply["sessionDescription"]))
    return pc, session, {"audio": audio.id, "video": video.id}


class Puller:
    def __init__(self) -> None:
        self.pc = local_peer_connection()
        self.frames: dict[str, int] = {}
        self.first_video_at: float | None = None

    def _hook(self) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid is None or transceiver.mid in self.frames:
                continue
            kind, mid = transceiver.kind, transceiver.mid
            self.frames[mid] = 0

            def on_frame(codec: Any, frame: Any, mid: str = mid, kind: str = kind) -> None:
                self.frames[mid] += 1
                if kind == "video" and self.first_video_at is None:
                    self.first_video_at = time.monotonic()

            hook.install_receive_hook(transceiver.receiver).bind(on_frame, lambda: None)

    async def pull(self, api: Api, source: str, names: list[str]) -> float:
        """Pull `names`; returns the monotonic time the renegotiate request was sent."""
        session = (await api.call("POST", "/sessions/new"))["sessionId"]
        reply = await api.call("POST", f"/sessions/{session}/tracks/new", {
            "tracks": [{"location": "remote", "sessionId": source, "trackName": name}
                       for name in names]})
        await self.pc.setRemoteDescription(RTCSessionDescription(**reply["sessionDescription"]))
        self._hook()
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        sent = time.monotonic()
        await api.call("PUT", f"/sessions/{session}/renegotiate", {
            "sessionDescription": {"type": "answer", "sdp": self.pc.localDescription.sdp}})
        return sent


async def wait_until(predicate: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.002)


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


async def run(base: str, pid: int, runs: int, pullers: int, window: float) -> dict[str, Any]:
    gateway = psutil.Process(pid)
    clip = await asyncio.to_thread(encode_clip)
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {APP_SECRET}"}) as client:
        api = Api(client)
        publisher, source, names = await push(api, clip)
        await wait_until(lambda: publisher.iceConnectionState == "completed"
                         or publisher.connectionState == "connected", 10)
        await asyncio.sleep(2)

        delays: list[float] = []
        for _ in range(runs):
            puller = Puller()
            sent = await puller.pull(api, source, [names["video"]])
            await wait_until(lambda p=puller: p.first_video_at is not None, 10)
            delays.append((puller.first_video_at - sent) * 1000)
            await puller.pc.close()
            await asyncio.sleep(0.3)

        await asyncio.sleep(2)
        before = cpu_seconds(gateway)
        await asyncio.sleep(window)
        base_cpu = (cpu_seconds(gateway) - before) / window

        active = [Puller() for _ in range(pullers)]
        for puller in active:
            await puller.pull(api, source, [names["audio"], names["video"]])
        await wait_until(lambda: all(p.first_video_at for p in active), 15)
        await asyncio.sleep(2)
        counts = [sum(p.frames.values()) for p in active]
        before = cpu_seconds(gateway)
        await asyncio.sleep(window)
        loaded_cpu = (cpu_seconds(gateway) - before) / window
        received = [sum(p.frames.values()) - c for p, c in zip(active, counts, strict=True)]
        for puller in active:
            await puller.pc.close()
        await publisher.close()
    tracks = pullers * 2
    return {
        "renegotiate_to_first_frame_ms": {
            "median": round(statistics.median(delays), 1),
            "min": round(min(delays), 1), "max": round(max(delays), 1),
            "runs": [round(d, 1) for d in delays],
        },
        "gateway_cpu": {
            "publisher_only_cores": round(base_cpu, 4),
            "with_pullers_cores": round(loaded_cpu, 4),
            "pulled_tracks": tracks,
            "per_pulled_track_cores": round((loaded_cpu - base_cpu) / tracks, 4),
            "per_pulled_track_percent": round(100 * (loaded_cpu - base_cpu) / tracks, 2),
            "frames_per_puller_per_second": [round(r / window, 1) for r in received],
        },
        "media": "Opus 48 kHz + H.264 1280x720 30 fps ~1.2 Mbit/s; pullers capture encoded",
        "window_s": window,
        "cpu_count": os.cpu_count(),
        "loadavg": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pullers", type=int, default=4)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="calls-bench-") as tmp:
        server = start_server(Path(tmp) / "data", env={
            "CALLS_APP_ID": APP_ID, "CALLS_APP_SECRET": APP_SECRET,
            "MEDIAGATE_LOG_LEVEL": "WARNING"})
        try:
            result = asyncio.run(run(server.base_url, server.process.pid, args.runs,
                                     args.pullers, args.window))
        finally:
            server.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "calls_pull.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
