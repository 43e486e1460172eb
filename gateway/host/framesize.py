"""Frame dimensions of published video tracks, read from their first keyframe.

The core forwards without decoding; a VP8 keyframe header and an H.264 SPS carry the
size, so one short-lived tap per track is enough to know it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from media import MediaCore, MediaEvent, TrackEnded, TrackStarted, UnknownTrack
from media.detach import spawn

log = logging.getLogger("mediagate.host")


def vp8_size(frame: bytes) -> tuple[int, int] | None:
    if len(frame) < 10 or frame[0] & 1 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(frame[6:8], "little") & 0x3FFF
    height = int.from_bytes(frame[8:10], "little") & 0x3FFF
    return width, height


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def bit(self) -> int:
        byte = self.data[self.pos >> 3]
        value = (byte >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return value

    def bits(self, n: int) -> int:
        value = 0
        for _ in range(n):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad exp-golomb")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _nal_units(data: bytes) -> list[bytes]:
    units, i, n = [], 0, len(data)
    starts: list[int] = []
    while i + 3 <= n:
        if data[i:i + 3] == b"\x00\x00\x01":
            starts.append(i + 3)
            i += 3
        else:
            i += 1
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else n
        units.append(data[start:end].rstrip(b"\x00"))
    return units


def h264_size(frame: bytes) -> tuple[int, int] | None:
    for nal in _nal_units(frame):
        if not nal or nal[0] & 0x1F != 7:
            continue
        rbsp = nal[1:].replace(b"\x00\x00\x03", b"\x00\x00")
        try:
            bits = _Bits(rbsp)
            profile = bits.bits(8)
            bits.bits(16)
            bits.ue()
            chroma = 1
            if profile in (100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135):
                chroma = bits.ue()
                if chroma == 3:
                    bits.bit()
                bits.ue()
                bits.ue()
                bits.bit()
                if bits.bit():
                    for index in range(8 if chroma != 3 else 12):
                        if bits.bit():
                            last, nxt = 8, 8
                            for _ in range(16 if index < 6 else 64):
                                if nxt:
                                    nxt = (last + bits.se()) % 256
                                last = nxt or last
            bits.ue()
            poc_type = bits.ue()
            if poc_type == 0:
                bits.ue()
            elif poc_type == 1:
                bits.bit()
                bits.se()
                bits.se()
                for _ in range(bits.ue()):
                    bits.se()
            bits.ue()
            bits.bit()
            width_mbs = bits.ue() + 1
            height_units = bits.ue() + 1
            frame_mbs_only = bits.bit()
            if not frame_mbs_only:
                bits.bit()
            bits.bit()
            width, height = width_mbs * 16, height_units * 16 * (2 - frame_mbs_only)
            if bits.bit():
                left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
                crop_x = 2 if chroma in (1, 2) else 1
                crop_y = (2 if chroma == 1 else 1) * (2 - frame_mbs_only)
                width -= (left + right) * crop_x
                height -= (top + bottom) * crop_y
            return width, height
        except (IndexError, ValueError):
            return None
    return None


def frame_size(codec: str, frame: bytes) -> tuple[int, int] | None:
    codec = codec.lower()
    if codec == "video/vp8":
        return vp8_size(frame)
    if codec == "video/h264":
        return h264_size(frame)
    return None


class FrameSizes:
    """Listens to the core and remembers each video track's size once its keyframe arrives."""

    def __init__(self, media: MediaCore) -> None:
        self.media = media
        self.sizes: dict[str, tuple[int, int]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._remove = media.add_listener(self._on_event)

    def size_of(self, track_id: str) -> tuple[int, int]:
        return self.sizes.get(track_id, (0, 0))

    def _on_event(self, event: MediaEvent) -> None:
        if isinstance(event, TrackStarted) and event.track.kind == "video":
            track_id = event.track.track_id
            if track_id not in self._tasks:
                self._tasks[track_id] = spawn(self._probe(track_id, event.track.codec))
        elif isinstance(event, TrackEnded):
            self.sizes.pop(event.track.track_id, None)
            task = self._tasks.pop(event.track.track_id, None)
            if task is not None:
                task.cancel()

    async def _probe(self, track_id: str, codec: str) -> None:
        try:
            tap = self.media.tap(track_id, max_frames=4)
        except UnknownTrack:
            return
        try:
            async with asyncio.timeout(20):
                async for frame in tap:
                    size = frame_size(codec, frame.data) if frame.keyframe else None
                    if size is not None:
                        self.sizes[track_id] = size
                        return
        except TimeoutError:
            pass
        finally:
            tap.close()

    async def close(self) -> None:
        self._remove()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
