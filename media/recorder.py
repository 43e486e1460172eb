"""Record one track's encoded frames to a file with PyAV, without transcoding.

VP8/VP9 -> IVF, Opus -> Ogg, H.264 -> fragmented MP4. All three stay playable when the
process dies mid-recording: IVF and Ogg are streamable, and the MP4 is written as
``empty_moov`` + fragments (``frag_keyframe``, at most one second each), so a crash
loses at most the fragment in progress; ``flush_packets`` pushes every packet to the
OS so a killed process loses nothing already muxed.

Muxing runs on one writer thread per recorder fed by a bounded queue: ``write()`` is
a non-blocking ``put_nowait`` on the event loop, and disk latency (slow volumes,
fsync-happy filesystems, the file open and the MP4 header) never stalls media
forwarding. If the disk cannot keep up the queue fills and frames are dropped (video
then resumes at the next keyframe) instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import re
import threading
import time
import weakref
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import av
from av.container import OutputContainer

logger = logging.getLogger(__name__)


class EncodedFrame(Protocol):
    data: bytes
    timestamp: int  # RTP clock
    codec: str  # 'video/VP8', 'video/VP9', 'video/H264', 'audio/opus'
    keyframe: bool
    clock_rate: int


@dataclass(frozen=True)
class _Format:
    extension: str
    container: str
    codec: str
    video: bool


FORMATS = {
    "video/vp8": _Format("ivf", "ivf", "vp8", True),
    "video/vp9": _Format("ivf", "ivf", "vp9", True),
    "video/h264": _Format("mp4", "mp4", "h264", True),
    "audio/opus": _Format("ogg", "ogg", "opus", False),
}
CONTAINER_OPTIONS = {
    "mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"},
    "ogg": {"page_duration": "200000"},  # Ogg pages of <= 200 ms
    "ivf": {},
}
QUEUE_FRAMES = 512  # ~5 s of 30 fps video + 50 pps audio
_WRAP = 1 << 32
_STOP = object()


def recording_path(directory: Path, room: str, track_id: str, extension: str) -> Path:
    """Create and return a new, empty ``{room}_{track_id}_{unix}.{ext}``: the file is
    reserved now so two recordings of a track in the same second cannot collide
    (the later one takes the next free second)."""

    def safe(part: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]", "_", part) or "_"

    directory.mkdir(parents=True, exist_ok=True)
    unix = int(time.time())
    while True:
        path = directory / f"{safe(room)}_{safe(track_id)}_{unix}.{extension}"
        try:
            with path.open("xb"):
                return path
        except FileExistsError:
            unix += 1


def opus_samples(packet: bytes) -> int:
    """Duration at 48 kHz of one Opus packet, from its TOC byte (RFC 6716 section 3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        frame = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = packet[1] & 0x3F if len(packet) > 1 else 0
    return frame * count


def has_sps_pps(annexb: bytes) -> bool:
    """Whether an Annex-B H.264 access unit carries both an SPS (7) and a PPS (8)."""
    types = {annexb[i + 3] & 0x1F for i in _start_codes(annexb) if i + 3 < len(annexb)}
    return {7, 8} <= types


def _start_codes(data: bytes) -> list[int]:
    """Offsets of the 3-byte start codes 00 00 01 (the 4-byte form ends with one)."""
    found, i = [], data.find(b"\x00\x00\x01")
    while i != -1:
        found.append(i)
        i = data.find(b"\x00\x00\x01", i + 3)
    return found


class _Timeline:
    """RTP timestamps -> monotonic pts from 0, across 32-bit wraparound."""

    def __init__(self) -> None:
        self._last_rtp: int | None = None
        self._unwrapped = 0
        self._last_pts = -1

    def pts(self, rtp_timestamp: int) -> int:
        if self._last_rtp is not None:
            delta = (rtp_timestamp - self._last_rtp) % _WRAP
            if delta >= _WRAP // 2:  # reordered or repeated: step back
                delta -= _WRAP
            self._unwrapped += delta
        self._last_rtp = rtp_timestamp
        pts = max(self._unwrapped, self._last_pts + 1)  # muxers need increasing dts
        self._last_pts = pts
        return pts


class Recorder:
    """Records one track to ``{room}_{track_id}_{unix}.{ext}`` in ``directory``."""

    def __init__(
        self,
        directory: str | Path,
        room: str,
        track_id: str,
        codec: str,
        clock_rate: int,
        *,
        queue_frames: int = QUEUE_FRAMES,
    ) -> None:
        fmt = FORMATS.get(codec.lower())
        if fmt is None:
            raise ValueError(f"cannot record codec {codec!r}; supported: {sorted(FORMATS)}")
        self.codec = codec
        self.clock_rate = clock_rate
        self.path = recording_path(Path(directory), room, track_id, fmt.extension)
        self.frames_written = 0
        self.frames_dropped = 0
        self._format = fmt
        self._started = False  # first keyframe seen (video) / first frame (audio)
        self._resync = False  # dropped video: wait for a keyframe
        self._closed = False
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_frames)
        self._writer = _Writer(self.path, fmt, clock_rate, self._queue, self)
        self._thread = threading.Thread(
            target=self._writer.run, name=f"recorder-{self.path.name}", daemon=True
        )
        self._thread.start()
        # Finalise the file even if the owner forgets close() (e.g. a crashed peer task).
        self._finalizer = weakref.finalize(self, _request_stop, self._queue)

    @property
    def error(self) -> BaseException | None:
        return self._writer.error

    def write(self, frame: EncodedFrame) -> bool:
        """Queue ``frame``; never blocks. Returns False if it was not queued."""
        if self._closed or self._writer.error is not None:
            return False
        if self._format.video and (not self._started or self._resync):
            if not frame.keyframe:
                return False
            if not self._started and self._format.codec == "h264" and not has_sps_pps(frame.data):
                return False  # the MP4 header needs SPS/PPS: wait for a keyframe that has them
        try:
            self._queue.put_nowait((bytes(frame.data), frame.timestamp, frame.keyframe))
        except queue.Full:
            self.frames_dropped += 1
            self._resync = self._format.video
            return False
        self._started = True
        self._resync = False
        return True

    def sync(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is muxed and handed to the OS."""
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> Path:
        """Finalise the file (blocking; use ``aclose`` from the event loop)."""
        if not self._closed:
            self._closed = True
            self._finalizer()
        self._thread.join(timeout)
        return self.path

    async def aclose(self) -> Path:
        return await asyncio.to_thread(self.close)


async def record(frames: AsyncIterable[EncodedFrame], recorder: Recorder) -> Path:
    """Feed ``frames`` (e.g. a ``media.forward.Tap``) into ``recorder`` until they end or
    the task is cancelled, then finalise the file."""
    try:
        async for frame in frames:
            recorder.write(frame)
    finally:
        await recorder.aclose()
    return recorder.path


def _request_stop(q: queue.Queue[object]) -> None:
    while True:  # the stop marker must get in even when the queue is full
        try:
            q.put_nowait(_STOP)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                q.get_nowait()


class _Writer:
    """Owns the PyAV container; only ever touched from the writer thread."""

    def __init__(
        self,
        path: Path,
        fmt: _Format,
        clock_rate: int,
        q: queue.Queue[object],
        owner: Recorder,
    ) -> None:
        self.path = path
        self.fmt = fmt
        self.time_base = fractions.Fraction(1, clock_rate)
        self.queue = q
        self.error: BaseException | None = None
        self._owner = weakref.ref(owner)
        self._container: OutputContainer | None = None
        self._stream: av.stream.Stream | None = None
        self._timeline = _Timeline()

    def run(self) -> None:
        try:
            while (item := self.queue.get()) is not _STOP:
                if isinstance(item, threading.Event):
                    item.set()
                elif self.error is None:
                    try:
                        self._mux(*item)  # type: ignore[misc]
                    except Exception as exc:  # stop recording, keep draining until _STOP
                        self.error = exc
                        logger.exception("recorder %s failed", self.path)
        finally:
            self._close()

    def _open(self, first: bytes) -> None:
        container = av.open(
            str(self.path),
            "w",
            format=self.fmt.container,
            options=CONTAINER_OPTIONS[self.fmt.container] | {"flush_packets": "1"},
        )
        if self.fmt.video:
            width, height = _dimensions(self.fmt.codec, first)
            stream = container.add_mux_stream(self.fmt.codec, width=width, height=height)
        else:
            # An (unused) libopus encoder context makes PyAV write the OpusHead that Ogg needs.
            stream = container.add_stream("libopus", rate=48000, layout="stereo")
        stream.time_base = self.time_base
        self._container, self._stream = container, stream

    def _mux(self, data: bytes, rtp_timestamp: int, keyframe: bool) -> None:
        if self._container is None:
            self._open(data)
        packet = av.Packet(data)
        packet.pts = packet.dts = self._timeline.pts(rtp_timestamp)
        packet.time_base = self.time_base
        if not self.fmt.video:
            packet.duration = opus_samples(data) * self.time_base.denominator // 48000
        packet.is_keyframe = keyframe or not self.fmt.video
        packet.stream = self._stream
        assert self._container is not None
        self._container.mux(packet)
        owner = self._owner()
        if owner is not None:
            owner.frames_written += 1

    def _close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:
                self.error = self.error or exc
                logger.warning("recorder %s: closing failed: %s", self.path, exc)
            self._container = None


def _dimensions(codec: str, keyframe: bytes) -> tuple[int, int]:
    """Decode the first keyframe once to learn the picture size (IVF/MP4 headers)."""
    try:
        ctx = av.CodecContext.create(codec, "r")
        frames = ctx.decode(av.Packet(keyframe)) + ctx.decode(None)
        if frames:
            return frames[0].width, frames[0].height
    except av.FFmpegError as exc:
        logger.warning("could not decode first %s keyframe for its size: %s", codec, exc)
    return 0, 0
