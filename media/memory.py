"""Give freed memory back to the operating system after peers close.

Each peer allocates a lot of small, short-lived native and Python objects (certificates and
SSL contexts, SRTP sessions, receivers with bitrate estimators). After a burst of peers has
closed (e.g. offers whose ICE never completed) glibc keeps the freed pages in its heaps and
the process's RSS stays at its peak. aiortc's objects form reference cycles, so they are
freed by the cyclic GC; after that `malloc_trim(0)` (in a worker thread) returns the free
pages. Both run a little after the first close of a burst, at most every `min_interval` s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

from .detach import spawn

logger = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on a C library without it (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryTrimmer:
    """Call `released()` after freeing something large: a GC pass and a trim follow `delay` s
    later (later still if the previous one was less than `min_interval` s ago)."""

    def __init__(self, delay: float = 2.0, min_interval: float = 10.0) -> None:
        self._delay = delay
        self._min_interval = min_interval
        self._trim = _malloc_trim()
        self._last = -min_interval
        self._task: asyncio.Task[None] | None = None
        self.trims = 0

    def released(self) -> None:
        if self._trim is None or (self._task is not None and not self._task.done()):
            return
        now = time.monotonic()
        wait = max(self._delay, self._last + self._min_interval - now)
        self._task = spawn(self._run(wait))

    async def _run(self, wait: float) -> None:
        await asyncio.sleep(wait)
        assert self._trim is not None
        gc.collect()
        await asyncio.to_thread(self._trim, 0)
        self._last = time.monotonic()
        self.trims += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
