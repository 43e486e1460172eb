"""Fan-out benchmark: one 720p30 H.264 publisher, N viewers, gateway in its own process.

    .venv/bin/python bench/fanout.py [--window 10] [--core-n 1,5,10,20,40] [--relay-n 1,2,5]

The publisher loops a clip encoded once with libx264 (it restarts the clip at its keyframe when
the gateway sends a PLI), so it costs little. Viewers count encoded frames through media.hook
and never decode. The gateway (bench/runner.py) runs either MediaCore (forwarding) or aiortc's
MediaRelay (decode + re-encode per viewer) for comparison. Writes bench/results/fanout.json and
bench/results/fanout.png.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.runner import loopback_only  # noqa: E402
from media import hook  # noqa: E402
from media.keyframes import is_h264_keyframe  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FPS = 30
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)


def encode_clip(seconds: int = 2, bitrate: int = 1_200_000) -> list[bytes]:
    """720p30 H.264 constrained baseline, Annex-B, one keyframe (with SPS/PPS) at frame 0."""
    source = av.open("testsrc2=size=1280x720:rate=30", format="lavfi")
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1280, 720, "yuv420p"
    encoder.bit_rate = bitrate
    encoder.time_base = fractions.Fraction(1, FPS)
    encoder.framerate = FPS
    encoder.profile = "Baseline"
    encoder.options = {
        "preset": "veryfast",
        "tune": "zerolatency",
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "x264-params": f"keyint={FPS * seconds}:min-keyint={FPS * seconds}:scenecut=0",
    }
    packets: list[bytes] = []
    for i, frame in enumerate(source.decode(video=0)):
        if i >= FPS * seconds:
            break
        frame = frame.reformat(format="yuv420p")
        frame.pts = i
        packets += [bytes(p) for p in encoder.encode(frame)]
    packets += [bytes(p) for p in encoder.encode(None)]
    source.close()
    assert is_h264_keyframe(packets[0])
    return packets


class ClipTrack(MediaStreamTrack):
    """Loops pre-encoded packets at 30 fps; `restart()` (on PLI) jumps back to the keyframe."""

    kind = "video"

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.index = 0
        self.sent = 0
        self._start: float | None = None
        self._restart = False

    def restart(self) -> None:
        self._restart = True

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self.sent / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._restart:
            self._restart = False
            self.index = 0
        packet = av.Packet(self.clip[self.index])
        packet.pts = self.sent * (90000 // FPS)
        packet.time_base = VIDEO_TIME_BASE
        self.index = (self.index + 1) % len(self.clip)
        self.sent += 1
        return packet


class Signalling:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.lock = asyncio.Lock()

    async def call(self, **request: Any) -> dict[str, Any]:
        async with self.lock:
            self.writer.write(json.dumps(request).encode() + b"\n")
            await self.writer.drain()
            reply = json.loads(await self.reader.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply


def prefer_h264(pc: RTCPeerConnection, direction: str, track: MediaStreamTrack | None) -> None:
    transceiver = pc.addTransceiver(track or "video", direction=direction)
    caps = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences(
        [c for c in caps if c.mimeType in ("video/H264", "video/rtx")]
    )


class Viewer:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        prefer_h264(self.pc, "recvonly", None)
        self.frames = 0
        self.first_frame_at: float | None = None
        self.peer_id = ""

    def _on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        self.frames += 1

    async def connect(self, sig: Signalling, tracks: list[str]) -> float:
        """Returns the monotonic time the subscribe request was sent."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        for transceiver in self.pc.getTransceivers():
            hook.install_receive_hook(transceiver.receiver).bind(self._on_frame, lambda: None)
        requested = time.monotonic()
        reply = await sig.call(op="subscribe", offer=self.pc.localDescription.sdp, tracks=tracks)
        self.peer_id = reply["peer"]
        await self.pc.setRemoteDescription(RTCSessionDescription(reply["answer"], "answer"))
        return requested

    async def close(self, sig: Signalling) -> None:
        await self.pc.close()
        await sig.call(op="close", peer=self.peer_id)


