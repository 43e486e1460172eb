"""Per-peer, per-track and per-subscription counters and rates, sampled periodically.

Byte/packet/loss/RTT numbers come from aiortc (``getStats()`` and the receivers' RTCP
statistics); frame counts, drops, PLIs and NACKs come from the forwarding path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import hook

if TYPE_CHECKING:
    from .core import MediaCore

logger = logging.getLogger(__name__)


@dataclass
class TrackStats:
    track_id: str
    peer_id: str
    kind: str
    codec: str
    mid: str
    frames: int = 0
    bytes: int = 0
    keyframes: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float = 0.0
    nacks_sent: int = 0
    plis_sent: int = 0
    subscribers: int = 0
    taps: int = 0
    fps: float = 0.0
    bitrate_bps: float = 0.0


@dataclass
class SubscriptionStats:
    subscription_id: str
    track_id: str
    peer_id: str
    mid: str | None
    frames_sent: int = 0
    payload_bytes_sent: int = 0
    frames_dropped: int = 0
    queued: int = 0
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_lost: int = 0
    rtt_ms: float | None = None
    jitter_ms: float = 0.0
    nacks_received: int = 0
    nacked_packets: int = 0
    plis_received: int = 0
    firs_received: int = 0
    fps: float = 0.0
    bitrate_bps: float = 0.0


@dataclass
class PeerStats:
    peer_id: str
    state: str
    bytes_sent: int = 0
    bytes_received: int = 0
    packets_sent: int = 0
    packets_received: int = 0
    rtt_ms: float | None = None
    send_bitrate_bps: float = 0.0
    recv_bitrate_bps: float = 0.0
    published: list[str] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)


@dataclass
class CoreStats:
    timestamp: float = 0.0  # unix time of the sample
    peers: dict[str, PeerStats] = field(default_factory=dict)
    tracks: dict[str, TrackStats] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionStats] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Rate:
    """Per-key rate of two monotonically increasing counters between samples."""

    def __init__(self) -> None:
        self._prev: dict[str, tuple[float, int, int]] = {}
        self._seen: set[str] = set()

    def __call__(self, key: str, now: float, count: int, nbytes: int) -> tuple[float, float]:
        self._seen.add(key)
        prev = self._prev.get(key)
        self._prev[key] = (now, count, nbytes)
        if prev is None or now <= prev[0]:
            return 0.0, 0.0
        dt = now - prev[0]
        return (count - prev[1]) / dt, 8 * (nbytes - prev[2]) / dt

    def prune(self) -> None:
        for key in set(self._prev) - self._seen:
            del self._prev[key]
        self._seen.clear()


class StatsSampler:
    def __init__(self, core: MediaCore) -> None:
        self._core = core
        self._task: asyncio.Task[None] | None = None
        self._rate = _Rate()
        self.latest = CoreStats()

    def start(self, interval: float) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(interval))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sample()
            except Exception:
                logger.exception("stats sample failed")

    async def sample(self) -> CoreStats:
        core = self._core
        now = time.monotonic()
        out = CoreStats(timestamp=time.time())
        rate = self._rate

        for track_id, track in list(core._tracks.items()):
            received, lost, jitter = hook.receiver_stream_stats(track.receiver)
            ts = TrackStats(
                track_id=track_id,
                peer_id=track.info.peer_id,
                kind=track.info.kind,
                codec=track.info.codec,
                mid=track.info.mid,
                frames=track.frames,
                bytes=track.bytes,
                keyframes=track.keyframes_received,
                packets_received=received,
                packets_lost=lost,
                jitter_ms=1000.0 * jitter / track.info.clock_rate,
                nacks_sent=track.nacks_sent,
                plis_sent=track.plis_sent,
                subscribers=len(core._subscriptions.get(track_id, ())),
                taps=len(core._taps.get(track_id, ())),
            )
            ts.fps, ts.bitrate_bps = rate(f"t:{track_id}", now, track.frames, track.bytes)
            out.tracks[track_id] = ts

        for peer_id, peer in list(core.peers.items()):
            await asyncio.sleep(0)  # spread the work: do not stall forwarding for all peers
            try:
                report = await peer.pc.getStats()
            except Exception:
                report = {}
            ps = PeerStats(peer_id=peer_id, state=peer.connection_state)
            for stat in report.values():
                if getattr(stat, "type", None) == "transport":
                    ps.bytes_sent += stat.bytesSent
                    ps.bytes_received += stat.bytesReceived
                    ps.packets_sent += stat.packetsSent
                    ps.packets_received += stat.packetsReceived
            rtts: list[float] = []
            for sub in list(peer.subscriptions.values()):
                ss = self._subscription_stats(sub, report)
                ss.fps, ss.bitrate_bps = rate(
                    f"s:{sub.id}", now, sub.queue.delivered, sub.queue.delivered_bytes
                )
                if ss.rtt_ms is not None:
                    rtts.append(ss.rtt_ms)
                out.subscriptions[sub.id] = ss
                ps.subscriptions.append(sub.id)
            ps.published = [t.track_id for t in peer.published.values()]
            ps.rtt_ms = sum(rtts) / len(rtts) if rtts else None
            _, ps.send_bitrate_bps = rate(f"ps:{peer_id}", now, 0, ps.bytes_sent)
            _, ps.recv_bitrate_bps = rate(f"pr:{peer_id}", now, 0, ps.bytes_received)
            out.peers[peer_id] = ps

        rate.prune()
        self.latest = out
        return out

    @staticmethod
    def _subscription_stats(sub: Any, report: Any) -> SubscriptionStats:
        sender = sub.sender
        ss = SubscriptionStats(
            subscription_id=sub.id,
            track_id=sub.track_id,
            peer_id=sub.peer.id,
            mid=sub.mid,
            frames_sent=sub.queue.delivered,
            payload_bytes_sent=sub.queue.delivered_bytes,
            frames_dropped=sub.queue.dropped,
            queued=len(sub.queue),
            nacks_received=sub.nacks_received,
            nacked_packets=sub.nacked_packets,
            plis_received=sub.plis_received,
            firs_received=sub.firs_received,
        )
        outbound = report.get(f"outbound-rtp_{id(sender)}")
        if outbound is not None:
            ss.packets_sent = outbound.packetsSent
            ss.bytes_sent = outbound.bytesSent
        remote = report.get(f"remote-inbound-rtp_{id(sender)}")
        if remote is not None:
            ss.packets_lost = remote.packetsLost
            if remote.roundTripTime is not None:
                ss.rtt_ms = 1000.0 * remote.roundTripTime
            ss.jitter_ms = 1000.0 * remote.jitter / sub.track.info.clock_rate
        return ss
