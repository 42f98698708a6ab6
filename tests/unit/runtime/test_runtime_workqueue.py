"""The work queue's scheduler: superseded entries do not pile up (issue 21)."""

from __future__ import annotations

import asyncio
import time

from credsmith.runtime.workqueue import WorkQueue


def test_a_key_moved_earlier_again_and_again_leaves_no_pile_of_entries() -> None:
    queue: WorkQueue[str] = WorkQueue()
    far = time.time() + 10**6
    for retry in range(10_000):  # each retry or poll schedules the key a little earlier
        queue.add_at("k", far - retry)
    assert queue.scheduled == 1
    assert queue.entries <= 2 * queue.scheduled + 64 + 1


def test_many_keys_keep_their_earliest_wake_up_through_a_compaction() -> None:
    queue: WorkQueue[str] = WorkQueue()
    far = time.time() + 10**6
    keys = [f"k{i}" for i in range(100)]
    for retry in range(50):
        for key in keys:
            queue.add_at(key, far - retry)
    assert queue.scheduled == 100
    assert queue.entries <= 2 * 100 + 64 + 1
    queue.add_at("k7", time.time() - 1)  # due now: ready at once
    assert len(queue) == 1


def test_the_earliest_entry_still_comes_due_after_a_compaction() -> None:
    async def run() -> str:
        queue: WorkQueue[str] = WorkQueue()
        far = time.time() + 10**6
        for retry in range(500):
            queue.add_at("late", far - retry)
        queue.add_at("soon", time.time() + 0.05)
        scheduler = asyncio.create_task(queue.run_scheduler())
        try:
            return await asyncio.wait_for(queue.get(), 5)
        finally:
            scheduler.cancel()

    assert asyncio.run(run()) == "soon"
