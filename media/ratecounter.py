"""A compact `aiortc.rate.RateCounter`: two lists of ints instead of 1000 bucket objects.

aiortc gives every video receiver (publishers' and viewers' transceivers alike) a remote
bitrate estimator whose `RateCounter(1000)` allocates 1000 `RateBucket` objects. That is most
of a peer's small Python objects: about 1.3 ms of event-loop time per video m-section to
create, and after a burst of peers (e.g. abandoned offers) the freed buckets leave Python's
object arenas fragmented, so RSS does not come back. Same arithmetic, same results; the
counter's ``_total`` stays a `RateBucket`. `install()` replaces the three methods once;
`check_internals()` fails loudly if an aiortc upgrade changes them.
"""

from __future__ import annotations

import inspect

from aiortc import rate

ORIGINAL = {name: getattr(rate.RateCounter, name) for name in ("reset", "add", "_erase_old")}
_ORIGINAL_RESET = ORIGINAL["reset"]


def _reset(self: rate.RateCounter) -> None:
    self._counts = [0] * self._window_size  # type: ignore[attr-defined]
    self._values = [0] * self._window_size  # type: ignore[attr-defined]
    self._origin_index = 0
    self._origin_ms = None
    self._total = rate.RateBucket()


def _add(self: rate.RateCounter, value: int, now_ms: int) -> None:
    if self._origin_ms is None:
        self._origin_ms = now_ms
    else:
        self._erase_old(now_ms)
    index = (self._origin_index + now_ms - self._origin_ms) % self._window_size
    self._counts[index] += 1  # type: ignore[attr-defined]
    self._values[index] += value  # type: ignore[attr-defined]
    self._total.count += 1
    self._total.value += value


def _erase_old(self: rate.RateCounter, now_ms: int) -> None:
    assert self._origin_ms is not None
    counts, values = self._counts, self._values  # type: ignore[attr-defined]
    new_origin_ms = now_ms - self._window_size + 1
    while self._origin_ms < new_origin_ms:
        index = self._origin_index
        self._total.count -= counts[index]
        self._total.value -= values[index]
        counts[index] = 0
        values[index] = 0
        self._origin_index = (index + 1) % self._window_size
        self._origin_ms += 1


def check_internals() -> None:
    """Raise if aiortc's RateCounter no longer works as the replacement assumes."""
    source = inspect.getsource(rate.RateCounter)
    for needle in (
        "self._buckets = [RateBucket() for i in range(self._window_size)]",
        "self._total = RateBucket()",
        "def rate(self, now_ms: int)",
        "self._total.value / active_window_size",
    ):
        if needle not in source and rate.RateCounter.reset is _ORIGINAL_RESET:
            raise RuntimeError(f"aiortc RateCounter changed: {needle!r} not found")
    if [name for name in vars(rate.RateCounter) if not name.startswith("__")] != [
        "add", "rate", "reset", "_erase_old"
    ]:
        raise RuntimeError("aiortc RateCounter has other methods than add/rate/reset/_erase_old")


def install() -> None:
    """Idempotent."""
    if rate.RateCounter.reset is not _reset:
        check_internals()
        rate.RateCounter.reset = _reset  # type: ignore[method-assign]
        rate.RateCounter.add = _add  # type: ignore[method-assign]
        rate.RateCounter._erase_old = _erase_old  # type: ignore[method-assign]
