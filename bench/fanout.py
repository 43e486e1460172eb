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
from aiortc.rtp import RtpPacket

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.runner import loopback_only  # noqa: E402
from media import hook  # noqa: E402
from media.keyframes import is_h264_keyframe  # noqa: E402
from tests.rtc import local_peer_connection  # noqa: E402

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
    """Counts received frames without decoding.

    Default: complete frames from aiortc's jitter buffer via media.hook (NACK active).
    `light=True`: the receiver only counts RTP packets carrying the marker bit (last packet of
    a frame), skipping aiortc's per-packet receive path so one client process can hold 40
    viewers on a 2-core machine; lost packets are then not repaired.
    """

    def __init__(self, light: bool = False) -> None:
        self.pc = local_peer_connection()
        prefer_h264(self.pc, "recvonly", None)
        self.light = light
        self.frames = 0
        self.packets = 0
        self.timestamps: list[int] = []  # RTP timestamp of every complete frame, in order
        self.first_frame_at: float | None = None
        self.peer_id = ""
        self._media_pts: set[int] = set()

    def _on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        self.frames += 1
        self.timestamps.append(frame.timestamp)

    async def _count_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        if packet.payload_type in self._media_pts:
            self.packets += 1
            if packet.marker:
                if self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
                self.frames += 1
                self.timestamps.append(packet.timestamp)

    async def connect(self, sig: Signalling, tracks: list[str]) -> float:
        """Returns the monotonic time the subscribe request was sent."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        for transceiver in self.pc.getTransceivers():
            receiver = transceiver.receiver
            if self.light:
                receiver._handle_rtp_packet = self._count_packet  # type: ignore[method-assign]
            else:
                hook.install_receive_hook(receiver).bind(self._on_frame, lambda: None)
        requested = time.monotonic()
        reply = await sig.call(op="subscribe", offer=self.pc.localDescription.sdp, tracks=tracks)
        self.peer_id = reply["peer"]
        await self.pc.setRemoteDescription(RTCSessionDescription(reply["answer"], "answer"))
        self._media_pts = {
            c.payloadType
            for t in self.pc.getTransceivers()
            for c in t._codecs
            if c.mimeType.lower() != "video/rtx"
        }
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


def frames_in_window(timestamps: list[int], window: float) -> float:
    """Share of the frames the publisher sent in `window` seconds of media time that arrived.

    The window starts at the first frame in `timestamps`; the publisher sends exactly one frame
    every 90000/FPS ticks, so the expected count is window * FPS regardless of boundaries.
    """
    if not timestamps:
        return 0.0
    first, span = timestamps[0], int(window * 90000)
    seen = {ts for ts in timestamps if (ts - first) % 2**32 < span}
    return len(seen) / (window * FPS)


async def core_stats(sig: Signalling, mode: str, track_id: str) -> dict[str, int]:
    """MediaCore counters of the published track and its subscriptions (core mode only)."""
    if mode != "core":
        return {}
    stats = await sig.call(op="stats")
    track = stats["tracks"][track_id]
    subs = stats["subscriptions"].values()
    return {
        "frames_received": track["frames"],
        "packets_lost_upstream": track["packets_lost"],
        "nacks_sent_upstream": track["nacks_sent"],
        "plis_sent_upstream": track["plis_sent"],
        "frames_dropped_in_queues": sum(s["frames_dropped"] for s in subs),
        "nacks_from_viewers": sum(s["nacks_received"] for s in subs),
    }


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def publish(port: int) -> None:
    """Publisher process: publish the clip, answer "sent" lines with the frame count."""
    loopback_only()
    clip = encode_clip()
    sig = Signalling(*await asyncio.open_connection("127.0.0.1", port))
    publisher = local_peer_connection()
    track = ClipTrack(clip)
    prefer_h264(publisher, "sendonly", track)
    await publisher.setLocalDescription(await publisher.createOffer())
    reply = await sig.call(op="publish", offer=publisher.localDescription.sdp)
    await publisher.setRemoteDescription(RTCSessionDescription(reply["answer"], "answer"))
    sender = publisher.getSenders()[0]
    sender._send_keyframe = track.restart  # type: ignore[method-assign]
    print("TRACKS", json.dumps(reply["tracks"]), flush=True)
    loop = asyncio.get_running_loop()
    while await loop.run_in_executor(None, sys.stdin.readline):
        print(track.sent, flush=True)
    await publisher.close()
    sig.writer.close()


class PublisherProcess:
    """The publisher runs in its own process so its pacing is not disturbed by the viewers."""

    def __init__(self, proc: asyncio.subprocess.Process, tracks: list[str]) -> None:
        self.proc = proc
        self.tracks = tracks

    @classmethod
    async def start(cls, port: int) -> PublisherProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bench" / "fanout.py"),
            "--publish",
            str(port),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode()
        assert line.startswith("TRACKS "), line
        return cls(proc, json.loads(line[7:]))

    async def sent(self) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"sent\n")
        await self.proc.stdin.drain()
        return int(await self.proc.stdout.readline())

    async def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 20)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def run_mode(mode: str, ns: list[int], window: float, light: bool) -> dict[str, Any]:
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
    publisher = await PublisherProcess.start(port)
    try:
        tracks = publisher.tracks
        await asyncio.sleep(3)

        # gateway cost with the publisher alone
        u0 = await sig.call(op="usage")
        await asyncio.sleep(window)
        u1 = await sig.call(op="usage")
        idle_cpu_rate = (u1["cpu"] - u0["cpu"]) / window
        out["publisher_only_cpu_fraction"] = idle_cpu_rate

        for n in ns:
            rss_before = (await sig.call(op="usage"))["rss"]
            viewers = [Viewer(light=light) for _ in range(n)]
            for viewer in viewers:
                await viewer.connect(sig, tracks)
            all_flowing = await wait_until(lambda vs=viewers: all(v.frames > 0 for v in vs), 30)
            await asyncio.sleep(2)
            rss_after = (await sig.call(op="usage"))["rss"]
            stats0 = await core_stats(sig, mode, tracks[0])
            await sig.call(op="lag")
            u0, sent0, my0 = await sig.call(op="usage"), await publisher.sent(), own_cpu()
            start = [len(v.timestamps) for v in viewers]
            await asyncio.sleep(window)
            u1, sent1, my1 = await sig.call(op="usage"), await publisher.sent(), own_cpu()
            stats1 = await core_stats(sig, mode, tracks[0])
            lag = await sig.call(op="lag")
            await asyncio.sleep(1.0)  # let frames of the window still in flight arrive
            sent = sent1 - sent0
            delivered = [
                frames_in_window(v.timestamps[i:], window)
                for v, i in zip(viewers, start, strict=True)
            ]
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
                "core_counters": {k: stats1[k] - stats0[k] for k in stats1},
                "machine_loadavg_1m": os.getloadavg()[0],
                "gateway_loop_lag": lag,
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
    parser.add_argument(
        "--full-viewers",
        action="store_true",
        help="count frames through aiortc's jitter buffer (heavier client, NACK active)",
    )
    parser.add_argument("--publish", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        await publish(args.publish)
        return
    loopback_only()
    clip = encode_clip()
    bitrate = 8 * sum(len(p) for p in clip) / (len(clip) / FPS)
    results: dict[str, Any] = {
        "clip": {"width": 1280, "height": 720, "fps": FPS, "bitrate_bps": bitrate},
        "cpu_count": os.cpu_count(),
        "window_s": args.window,
        "viewers": "full (jitter buffer + NACK)" if args.full_viewers else "light (marker bits)",
    }
    for mode, ns in (("core", args.core_n), ("relay", args.relay_n)):
        if ns:
            results[mode] = await run_mode(
                mode, [int(n) for n in ns.split(",")], args.window, not args.full_viewers
            )
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
