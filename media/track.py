"""A published track: frames from one publisher's receiver, fanned out to its consumers."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from . import hook
from .forward import FrameQueue
from .keyframes import KeyframeRequester, is_keyframe
from .types import EncodedFrame, TrackInfo


class PublishedTrack:
    def __init__(
        self,
        info: TrackInfo,
        receiver: RTCRtpReceiver,
        *,
        pli_interval: float,
        periodic_pli: float | None,
        on_started: Callable[[PublishedTrack], None],
        on_ended: Callable[[PublishedTrack, str], None],
    ) -> None:
        self.info = info
        self.receiver = receiver
        self.sinks: set[FrameQueue] = set()
        self.keyframes = KeyframeRequester(
            lambda: hook.send_pli(receiver),
            min_interval=pli_interval,
            periodic=periodic_pli if info.kind == "video" else None,
        )
        self._on_started = on_started
        self._on_ended = on_ended
        self.started = False
        self.ended = False
        self.created = time.monotonic()
        # counters (read by media.stats)
        self.frames = 0
        self.bytes = 0
        self.keyframes_received = 0
        self.plis_sent = 0
        self.nacks_sent = 0
        self.last_frame_at = 0.0
        hook.count_receiver_feedback(receiver, self._count_pli, self._count_nack)
        hook.install_receive_hook(receiver).bind(self._on_frame, self._on_end)

    @property
    def track_id(self) -> str:
        return self.info.track_id

    @property
    def kind(self) -> str:
        return self.info.kind

    def _count_pli(self) -> None:
        self.plis_sent += 1

    def _count_nack(self, lost: int) -> None:
        self.nacks_sent += 1

    def _on_frame(self, codec: RTCRtpCodecParameters, jitter_frame: JitterFrame) -> None:
        if self.ended:
            return
        keyframe = is_keyframe(codec.mimeType, jitter_frame.data)
        frame = EncodedFrame(
            data=jitter_frame.data,
            timestamp=jitter_frame.timestamp,
            codec=codec.mimeType,
            keyframe=keyframe,
            clock_rate=codec.clockRate,
        )
        self.frames += 1
        self.bytes += len(frame.data)
        self.last_frame_at = time.monotonic()
        if keyframe and self.info.kind == "video":
            self.keyframes_received += 1
            self.keyframes.keyframe_received()
        for sink in self.sinks:
            sink.push(frame)
        if not self.started:
            self.started = True
            self.keyframes.start()
            self._on_started(self)

    def _on_end(self) -> None:
        # Called inside aiortc's __stop_decoder (BYE, disconnect or receiver stop).
        self._on_ended(self, "publisher stopped sending")

    def attach(self, sink: FrameQueue) -> None:
        self.sinks.add(sink)
        if self.info.kind == "video":
            self.keyframes.request()

    def detach(self, sink: FrameQueue) -> None:
        self.sinks.discard(sink)

    def request_keyframe(self) -> None:
        if self.info.kind == "video" and not self.ended:
            self.keyframes.request()

    async def end(self) -> None:
        """Close every consumer and stop keyframe requests (the core unregisters us)."""
        if self.ended:
            return
        self.ended = True
        sink = hook.receive_hook(self.receiver)
        if sink is not None:
            sink.unbind()
        for queue in list(self.sinks):
            queue.close()
        self.sinks.clear()
        await self.keyframes.close()
