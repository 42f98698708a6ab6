"""A work queue in the style of client-go's: keys, not events.

Watch events only say *which* object to look at. Each key is queued at most once,
a key is never processed by two workers at once (a change during processing queues
it again afterwards), and `add_at` is the operator's one scheduler: due rotations,
overlap expiries and retries are entries in a single time-ordered heap, not a
timer task per object.

Two tiers: `add` (a watch event, a due time, a retry) goes before `add_backlog` (what a
restart's first listing found already settled). After a restart with 50,000 credentials,
each needs one pass that changes nothing; a credential created or changed meanwhile must
not wait behind them. A backlog key that is `add`ed moves to the front tier. The backlog
can be closed (`close_backlog`): nothing in it is taken until `open_backlog`, while the
front tier is served (the controller's passes before its caches are complete).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

# Superseded heap entries tolerated beyond as many as there are live ones.
_COMPACT_SLACK = 64


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._ready: deque[K] = deque()
        # Backlog keys in order; one moved to the front tier is left here and skipped
        # (it is no longer in _in_backlog).
        self._backlog: deque[K] = deque()
        self._in_backlog: set[K] = set()
        self._backlog_open = True
        self._queued: set[K] = set()  # waiting in either tier
        self._waiting = asyncio.Event()  # set when a key may be waiting
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        # (due wall-clock time, tiebreak, key); _due keeps each key's earliest entry.
        # An entry superseded by an earlier one for the same key stays in the heap
        # (a heap cannot drop it cheaply) and is skipped when it comes due; the heap
        # is rebuilt from _due when such stale entries outnumber the live ones.
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, float] = {}
        self._counter = itertools.count()
        self._wakeup = asyncio.Event()
        # Keys the server told us not to retry before a time (Retry-After).
        self._held: dict[K, float] = {}

    def hold_until(self, key: K, when: float) -> None:
        """No pass of `key` before `when`, whatever queues it meanwhile (a watch event
        too): the API server's Retry-After is a floor, not a hint."""
        self._held[key] = max(when, self._held.get(key, 0.0))
        self.add_at(key, when)

    def add(self, key: K) -> None:
        """Queue `key` now, unless it is already waiting (or held: then when it may)."""
        held = self._held.get(key)
        if held is not None:
            if held > time.time():
                self.add_at(key, held)
                return
            del self._held[key]
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._ready.append(key)
            self._waiting.set()
        elif key in self._in_backlog:
            self._in_backlog.discard(key)  # to the front tier
            self._ready.append(key)
            self._waiting.set()

    def add_backlog(self, key: K) -> None:
        """Queue `key` behind every key `add`ed, unless it is waiting already (or held, or
        being processed: then as `add`)."""
        if key in self._held or key in self._processing:
            self.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._in_backlog.add(key)
            self._backlog.append(key)
            self._waiting.set()

    def close_backlog(self) -> None:
        """Take no backlog key (front-tier keys still go) until `open_backlog`."""
        self._backlog_open = False

    def open_backlog(self) -> None:
        self._backlog_open = True
        if self._in_backlog:
            self._waiting.set()

    def add_at(self, key: K, when: float) -> None:
        """Queue `key` at wall-clock time `when` (seconds since the epoch)."""
        if when <= time.time() and key not in self._held:
            self.add(key)
            return
        current = self._due.get(key)
        if current is not None and current <= when:
            return  # an earlier wake-up is already scheduled; it reconciles everything due
        self._due[key] = when
        heapq.heappush(self._heap, (when, next(self._counter), key))
        self._compact()
        self._wakeup.set()

    def _compact(self) -> None:
        """Drop superseded entries once they are most of the heap. Each failure of a key
        with a far-future wake-up (a rotation) leaves one behind, so without this the
        heap grows with failures until those far times come. Rebuilding costs O(live)
        and happens only after as many stale pushes: amortised O(1) per push."""
        if len(self._heap) <= 2 * len(self._due) + _COMPACT_SLACK:
            return
        self._heap = [(when, next(self._counter), key) for key, when in self._due.items()]
        heapq.heapify(self._heap)

    def add_after(self, key: K, delay: float) -> None:
        self.add_at(key, time.time() + delay)

    async def get(self) -> K:
        while True:
            if self._ready:
                key = self._ready.popleft()
                break
            while self._backlog_open and self._backlog:
                candidate = self._backlog.popleft()
                if candidate in self._in_backlog:
                    self._in_backlog.discard(candidate)
                    key = candidate
                    break
            else:
                self._waiting.clear()
                await self._waiting.wait()
                continue
            break
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """Mark `key` processed; queue it again if it changed meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._ready) + len(self._in_backlog)

    @property
    def backlog(self) -> int:
        return len(self._in_backlog)

    @property
    def scheduled(self) -> int:
        return len(self._due)

    @property
    def heap_entries(self) -> int:
        """Entries in the scheduler's heap, superseded ones included (memory use)."""
        return len(self._heap)

    async def run_scheduler(self) -> None:
        """Move due keys to the ready queue; sleeps until the earliest due time."""
        while True:
            now = time.time()
            while self._heap and self._heap[0][0] <= now:
                when, _, key = heapq.heappop(self._heap)
                if self._due.get(key) == when:
                    del self._due[key]
                    self.add(key)
            timeout = self._heap[0][0] - now if self._heap else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)
