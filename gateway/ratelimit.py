"""Token-bucket rate limiting keyed by client IP or credential.

`RateLimiter` is the interface; `TokenBucketLimiter` keeps buckets in this process.
A store shared by several replicas implements the same `hit`.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float
    """Seconds until the next request would be allowed (0 when allowed)."""

    @property
    def retry_after_header(self) -> str:
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(Protocol):
    async def hit(self, key: str, cost: float = 1.0) -> Decision: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """`rate` tokens per second refill a bucket of `burst` tokens, one bucket per key."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._buckets

    def __len__(self) -> int:
        return len(self._buckets)

    def forget(self, key: str) -> None:
        """Drop `key`'s bucket (its owner is gone); a later hit starts a full bucket."""
        self._buckets.pop(key, None)

    async def hit(self, key: str, cost: float = 1.0) -> Decision:
        return self.hit_now(key, cost)

    def hit_now(self, key: str, cost: float = 1.0) -> Decision:
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        self._buckets[key] = bucket
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return Decision(True, 0.0)
        return Decision(False, (cost - bucket.tokens) / self.rate)


class Unlimited:
    """The limiter for a limit configured as 0 (disabled)."""

    async def hit(self, key: str, cost: float = 1.0) -> Decision:
        return Decision(True, 0.0)


def per_second(rate: float, burst: float) -> RateLimiter:
    return TokenBucketLimiter(rate, burst) if rate > 0 else Unlimited()


def per_minute(count: int) -> RateLimiter:
    return TokenBucketLimiter(count / 60.0, count) if count > 0 else Unlimited()


async def enforce(limiter: RateLimiter, key: str, *, message: str = "too many requests",
                  code: str | None = None) -> None:
    """Raise the API's 429 (with `Retry-After`) when `key` is over its limit."""
    from gateway.errors import ApiError

    decision = await limiter.hit(key)
    if not decision.allowed:
        raise ApiError(429, message, code=code,
                       headers={"Retry-After": decision.retry_after_header})
