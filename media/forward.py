"""Per-consumer frame queues, the packet-forwarding track for subscribers, and taps."""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from collections.abc import Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .types import EncodedFrame, Kind


def _noop() -> None:
    pass


class FrameQueue:
    """Bounded single-consumer queue of encoded frames; never blocks the publisher.

    Video starts at a keyframe. On overflow, queued video is dropped and the queue waits for
    the next keyframe (asking for one through `on_need_keyframe`); audio drops the oldest frame.
    """

    def __init__(
        self,
        kind: Kind,
        max_frames: int,
        on_need_keyframe: Callable[[], None] = _noop,
        start_at_keyframe: bool = True,
    ) -> None:
        self.kind = kind
        self.max_frames = max_frames
        self._on_need_keyframe = on_need_keyframe
        self._frames: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._need_keyframe = kind == "video" and start_at_keyframe
        self.generation = 0  # bumped when the queue is fed from another source
        self.closed = False
        self.pushed = 0
        self.dropped = 0
        self.delivered = 0
        self.delivered_bytes = 0

    def push(self, frame: EncodedFrame) -> None:
        if self.closed:
            return
        self.pushed += 1
        if self._need_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        if len(self._frames) >= self.max_frames:
            if self.kind == "video":
                self.dropped += len(self._frames)
                self._frames.clear()
                if not frame.keyframe:
                    self.dropped += 1
                    self._need_keyframe = True
                    self._on_need_keyframe()
                    return
            else:
                self._frames.popleft()
                self.dropped += 1
        self._frames.append(frame)
        self._ready.set()

    async def get(self) -> EncodedFrame | None:
        """Next frame, or None once closed and drained."""
        while not self._frames:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame = self._frames.popleft()
        self.delivered += 1
        self.delivered_bytes += len(frame.data)
        return frame

    def retarget(self, on_need_keyframe: Callable[[], None]) -> None:
        """Prepare for frames from another source: flush, restart (video) at a keyframe."""
        self._frames.clear()
        self._on_need_keyframe = on_need_keyframe
        self._need_keyframe = self.kind == "video"
        self.generation += 1

    def close(self, drain: bool = True) -> None:
        self.closed = True
        if not drain:
            self._frames.clear()
        self._ready.set()

    def __len__(self) -> int:
        return len(self._frames)


_TIME_BASES: dict[int, fractions.Fraction] = {}


def _time_base(clock_rate: int) -> fractions.Fraction:
    tb = _TIME_BASES.get(clock_rate)
    if tb is None:
        tb = _TIME_BASES[clock_rate] = fractions.Fraction(1, clock_rate)
    return tb


def to_packet(frame: EncodedFrame, pts: int | None = None) -> av.Packet:
    """An `av.Packet` that aiortc's sender packs as-is, keeping the publisher's RTP timing."""
    packet = av.Packet(frame.data)
    packet.pts = frame.timestamp if pts is None else pts
    packet.time_base = _time_base(frame.clock_rate)
    return packet


class ForwardTrack(MediaStreamTrack):
    """Track of one subscription: `recv()` yields `av.Packet`s, so the sender never encodes.

    `on_start` runs on the first `recv()`, i.e. when the sender starts (DTLS connected): that
    is when the subscription attaches to the publisher and asks for a keyframe. When the queue
    is retargeted to another source, timestamps are rebased so the outgoing RTP clock keeps
    advancing by one frame instead of jumping to the new publisher's timeline.
    """

    def __init__(self, kind: Kind, queue: FrameQueue, on_start: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self.queue = queue
        self._on_start: Callable[[], None] | None = on_start
        self._generation = queue.generation
        self._offset = 0
        self._last_pts: int | None = None
        self._last_step = 0

    async def recv(self) -> av.Packet:  # type: ignore[override]
        if self._on_start is not None:
            on_start, self._on_start = self._on_start, None
            on_start()
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        if self.queue.generation != self._generation:
            self._generation = self.queue.generation
            if self._last_pts is not None:
                step = self._last_step or frame.clock_rate // (30 if self.kind == "video" else 50)
                self._offset = self._last_pts + step - frame.timestamp
        pts = frame.timestamp + self._offset
        if self._last_pts is not None and pts > self._last_pts:
            self._last_step = pts - self._last_pts
        self._last_pts = pts
        return to_packet(frame, pts)

    def stop(self) -> None:
        self._on_start = None
        self.queue.close(drain=False)
        super().stop()


class Tap:
    """Encoded frames of one published track for a non-peer consumer (recorder, restreamer).

    Iterate with ``async for frame in tap``; iteration ends when the track ends or the tap is
    closed. Usable as an async context manager that closes the tap on exit.
    """

    def __init__(self, track_id: str, queue: FrameQueue, on_close: Callable[[Tap], None]) -> None:
        self.track_id = track_id
        self.queue = queue
        self._on_close: Callable[[Tap], None] | None = on_close

    async def get(self) -> EncodedFrame | None:
        return await self.queue.get()

    def __aiter__(self) -> Tap:
        return self

    async def __anext__(self) -> EncodedFrame:
        frame = await self.queue.get()
        if frame is None:
            raise StopAsyncIteration
        return frame

    def close(self) -> None:
        self.queue.close(drain=False)
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    @property
    def closed(self) -> bool:
        return self.queue.closed

    async def __aenter__(self) -> Tap:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
