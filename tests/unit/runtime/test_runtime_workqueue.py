"""The work queue's scheduler heap stays bounded however often a key is re-scheduled."""

from __future__ import annotations

import asyncio
import time

import pytest

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


def _drain(queue: WorkQueue[str]) -> list[str]:
    async def take() -> list[str]:
        taken = []
        while len(queue):
            key = await asyncio.wait_for(queue.get(), 1)
            queue.done(key)
            taken.append(key)
        return taken

    return asyncio.run(take())


def test_added_keys_go_before_the_backlog_of_a_restart() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("old-1", "old-2", "old-3"):
        queue.add_backlog(key)
    queue.add("new")  # created after the restart: not behind the 50,000 settled ones
    assert (len(queue), queue.backlog) == (4, 3)
    assert _drain(queue) == ["new", "old-1", "old-2", "old-3"]


def test_a_backlog_key_that_changes_moves_to_the_front_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("old-1", "old-2", "old-3"):
        queue.add_backlog(key)
    queue.add("old-3")
    queue.add_backlog("old-3")  # already waiting: stays where it is
    assert len(queue) == 3
    assert _drain(queue) == ["old-3", "old-1", "old-2"]


def test_a_backlog_key_being_processed_is_queued_again_after() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.add_backlog("k")
        key = await queue.get()
        queue.add_backlog("k")  # listed again while its pass runs
        queue.done(key)
        return [await asyncio.wait_for(queue.get(), 1)]

    assert asyncio.run(scenario()) == ["k"]


def test_a_worker_waiting_on_an_empty_queue_gets_a_backlog_key() -> None:
    async def scenario() -> str:
        queue: WorkQueue[str] = WorkQueue()
        waiting = asyncio.create_task(queue.get())
        await asyncio.sleep(0.01)
        queue.add_backlog("k")
        return await asyncio.wait_for(waiting, 1)

    assert asyncio.run(scenario()) == "k"


def test_a_closed_backlog_is_not_served_until_opened_while_the_front_tier_is() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        queue.close_backlog()
        queue.add_backlog("settled")
        queue.add("new")
        taken = [await queue.get()]
        queue.done(taken[0])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(queue.get(), 0.1)  # the backlog waits
        queue.open_backlog()
        taken.append(await asyncio.wait_for(queue.get(), 1))
        return taken

    assert asyncio.run(scenario()) == ["new", "settled"]
