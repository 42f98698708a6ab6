"""Events for repeated failures, bounded: one per reason per resource per interval.

A refusal is re-checked every few seconds for as long as it lasts; an Event for each
check would flood the namespace's Events (and etcd). Status carries the current
state; the Event marks that it happened, again after `interval` if it still does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

_PRUNE_FLOOR = 10_000  # entries kept before the first prune


class EventLimiter:
    def __init__(
        self, interval: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple[Hashable, str], float] = {}
        self._prune_above = _PRUNE_FLOOR

    def allow(self, key: Hashable, reason: str) -> bool:
        """True (and remembered) if no Event of `reason` for `key` went out lately."""
        now = self._clock()
        last = self._last.get((key, reason))
        if last is not None and now - last < self.interval:
            return False
        self._last[(key, reason)] = now
        if len(self._last) > self._prune_above:
            self._prune(now)
        return True

    def _prune(self, now: float) -> None:
        """Forget the old ones rather than grow without end. The next prune waits until
        the map has doubled, so that when most entries are recent (a refusal across tens
        of thousands of resources) each call does not pay O(entries) again: amortised O(1)."""
        self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        self._prune_above = max(_PRUNE_FLOOR, 2 * len(self._last))
