"""Keyframe detection on encoded data and throttled keyframe requests upstream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .detach import spawn

logger = logging.getLogger(__name__)

NAL_IDR = 5


def is_vp8_keyframe(data: bytes) -> bool:
    # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
    return len(data) > 0 and (data[0] & 0x01) == 0


def is_h264_keyframe(data: bytes) -> bool:
    """True if the Annex-B access unit contains an IDR slice (NAL type 5)."""
    pos = data.find(b"\x00\x00\x01")
    while pos != -1 and pos + 3 < len(data):
        if data[pos + 3] & 0x1F == NAL_IDR:
            return True
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False


def is_keyframe(codec: str, data: bytes) -> bool:
    mime = codec.lower()
    if mime == "video/vp8":
        return is_vp8_keyframe(data)
    if mime == "video/h264":
        return is_h264_keyframe(data)
    return not mime.startswith("video/")  # every audio frame is independently decodable


class KeyframeRequester:
    """Sends PLIs for one published track, at most one per `min_interval` seconds.

    A request inside the throttle window is not dropped: one deferred PLI is scheduled at the
    end of the window, and skipped if a keyframe arrived after the request in the meantime.
    With `periodic` set, a PLI is also sent every `periodic` seconds (like upstream Pion SFU).
    """

    def __init__(
        self,
        send_pli: Callable[[], Awaitable[bool]],
        min_interval: float = 0.5,
        periodic: float | None = None,
    ) -> None:
        self._send_pli = send_pli
        self._min_interval = min_interval
        self._periodic = periodic
        self._last_sent = -1e9
        self._last_keyframe = -1e9
        self._deferred: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic_task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0
        self.requested = 0

    def start(self) -> None:
        if self._periodic and self._periodic_task is None:
            self._periodic_task = spawn(self._run_periodic())

    def keyframe_received(self) -> None:
        self._last_keyframe = time.monotonic()

    def request(self) -> None:
        if self._closed:
            return
        self.requested += 1
        now = time.monotonic()
        wait = self._last_sent + self._min_interval - now
        if wait <= 0:
            self._send_now()
        elif self._deferred is None:
            loop = asyncio.get_running_loop()
            self._deferred = loop.call_later(wait, self._send_deferred, now)

    def _send_deferred(self, requested_at: float) -> None:
        self._deferred = None
        if self._last_keyframe < requested_at:
            self._send_now()

    def _send_now(self) -> None:
        self._last_sent = time.monotonic()
        task = spawn(self._send())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self) -> None:
        try:
            if await self._send_pli():
                self.sent += 1
        except Exception:
            logger.exception("PLI failed")

    async def _run_periodic(self) -> None:
        assert self._periodic is not None
        while True:
            await asyncio.sleep(self._periodic)
            if time.monotonic() - self._last_sent >= self._min_interval:
                self._send_now()

    async def close(self) -> None:
        self._closed = True
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        tasks = list(self._tasks)
        if self._periodic_task is not None:
            tasks.append(self._periodic_task)
            self._periodic_task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
