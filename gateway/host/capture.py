"""Streaming performance-stats capture: a bounded ring of samples from the media core, saved
atomically as JSON recordings.

While armed, every `period` seconds the recorder reads the media core's latest stats and
emits one `StatsSample` per active video track (a "session": the publisher's track and the
subscriptions forwarding it). Rates are computed here from the core's cumulative counters
between two core snapshots, so they do not depend on the core's own sampling phase.

Stage timings come from the core's own instrumentation: `receive` is the publisher's RTP
interarrival jitter; `forward` is how long a frame waits between the publisher's receive
hook and the subscriber's sender picking it up: the event-loop wake-up delay (the forwarding
runs in-loop; probed ~50 times a second while armed) plus the subscriber queues' depth over
the frame rate; `send` is half the viewers' RTCP round-trip time. p50/p99 are over the
window's values.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from media import CoreStats, MediaCore
from media.detach import spawn

log = logging.getLogger("mediagate.host")

RING_SECONDS = 3 * 3600
KIND = "webrtc"
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
SizeOf = Callable[[str], tuple[int, int]]


class RecordingError(Exception):
    """A recording could not be written, read or deleted."""


def valid_id(recording_id: str) -> bool:
    return ID_RE.fullmatch(recording_id) is not None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _stage(name: str, values_ms: list[float]) -> dict[str, Any]:
    return {
        "name": name,
        "p50_us": round(_percentile(values_ms, 0.5) * 1000.0, 1),
        "p99_us": round(_percentile(values_ms, 0.99) * 1000.0, 1),
    }


def _codec_name(mime: str) -> str:
    name = mime.split("/", 1)[-1].lower()
    return {"hevc": "h265"}.get(name, name)


@dataclass
class _Baseline:
    timestamp: float
    frames: int
    bytes: int
    packets_lost: int
    subs: dict[str, tuple[int, int, int, int]]
    """subscription id -> (payload bytes, frames dropped, packets lost, nacked packets)"""


@dataclass
class _Capture:
    started_unix_ms: int
    started_monotonic: float
    samples: deque[dict[str, Any]]
    sessions: dict[str, int] = field(default_factory=dict)
    baselines: dict[str, _Baseline] = field(default_factory=dict)
    last_timestamp: float = 0.0
    primary: dict[str, Any] = field(default_factory=dict)
    fps_seen: list[float] = field(default_factory=list)


class LoopLag:
    """Wake-up delay of the event loop, the wait a forwarded frame sees before its sender runs."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.values: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = spawn(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.values.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            started = loop.time()
            await asyncio.sleep(0)
            self.values.append(1000.0 * (loop.time() - started))
            if len(self.values) > 1000:
                del self.values[:500]

    def drain(self) -> list[float]:
        values, self.values = self.values, []
        return values


