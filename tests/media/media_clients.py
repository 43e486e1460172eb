"""Real aiortc client peers for media core tests: a publisher of numbered frames, subscribers
that capture encoded frames through media.hook (so nothing in the process decodes video), and
helpers to decode captured frames offline with plain PyAV and read the frame numbers back."""

from __future__ import annotations

import asyncio
import fractions
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import av
from aiortc import (
    MediaStreamTrack,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from media import Peer, hook
from tests.rtc import local_peer_connection

WIDTH, HEIGHT = 320, 240
BITS = 16
BLOCK = WIDTH // BITS  # 20 px blocks; two rows: the counter and its complement


def numbered_frame(n: int) -> av.VideoFrame:
    """A yuv420p frame whose luma carries `n` as 16 black/white blocks (+ complement row)."""
    frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
    luma = bytearray(b"\x80" * (WIDTH * HEIGHT))
    for row, value in ((0, n), (1, ~n)):
        for bit in range(BITS):
            level = 235 if (value >> (BITS - 1 - bit)) & 1 else 16
            for y in range(row * BLOCK, (row + 1) * BLOCK):
                start = y * WIDTH + bit * BLOCK
                luma[start : start + BLOCK] = bytes([level]) * BLOCK
    frame.planes[0].update(bytes(luma))
    frame.planes[1].update(b"\x80" * (WIDTH * HEIGHT // 4))
    frame.planes[2].update(b"\x80" * (WIDTH * HEIGHT // 4))
    return frame


def read_number(frame: av.VideoFrame) -> int | None:
    plane = frame.planes[0]
    data = bytes(plane)
    stride = plane.line_size

    def row_value(row: int) -> int:
        value = 0
        for bit in range(BITS):
            y0, x0 = row * BLOCK + 5, bit * BLOCK + 5
            total = sum(data[(y0 + dy) * stride + x0 + dx] for dy in range(10) for dx in range(10))
            value = (value << 1) | (1 if total / 100 > 128 else 0)
        return value

    n, check = row_value(0), row_value(1)
    return n if n ^ check == (1 << BITS) - 1 else None


class NumberedVideoTrack(VideoStreamTrack):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = numbered_frame(self.count)
        self.count += 1
        frame.pts = pts
        frame.time_base = time_base
        return frame


@dataclass
class Captured:
    data: bytes
    timestamp: int
    mime: str
    at: float

    @property
    def digest(self) -> str:
        return hashlib.sha1(self.data).hexdigest()


@dataclass
class Capture:
    """Encoded frames received on one client receiver, via media.hook (no decoding)."""

    kind: str
    frames: list[Captured] = field(default_factory=list)
    ended: bool = False

    def on_frame(self, codec: RTCRtpCodecParameters, frame: JitterFrame) -> None:
        self.frames.append(Captured(frame.data, frame.timestamp, codec.mimeType, time.monotonic()))

    def on_end(self) -> None:
        self.ended = True


def decode_numbers(frames: Iterable[Captured]) -> list[int | None]:
    """Decode captured video with a plain PyAV decoder (outside aiortc) and read numbers."""
    frames = list(frames)
    if not frames:
        return []
    name = "libvpx" if frames[0].mime.lower() == "video/vp8" else "h264"
    ctx = av.CodecContext.create(name, "r")
    numbers: list[int | None] = []
    for captured in frames:
        packet = av.Packet(captured.data)
        packet.pts = captured.timestamp
        packet.time_base = fractions.Fraction(1, 90000)
        for decoded in ctx.decode(packet):
            numbers.append(read_number(decoded))
    return numbers


def prefer(transceiver: RTCRtpTransceiver, mime: str) -> None:
    caps = RTCRtpSender.getCapabilities(transceiver.kind).codecs
    transceiver.setCodecPreferences(
        [c for c in caps if c.mimeType.lower() in (mime.lower(), "video/rtx")]
    )


class Publisher:
    """aiortc publisher (WHIP style) sending numbered video and Opus silence."""

    def __init__(self, video_codec: str = "video/VP8", audio: bool = True) -> None:
        self.pc = local_peer_connection()
        self.video = NumberedVideoTrack()
        self.tracks: list[MediaStreamTrack] = [self.video]
        if audio:
            self.audio = AudioStreamTrack()
            self.pc.addTransceiver(self.audio, direction="sendonly")
            self.tracks.append(self.audio)
        video_tx = self.pc.addTransceiver(self.video, direction="sendonly")
        prefer(video_tx, video_codec)
        self.plis_received = 0

    @property
    def video_sender(self) -> RTCRtpSender:
        return next(s for s in self.pc.getSenders() if s.kind == "video")

    def count_plis(self) -> None:
        original = self.video_sender._send_keyframe

        def counting() -> None:
            self.plis_received += 1
            original()

        self.video_sender._send_keyframe = counting  # type: ignore[method-assign]

    async def publish(self, peer: Peer, prefix: str) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await peer.accept_offer(self.pc.localDescription.sdp, publish_prefix=prefix)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.count_plis()

    async def close(self) -> None:
        await self.pc.close()


class Subscriber:
    """aiortc viewer capturing encoded frames per kind."""

    def __init__(self, kinds: Iterable[str] = ("audio", "video")) -> None:
        self.pc = local_peer_connection()
        self.captures: dict[str, Capture] = {}
        for kind in kinds:
            self.pc.addTransceiver(kind, direction="recvonly")

    def hook_receivers(self) -> None:
        """Call right after setRemoteDescription (before aiortc starts the receivers)."""
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid is None or transceiver.mid in self.captures:
                continue
            sink = hook.install_receive_hook(transceiver.receiver)
            capture = Capture(transceiver.kind)
            sink.bind(capture.on_frame, capture.on_end)
            self.captures[transceiver.mid] = capture

    def capture(self, kind: str) -> Capture:
        return next(c for c in self.captures.values() if c.kind == kind)

    async def play(self, peer: Peer, track_ids: list[str]) -> float:
        """WHEP-style: recvonly offer, answered with the given tracks. Returns start time."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.hook_receivers()
        started = time.monotonic()
        answer = await peer.accept_offer(self.pc.localDescription.sdp, subscribe=track_ids)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        self.hook_receivers()
        return started

    async def close(self) -> None:
        await self.pc.close()


async def wait_for(
    predicate: Callable[[], bool], within: float = 10.0, interval: float = 0.02
) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)
