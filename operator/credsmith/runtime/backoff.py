"""Retry delays: per-key exponential backoff with jitter, under an overall rate limit.

As client-go's default controller rate limiter (the larger of a per-item exponential
delay and a token bucket's), with jitter so that keys failing together do not retry
together, and with a floor from the server (Retry-After on a 429) that no retry may
undercut.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


def exponential(
    failures: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """The delay after `failures` consecutive failures (1 for the first): base * 2^(n-1),
    at most `cap`, then "equal jitter": uniformly in [d/2, d]. Never zero, never over
    the cap, and two keys that failed together spread over half the interval."""
    delay: float = min(cap, base * 2.0 ** max(0, min(failures - 1, 30)))
    return delay / 2 + delay / 2 * rand()


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `reserve()` returns how long
    the caller must wait for its token (tokens are taken in advance, as Go's rate
    package does, so that many callers at once queue up in order)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def reserve(self) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class RetryLimiter(Generic[K]):
    """How long a failed key waits before its next try."""

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 30.0,
        rate: float = 10.0,
        burst: int = 100,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.cap = cap
        self._rand = rand
        self._bucket = TokenBucket(rate, burst, clock)
        self._failures: dict[K, int] = {}

    def when(self, key: K, floor: float = 0.0, cap: float | None = None) -> float:
        """Record one more failure of `key`; return its delay in seconds. `floor` is
        the server's Retry-After; `cap` lowers the per-key maximum (for refusals that
        must be re-checked soon, as their cause may go without any watch event)."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        per_key = exponential(failures, self.base, min(self.cap, cap or self.cap), self._rand)
        return max(floor, per_key, self._bucket.reserve())

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        """The key succeeded (or went away): its next failure starts from the base."""
        self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