class StatsRecorder:
    def __init__(self, media: MediaCore, directory: Path, period: float,
                 size_of: SizeOf | None = None) -> None:
        self.media = media
        self.directory = directory
        self.period = period
        self.size_of = size_of or (lambda _track_id: (0, 0))
        self.capacity = max(1, int(RING_SECONDS / period))
        self._capture: _Capture | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._lag = LoopLag()

    # -- control ------------------------------------------------------------------------

    @property
    def armed(self) -> bool:
        return self._capture is not None

    def status(self) -> dict[str, Any]:
        capture = self._capture
        if capture is None:
            return {"armed": False, "sample_count": 0, "started_unix_ms": 0, "kind": ""}
        return {
            "armed": True,
            "sample_count": len(capture.samples),
            "started_unix_ms": capture.started_unix_ms,
            "kind": KIND,
        }

    async def start(self) -> dict[str, Any]:
        async with self._lock:
            if self._capture is None:
                self._capture = _Capture(
                    started_unix_ms=int(time.time() * 1000),
                    started_monotonic=time.monotonic(),
                    samples=deque(maxlen=self.capacity),
                )
                self._observe(self.media.stats())
                self._lag.start()
                self._task = spawn(self._run())
            return self.status()

    def live(self) -> dict[str, Any] | None:
        capture = self._capture
        if capture is None:
            return None
        return {"meta": self._meta(capture, "live"), "samples": list(capture.samples)}

    async def stop(self) -> dict[str, Any] | None:
        """Disarm and save; the summary, or None when nothing was recording."""
        async with self._lock:
            capture = self._capture
            if capture is None:
                return None
            await self._cancel()
            self._observe(self.media.stats())
            self._capture = None
            meta = self._meta(capture, None)
            body = {"meta": meta, "samples": list(capture.samples)}
            await asyncio.to_thread(self._write, body)
            return meta

    async def close(self) -> None:
        """App shutdown: a running capture is saved, not lost."""
        with contextlib.suppress(RecordingError):
            await self.stop()

    async def _cancel(self) -> None:
        await self._lag.stop()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            try:
                self._observe(self.media.stats())
            except Exception:
                log.exception("stats capture sample failed")

    # -- sampling -----------------------------------------------------------------------

    def _observe(self, stats: CoreStats) -> None:
        capture = self._capture
        if capture is None or stats.timestamp <= capture.last_timestamp:
            return
        capture.last_timestamp = stats.timestamp
        subs_by_track: dict[str, list[Any]] = {}
        for sub in stats.subscriptions.values():
            subs_by_track.setdefault(sub.track_id, []).append(sub)
        t_ms = int((time.monotonic() - capture.started_monotonic) * 1000)
        lag = self._lag.drain() or [0.0]
        for track_id, track in stats.tracks.items():
            if track.kind != "video":
                continue
            subs = subs_by_track.get(track_id, [])
            baseline = capture.baselines.get(track_id)
            capture.baselines[track_id] = _Baseline(
                stats.timestamp, track.frames, track.bytes, track.packets_lost,
                {s.subscription_id: (s.payload_bytes_sent, s.frames_dropped, s.packets_lost,
                                     s.nacked_packets) for s in subs},
            )
            if baseline is None:
                continue
            dt = stats.timestamp - baseline.timestamp
            if dt <= 0:
                continue
            sent = dropped = lost = recovered = 0
            for sub in subs:
                prev = baseline.subs.get(sub.subscription_id, (0, 0, 0, 0))
                sent += max(0, sub.payload_bytes_sent - prev[0])
                dropped += max(0, sub.frames_dropped - prev[1])
                lost += max(0, sub.packets_lost - prev[2])
                recovered += max(0, sub.nacked_packets - prev[3])
            fps = max(0, track.frames - baseline.frames) / dt
            ingest_bps = 8 * max(0, track.bytes - baseline.bytes) / dt
            queued = [1000.0 * s.queued / fps if fps > 0 else 0.0 for s in subs]
            queue_ms = sum(queued) / len(queued) if queued else 0.0
            forward = [value + queue_ms for value in lag] if subs else []
            send = [s.rtt_ms / 2 for s in subs if s.rtt_ms is not None]
            stages = [_stage("receive", [track.jitter_ms])]
            if forward:
                stages.append(_stage("forward", forward))
            if send:
                stages.append(_stage("send", send))
            session_id = capture.sessions.setdefault(track_id, len(capture.sessions))
            capture.samples.append({
                "t_ms": t_ms,
                "session_id": session_id,
                "stages": stages,
                "fps": round(fps, 2),
                "repeat_fps": 0.0,
                "mbps": round(8 * sent / dt / 1e6, 4),
                "bitrate_kbps": round(ingest_bps / 1000),
                "frames_dropped": dropped,
                "packets_dropped": max(0, track.packets_lost - baseline.packets_lost),
                "send_dropped": lost,
                "fec_recovered": recovered,
            })
            if not capture.primary or capture.primary.get("track_id") == track_id:
                width, height = self.size_of(track_id)
                capture.primary = {
                    "track_id": track_id, "codec": _codec_name(track.codec),
                    "width": width, "height": height,
                }
                capture.fps_seen.append(fps)

    # -- recordings ---------------------------------------------------------------------

    def _meta(self, capture: _Capture, recording_id: str | None) -> dict[str, Any]:
        primary = capture.primary
        width, height = primary.get("width", 0), primary.get("height", 0)
        fps = _percentile(capture.fps_seen, 0.5) if capture.fps_seen else 0.0
        if recording_id is None:
            recording_id = self._new_id(capture.started_unix_ms, width, height)
        return {
            "id": recording_id,
            "started_unix_ms": capture.started_unix_ms,
            "duration_ms": int((time.monotonic() - capture.started_monotonic) * 1000),
            "kind": KIND,
            "width": width,
            "height": height,
            "fps": round(fps),
            "codec": primary.get("codec", ""),
            "client": str(primary.get("track_id", ""))[:64],
            "sample_count": len(capture.samples),
        }

    def _new_id(self, started_unix_ms: int, width: int, height: int) -> str:
        stamp = datetime.fromtimestamp(started_unix_ms / 1000, UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        base = f"{stamp}_{width}x{height}"
        candidate, n = base, 1
        while (self.directory / f"{candidate}.json").exists():
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _path(self, recording_id: str) -> Path:
        if not valid_id(recording_id):
            raise KeyError(recording_id)
        return self.directory / f"{recording_id}.json"

    def _write(self, body: dict[str, Any]) -> None:
        path = self._path(body["meta"]["id"])
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tmp.open("w") as handle:
                json.dump(body, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise RecordingError(f"could not write the recording: {exc.strerror}") from exc

    def list(self) -> list[dict[str, Any]]:
        metas: list[dict[str, Any]] = []
        if not self.directory.is_dir():
            return metas
        for path in self.directory.glob("*.json"):
            if not valid_id(path.stem):
                continue
            try:
                meta = json.loads(path.read_text())["meta"]
            except (OSError, ValueError, KeyError, TypeError):
                log.warning("stats: skipping unreadable recording %s", path.name)
                continue
            if isinstance(meta, dict):
                metas.append(meta)
        metas.sort(key=lambda m: (m.get("started_unix_ms", 0), m.get("id", "")), reverse=True)
        return metas

    def get(self, recording_id: str) -> dict[str, Any] | None:
        try:
            path = self._path(recording_id)
        except KeyError:
            return None
        if not path.is_file():
            return None
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RecordingError("the recording file is unreadable") from exc
        if not isinstance(body, dict) or "meta" not in body or "samples" not in body:
            raise RecordingError("the recording file is unreadable")
        return body

    def delete(self, recording_id: str) -> bool:
        try:
            path = self._path(recording_id)
        except KeyError:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise RecordingError(f"could not delete the recording: {exc.strerror}") from exc
        return True