async def wait_until(predicate: Any, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def run_mode(mode: str, clip: list[bytes], ns: list[int], window: float) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "bench" / "runner.py")]
    if mode == "relay":
        cmd.append("--relay")
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = int((await proc.stdout.readline()).split()[1])
    sig = Signalling(*await asyncio.open_connection("127.0.0.1", port))
    out: dict[str, Any] = {"mode": mode, "points": []}
    publisher = RTCPeerConnection()
    try:
        track = ClipTrack(clip)
        prefer_h264(publisher, "sendonly", track)
        await publisher.setLocalDescription(await publisher.createOffer())
        reply = await sig.call(op="publish", offer=publisher.localDescription.sdp)
        await publisher.setRemoteDescription(RTCSessionDescription(reply["answer"], "answer"))
        sender = publisher.getSenders()[0]
        sender._send_keyframe = track.restart  # type: ignore[method-assign]
        tracks = reply["tracks"]
        await asyncio.sleep(3)

        # gateway cost with the publisher alone
        u0 = await sig.call(op="usage")
        await asyncio.sleep(window)
        u1 = await sig.call(op="usage")
        idle_cpu_rate = (u1["cpu"] - u0["cpu"]) / window
        out["publisher_only_cpu_fraction"] = idle_cpu_rate

        for n in ns:
            rss_before = (await sig.call(op="usage"))["rss"]
            viewers = [Viewer() for _ in range(n)]
            for viewer in viewers:
                await viewer.connect(sig, tracks)
            all_flowing = await wait_until(lambda vs=viewers: all(v.frames > 0 for v in vs), 30)
            await asyncio.sleep(2)
            rss_after = (await sig.call(op="usage"))["rss"]
            u0, sent0, my0 = await sig.call(op="usage"), track.sent, own_cpu()
            await asyncio.sleep(0.1)  # counts at viewers lag the publisher by ~1 frame + network
            got0 = [v.frames for v in viewers]
            await asyncio.sleep(window)
            u1, sent1, my1 = await sig.call(op="usage"), track.sent, own_cpu()
            await asyncio.sleep(0.1)
            got1 = [v.frames for v in viewers]
            sent = sent1 - sent0
            delivered = [(b - a) / sent for a, b in zip(got0, got1, strict=True)]
            cpu = u1["cpu"] - u0["cpu"]
            point = {
                "n": n,
                "all_viewers_flowing": all_flowing,
                "gateway_cpu_fraction": cpu / window,
                "gateway_cpu_s_per_subscriber_s": cpu / (window * n),
                "gateway_marginal_cpu_s_per_subscriber_s": (cpu - idle_cpu_rate * window)
                / (window * n),
                "frames_sent": sent,
                "delivered_min": min(delivered),
                "delivered_mean": statistics.fmean(delivered),
                "gateway_rss_mb": rss_after / 2**20,
                "rss_growth_mb_per_subscriber": (rss_after - rss_before) / 2**20 / n,
                "bench_client_cpu_fraction": (my1 - my0) / window,
            }
            print(mode, json.dumps(point), flush=True)
            out["points"].append(point)
            for viewer in viewers:
                await viewer.close(sig)
            await asyncio.sleep(1)

        # time from subscribe request to first frame, N=1, 10 runs
        delays = []
        for _ in range(10):
            viewer = Viewer()
            requested = await viewer.connect(sig, tracks)
            if await wait_until(lambda v=viewer: v.first_frame_at is not None, 10):
                assert viewer.first_frame_at is not None
                delays.append(viewer.first_frame_at - requested)
            await viewer.close(sig)
            await asyncio.sleep(0.7)  # beyond the PLI throttle window, like independent joins
        out["first_frame_ms"] = [round(1000 * d, 1) for d in delays]
        out["first_frame_ms_median"] = 1000 * statistics.median(delays) if delays else None
        print(mode, "first frame ms", out["first_frame_ms"], flush=True)
    finally:
        await publisher.close()
        sig.writer.close()
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for mode, style in (("core", "o-"), ("relay", "s--")):
        points = results.get(mode, {}).get("points", [])
        if not points:
            continue
        ns = [p["n"] for p in points]
        label = "MediaCore (forward)" if mode == "core" else "MediaRelay (decode+encode)"
        axes[0].plot(ns, [100 * p["gateway_cpu_fraction"] for p in points], style, label=label)
        axes[1].plot(ns, [100 * p["delivered_min"] for p in points], style, label=label)
        axes[2].plot(ns, [p["gateway_rss_mb"] for p in points], style, label=label)
    axes[0].set_ylabel("gateway CPU (% of one core)")
    axes[1].set_ylabel("frames delivered, worst viewer (%)")
    axes[2].set_ylabel("gateway RSS (MB)")
    for ax in axes:
        ax.set_xlabel("subscribers")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"720p30 H.264 fan-out on {os.cpu_count()} cores (loopback)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--core-n", default="1,5,10,20,40")
    parser.add_argument("--relay-n", default="1,2,5")
    args = parser.parse_args()
    loopback_only()
    clip = encode_clip()
    bitrate = 8 * sum(len(p) for p in clip) / (len(clip) / FPS)
    results: dict[str, Any] = {
        "clip": {"width": 1280, "height": 720, "fps": FPS, "bitrate_bps": bitrate},
        "cpu_count": os.cpu_count(),
        "window_s": args.window,
    }
    for mode, ns in (("core", args.core_n), ("relay", args.relay_n)):
        if ns:
            results[mode] = await run_mode(mode, clip, [int(n) for n in ns.split(",")], args.window)
    core_points = {p["n"]: p for p in results.get("core", {}).get("points", [])}
    relay_points = {p["n"]: p for p in results.get("relay", {}).get("points", [])}
    results["relay_to_core_cpu_ratio"] = {
        n: relay_points[n]["gateway_cpu_fraction"] / core_points[n]["gateway_cpu_fraction"]
        for n in relay_points
        if n in core_points
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fanout.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, RESULTS / "fanout.png")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
