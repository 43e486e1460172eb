"""MediaCore: owns every peer connection, the registry of published tracks, taps and stats."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from . import ratecounter
from .detach import spawn
from .forward import FrameQueue, Tap
from .memory import MemoryTrimmer
from .peer import Peer, Subscription
from .sdplimits import SdpLimits
from .stats import CoreStats, StatsSampler
from .track import PublishedTrack
from .types import (
    Kind,
    MediaEvent,
    PeerClosed,
    PeerLimitReached,
    TrackEnded,
    TrackInfo,
    TrackPublished,
    TrackStarted,
    UnknownTrack,
)

logger = logging.getLogger(__name__)

Listener = Callable[[MediaEvent], Awaitable[None] | None]
PeerFactory = Callable[[RTCConfiguration], RTCPeerConnection]


@dataclass
class MediaConfig:
    ice_servers: list[RTCIceServer] = field(default_factory=list)
    # Builds each RTCPeerConnection; media.network.peer_factory() applies the port range,
    # public IPs and address allowlist there, and the DTLS fix for FFmpeg's WHIP muxer.
    peer_factory: PeerFactory | None = None
    # Keyframes: at most one PLI per `pli_interval` s per track, plus one every `periodic_pli` s.
    pli_interval: float = 0.5
    periodic_pli: float | None = 2.0
    stats_interval: float = 1.0
    # A peer that is not connected this long after creation is closed.
    connect_timeout: float = 30.0
    # Peers not connected yet (each holds sockets, a certificate, receivers): at most this
    # many from one client (see MediaCore.acting_for) and in all; None = no limit.
    max_pending_per_client: int | None = None
    max_pending_peers: int | None = None
    video_queue_frames: int = 60
    audio_queue_frames: int = 100
    # SO_RCVBUF for each peer's UDP sockets (the kernel caps it at net.core.rmem_max).
    udp_receive_buffer: int | None = 2 * 1024 * 1024
    # The shape of remote SDP a peer accepts unless the caller passes stricter limits.
    sdp_limits: SdpLimits = field(default_factory=SdpLimits)

    def queue_frames(self, kind: Kind | str) -> int:
        return self.video_queue_frames if kind == "video" else self.audio_queue_frames


@dataclass(frozen=True, slots=True)
class _Pending:
    client: str | None
    deadline: float
    """`time.monotonic()` when the connect watchdog closes the peer."""


class MediaCore:
    def __init__(self, config: MediaConfig | None = None) -> None:
        ratecounter.install()
        self.config = config or MediaConfig()
        self.peers: dict[str, Peer] = {}
        self._tracks: dict[str, PublishedTrack] = {}
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._taps: dict[str, set[Tap]] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdogs: dict[str, asyncio.Task[None]] = {}
        self._pending: dict[str, _Pending] = {}  # by peer id, until connected or closed
        self._client: ContextVar[str | None] = ContextVar(f"media-client-{id(self)}",
                                                         default=None)
        self._stats = StatsSampler(self)
        self._trimmer = MemoryTrimmer()
        self._started = False

    async def start(self) -> None:
        if not self._started:
            self._started = True
            self._stats.start(self.config.stats_interval)

    async def stop(self) -> None:
        """Close every peer and tap, and stop background tasks."""
        await asyncio.gather(
            *(peer.close("core stopped") for peer in list(self.peers.values())),
            return_exceptions=True,
        )
        for taps in list(self._taps.values()):
            for tap in list(taps):
                tap.close()
        await self._stats.stop()
        await self._trimmer.stop()
        tasks = list(self._tasks) + list(self._watchdogs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._started = False

    # -- peers --------------------------------------------------------------------------

    async def create_peer(
        self, peer_id: str | None = None, *, connect_timeout: float | None = None
    ) -> Peer:
        """A new peer; it is closed unless connected within `connect_timeout` seconds
        (default `config.connect_timeout`), e.g. longer for sessions that negotiate later."""
        peer_id = peer_id or uuid.uuid4().hex
        if peer_id in self.peers:
            raise ValueError(f"peer {peer_id} exists")
        timeout = self.config.connect_timeout if connect_timeout is None else connect_timeout
        client = self._client.get()
        self._admit(client)
        rtc_config = RTCConfiguration(iceServers=list(self.config.ice_servers))
        factory = self.config.peer_factory or RTCPeerConnection
        peer = Peer(self, peer_id, factory(rtc_config))
        self.peers[peer_id] = peer
        self._pending[peer_id] = _Pending(client, time.monotonic() + timeout)
        self._watchdogs[peer_id] = spawn(self._watchdog(peer, timeout))
        return peer

    def get_peer(self, peer_id: str) -> Peer | None:
        return self.peers.get(peer_id)

    @contextlib.contextmanager
    def acting_for(self, client: str) -> Iterator[None]:
        """Peers created inside (in this task) count against `client`'s pending-peer limit."""
        token = self._client.set(client)
        try:
            yield
        finally:
            self._client.reset(token)

    def pending_peers(self, client: str | None = None) -> int:
        """Peers not connected yet, in all or created for `client`."""
        if client is None:
            return len(self._pending)
        return sum(1 for p in self._pending.values() if p.client == client)

    def _admit(self, client: str | None) -> None:
        """Raise PeerLimitReached if one more pending peer (for `client`) is over a limit."""
        limits = [("global", self.config.max_pending_peers, list(self._pending.values()))]
        if client is not None:
            mine = [p for p in self._pending.values() if p.client == client]
            limits.insert(0, ("client", self.config.max_pending_per_client, mine))
        for scope, limit, pending in limits:
            if limit is not None and len(pending) >= limit:
                soonest = min((p.deadline for p in pending), default=time.monotonic())
                raise PeerLimitReached(scope, limit, max(1, math.ceil(soonest - time.monotonic())))

    def _peer_connected(self, peer: Peer) -> None:
        self._pending.pop(peer.id, None)

    async def _watchdog(self, peer: Peer, limit: float) -> None:
        try:
            await asyncio.wait_for(peer.connected.wait(), limit)
        except TimeoutError:
            self._watchdogs.pop(peer.id, None)
            await peer.close("connect timeout")
        else:
            self._watchdogs.pop(peer.id, None)

    def _schedule_close(self, peer: Peer, reason: str) -> None:
        self._spawn(peer.close(reason))

    def _peer_closed(self, peer: Peer, reason: str, published: list[str]) -> None:
        self.peers.pop(peer.id, None)
        self._pending.pop(peer.id, None)
        self._trimmer.released()
        watchdog = self._watchdogs.pop(peer.id, None)
        if watchdog is not None and watchdog is not asyncio.current_task():
            watchdog.cancel()
        self._emit(PeerClosed(peer.id, reason, published))

    # -- track registry -----------------------------------------------------------------

    def get_track(self, track_id: str) -> TrackInfo | None:
        track = self._tracks.get(track_id)
        return track.info if track is not None else None

    def list_tracks(self, prefix: str = "") -> list[TrackInfo]:
        return [t.info for tid, t in self._tracks.items() if tid.startswith(prefix)]

    def track_started(self, track_id: str) -> bool:
        track = self._tracks.get(track_id)
        return track is not None and track.started

    def last_frame_at(self, track_id: str) -> float | None:
        """`time.monotonic()` when the live track's latest frame arrived; None if it has
        received none yet or no such track is live."""
        track = self._tracks.get(track_id)
        if track is None or track.ended or not track.frames:
            return None
        return track.last_frame_at

    def subscriptions_of(self, track_id: str) -> list[Subscription]:
        return list(self._subscriptions.get(track_id, ()))

    def _get_published(self, track_id: str) -> PublishedTrack:
        track = self._tracks.get(track_id)
        if track is None or track.ended:
            raise UnknownTrack(track_id)
        return track

    def _register_track(self, info: TrackInfo, receiver: RTCRtpReceiver) -> PublishedTrack:
        track = PublishedTrack(
            info,
            receiver,
            pli_interval=self.config.pli_interval,
            periodic_pli=self.config.periodic_pli,
            on_started=lambda t: self._emit(TrackStarted(t.info)),
            on_ended=lambda t, reason: self._spawn(self._end_track(t, reason)),
        )
        self._tracks[info.track_id] = track
        self._emit(TrackPublished(info))
        return track

    async def _end_track(self, track: PublishedTrack, reason: str) -> None:
        if track.ended:
            return
        if self._tracks.get(track.track_id) is track:
            del self._tracks[track.track_id]
        peer = self.peers.get(track.info.peer_id)
        if peer is not None and peer.published.get(track.info.mid) is track:
            del peer.published[track.info.mid]
        for sub in list(self._subscriptions.pop(track.track_id, ())):
            sub.peer.subscriptions.pop(sub.id, None)
            sub._end()
        for tap in list(self._taps.pop(track.track_id, ())):
            tap.queue.close()  # lets the consumer drain what is queued, then iteration ends
        await track.end()
        self._emit(TrackEnded(track.info, reason))

    async def end_track(self, track_id: str, reason: str = "ended") -> bool:
        """End a published track now (its subscriptions and taps close, TrackEnded fires).

        Returns False if no such live track. The publisher's transceiver stays as it is.
        """
        track = self._tracks.get(track_id)
        if track is None or track.ended:
            return False
        await self._end_track(track, reason)
        return True

    def _subscription_added(self, sub: Subscription) -> None:
        self._subscriptions.setdefault(sub.track_id, set()).add(sub)

    def _subscription_removed(self, sub: Subscription) -> None:
        subs = self._subscriptions.get(sub.track_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subscriptions[sub.track_id]

    # -- taps and keyframes -------------------------------------------------------------

    def tap(
        self, track_id: str, *, max_frames: int | None = None, start_at_keyframe: bool = True
    ) -> Tap:
        """Encoded frames of `track_id` for a non-peer consumer; close the tap to detach."""
        track = self._get_published(track_id)
        kind = track.info.kind
        queue = FrameQueue(
            kind,
            max_frames or self.config.queue_frames(kind),
            on_need_keyframe=track.request_keyframe,
            start_at_keyframe=start_at_keyframe,
        )

        def on_close(tap: Tap) -> None:
            track.detach(queue)
            taps = self._taps.get(track_id)
            if taps is not None:
                taps.discard(tap)
                if not taps:
                    del self._taps[track_id]

        tap = Tap(track_id, queue, on_close)
        self._taps.setdefault(track_id, set()).add(tap)
        track.attach(queue)
        return tap

    def request_keyframe(self, track_id: str) -> None:
        self._get_published(track_id).request_keyframe()

    # -- events -------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` (sync or async) for every MediaEvent; returns an unsubscribe."""
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def _emit(self, event: MediaEvent) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(event)
            except Exception:
                logger.exception("media event listener failed")
                continue
            if inspect.isawaitable(result):
                self._spawn(result)

    def _spawn(self, aw: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await aw
            except Exception:
                logger.exception("media core task failed")

        task = spawn(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- stats --------------------------------------------------------------------------

    def stats(self) -> CoreStats:
        """The latest sample (taken every `config.stats_interval` seconds)."""
        return self._stats.latest

    async def sample_stats(self) -> CoreStats:
        """Take a sample now (rates are relative to the previous sample)."""
        return await self._stats.sample()
