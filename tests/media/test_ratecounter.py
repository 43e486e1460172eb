"""media.ratecounter: the compact RateCounter computes exactly what aiortc's does."""

from __future__ import annotations

import random

from aiortc import rate

from media import ratecounter


class Original(rate.RateCounter):
    reset = ratecounter.ORIGINAL["reset"]
    add = ratecounter.ORIGINAL["add"]
    _erase_old = ratecounter.ORIGINAL["_erase_old"]


def test_same_rates_as_aiortc() -> None:
    ratecounter.install()
    ratecounter.check_internals()
    compact, original = rate.RateCounter(1000, 8000), Original(1000, 8000)
    assert not hasattr(compact, "_buckets")
    chooser = random.Random(13)
    now = 1_000_000
    for _ in range(20_000):
        now += chooser.choice([0, 1, 3, 20, 333, 999, 1000, 1001, 5000])
        size = chooser.randint(0, 1500)
        compact.add(size, now)
        original.add(size, now)
        probe = now + chooser.choice([0, 1, 500, 2000])
        assert compact.rate(probe) == original.rate(probe)
    compact.reset()
    original.reset()
    assert compact.rate(now) == original.rate(now) is None
