"""Retry delays: exponential per key with jitter, an overall rate limit, Retry-After."""

from __future__ import annotations

import asyncio
import time

from credsmith.runtime.backoff import RetryLimiter, TokenBucket, exponential
from credsmith.runtime.eventlimit import EventLimiter
from credsmith.runtime.workqueue import WorkQueue


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_up_to_the_cap_with_equal_jitter() -> None:
    lows = [exponential(n, 0.5, 30, rand=lambda: 0.0) for n in range(1, 10)]
    highs = [exponential(n, 0.5, 30, rand=lambda: 1.0) for n in range(1, 10)]
    assert highs == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert lows == [h / 2 for h in highs]  # jitter spreads over the upper half
    assert exponential(10_000, 0.5, 30) <= 30  # no overflow however long it fails


def test_each_key_backs_off_on_its_own_and_success_resets_it() -> None:
    limiter: RetryLimiter[str] = RetryLimiter(base=1, cap=60, rand=lambda: 1.0, clock=Clock())
    assert [limiter.when("a") for _ in range(4)] == [1, 2, 4, 8]
    assert limiter.when("b") == 1
    limiter.forget("a")
    assert limiter.when("a") == 1
    assert limiter.failures("b") == 1


def test_retry_after_is_a_floor_and_a_lower_cap_bounds_rechecks() -> None:
    limiter: RetryLimiter[str] = RetryLimiter(base=1, cap=60, rand=lambda: 1.0, clock=Clock())
    assert limiter.when("a", floor=7) == 7
    for _ in range(10):
        delay = limiter.when("a", cap=16)
    assert delay == 16
    assert limiter.when("a", floor=40, cap=16) == 40  # the server's word wins


def test_the_overall_rate_limit_spreads_a_burst_of_failures() -> None:
    clock = Clock()
    limiter: RetryLimiter[int] = RetryLimiter(
        base=0.001, cap=0.001, rate=10, burst=5, rand=lambda: 1.0, clock=clock
    )
    delays = [limiter.when(key) for key in range(25)]
    assert delays[:5] == [0.001] * 5  # the burst goes at once
    assert delays[5:] == [(i + 1) / 10 for i in range(20)]  # then 10 a second, in order
    clock.now = 100  # the bucket refills
    assert limiter.when(99) == 0.001


def test_token_bucket_refills_no_further_than_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=1, burst=2, clock=clock)
    clock.now = 1000
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 1]


def test_events_go_out_once_per_reason_per_key_per_interval() -> None:
    clock = Clock()
    limiter = EventLimiter(interval=600, clock=clock)
    assert limiter.allow("a", "QuotaExceeded")
    assert not limiter.allow("a", "QuotaExceeded")
    assert limiter.allow("a", "SecretWriteDenied")
    assert limiter.allow("b", "QuotaExceeded")
    clock.now = 599
    assert not limiter.allow("a", "QuotaExceeded")
    clock.now = 601
    assert limiter.allow("a", "QuotaExceeded")


def test_a_held_key_is_not_taken_before_its_time_whatever_queues_it() -> None:
    async def scenario() -> tuple[float, int]:
        queue: WorkQueue[str] = WorkQueue()
        scheduler = asyncio.create_task(queue.run_scheduler())
        key = await asyncio.wait_for(_first(queue, "k"), 1)
        started = time.time()
        queue.hold_until(key, started + 0.5)  # e.g. Retry-After on a 429
        queue.done(key)
        queue.add(key)  # a watch event meanwhile
        queue.add_at(key, started)  # a rotation due now
        assert len(queue) == 0
        taken = await asyncio.wait_for(queue.get(), 5)
        waited = time.time() - started
        queue.done(taken)
        queue.add(taken)  # the hold is over: at once
        again = len(queue)
        scheduler.cancel()
        return waited, again

    waited, again = asyncio.run(scenario())
    assert waited >= 0.45
    assert again == 1


async def _first(queue: WorkQueue[str], key: str) -> str:
    queue.add(key)
    taken: str = await queue.get()
    return taken


def test_event_limiter_forgets_old_keys_without_a_prune_per_call() -> None:
    """Past 10,000 remembered keys the old ones are forgotten; with every key recent
    (a refusal across 30,000 resources) the map is not rebuilt on each call."""
    clock = Clock()
    limiter = EventLimiter(interval=600, clock=clock)
    prunes = 0
    prune = limiter._prune

    def counted(now: float) -> None:
        nonlocal prunes
        prunes += 1
        prune(now)

    limiter._prune = counted  # type: ignore[method-assign]
    for i in range(30_000):
        assert limiter.allow(i, "QuotaExceeded")
    assert prunes <= 3  # at 10,001, 20,003: doubling, not one per call past 10,000
    assert not limiter.allow(29_999, "QuotaExceeded")  # recent keys are all kept,
    assert not limiter.allow(0, "QuotaExceeded")  # those from before a prune too
    clock.now = 700
    for i in range(30_000, 60_001):
        limiter.allow(i, "QuotaExceeded")
    assert len(limiter._last) < 40_000  # the 30,000 from before the interval are gone
    assert limiter.allow(0, "QuotaExceeded")
