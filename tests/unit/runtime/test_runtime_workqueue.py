"""The work queue's scheduler heap stays bounded however often a key is re-scheduled."""

from __future__ import annotations

import asyncio
import time

from credsmith.runtime.workqueue import WorkQueue

FAR = 3600.0  # a rotation an hour away


def test_earlier_wake_ups_of_one_key_do_not_pile_up() -> None:
    async def scenario() -> tuple[int, int]:
        queue: WorkQueue[str] = WorkQueue()
        now = time.time()
        for i in range(5000):  # each one earlier than the last: each supersedes one
            queue.add_at("k", now + FAR - i * 0.1)
        return queue.heap_entries, queue.scheduled

    entries, scheduled = asyncio.run(scenario())
    assert scheduled == 1
    assert entries <= 100


def test_failures_of_a_key_with_a_far_rotation_leave_no_entries_behind() -> None:
    """Each retry supersedes the rotation's wake-up; after the retry the rotation is
    scheduled again. Without compaction, one stale far-future entry per failure."""

    async def scenario() -> tuple[int, int, list[str]]:
        queue: WorkQueue[str] = WorkQueue()
        scheduler = asyncio.create_task(queue.run_scheduler())
        queue.add_at("other", time.time() + FAR)  # a live entry that must survive
        for _ in range(300):
            queue.add_at("k", time.time() + FAR)  # the next rotation
            queue.add_after("k", 0.001)  # a failure: retry soon
            key = await asyncio.wait_for(queue.get(), 5)
            queue.done(key)
        queue.add_at("k", time.time() + FAR)
        entries, scheduled = queue.heap_entries, queue.scheduled
        queue.add_at("other", time.time())  # "other" is still scheduled and still fires
        fired = [await asyncio.wait_for(queue.get(), 5)]
        scheduler.cancel()
        return entries, scheduled, fired

    entries, scheduled, fired = asyncio.run(scenario())
    assert scheduled == 2
    assert entries <= 100
    assert fired == ["other"]


def test_compaction_keeps_every_key_due_at_its_time() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        scheduler = asyncio.create_task(queue.run_scheduler())
        start = time.time()
        for i in range(500):  # many supersessions of "a", compacted on the way
            queue.add_at("a", start + FAR - i)
        queue.add_at("a", start + 0.2)
        queue.add_at("b", start + 0.1)
        queue.add_at("c", start + FAR)  # not due during the test
        order = [await asyncio.wait_for(queue.get(), 5) for _ in range(2)]
        await asyncio.sleep(0.1)
        assert len(queue) == 0  # nothing else came due: no stale entry fired
        scheduler.cancel()
        return order

    assert asyncio.run(scenario()) == ["b", "a"]
