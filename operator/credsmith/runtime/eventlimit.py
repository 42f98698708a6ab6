"""Events for repeated failures, bounded: one per reason per resource per interval.

A refusal is re-checked every few seconds for as long as it lasts; an Event for each
check would flood the namespace's Events (and etcd). Status carries the current
state; the Event marks that it happened, again after `interval` if it still does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class EventLimiter:
    def __init__(
        self, interval: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[Hashable, str], float] = {}

    def allow(self, key: Hashable, reason: str) -> bool:
        """True (and remembered) if no Event of `reason` for `key` went out lately."""
        now = self._clock()
        last = self._last.get((key, reason))
        if last is not None and now - last < self.interval:
            return False
        self._last[(key, reason)] = now
        if len(self._last) > 10_000:  # forget the old ones rather than grow without end
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        return True
