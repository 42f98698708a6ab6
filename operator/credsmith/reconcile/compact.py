"""Compact copies of decoded JSON for the informer caches: one shared copy of each string.

Every watch event is parsed on its own, so each cached object brings its own copy of every
key ("lastTransitionTime", "credsmith.io/state-mac", ...) and of every repeated value (its
name in four places, "True", "720h", the timestamps of a bulk). Strings are most of what a
cached credential costs; sharing them makes a credential about half the size.

The pool is not sys.intern: interned strings are immortal from Python 3.12, and a cache of
50,000 credentials that rotate would then grow without end. It drops the strings nothing
else refers to any more whenever it has doubled since it last did (amortised O(1)).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from typing import Any

# Longer strings are rarely shared (a message, a document): kept as they are.
MAX_POOLED = 256
_MIN_SWEEP = 4096


class StringPool:
    def __init__(self) -> None:
        self._strings: dict[str, str] = {}
        self._sweep_at = _MIN_SWEEP
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._strings)

    def get(self, value: str) -> str:
        return self._strings.get(value) or self._add(value)

    def _add(self, value: str) -> str:
        if len(value) > MAX_POOLED:
            return value
        pooled = self._strings.setdefault(value, value)
        if len(self._strings) >= self._sweep_at:
            self._sweep()
        return pooled

    def compact(self, value: Any) -> Any:
        """`value` (decoded JSON) rebuilt with pooled strings; dicts and lists stay dicts
        and lists (the reconcilers test for them), so the copy equals the original."""
        # On the path of every string of every cached object, so written for speed: the
        # pool's dict looked up inline, containers recursed into, other values as they are.
        kind = type(value)
        if kind is dict:
            strings, add, again = self._strings, self._add, self.compact
            out = {}
            for k, v in value.items():
                if type(k) is str:
                    k = strings.get(k) or add(k)
                kind = type(v)
                if kind is str:
                    v = strings.get(v) or add(v)
                elif kind is dict or kind is list:
                    v = again(v)
                out[k] = v
            return out
        if kind is list:
            return [self.compact(v) for v in value]
        if kind is str:
            return self.get(value)
        if isinstance(value, Mapping):  # not from json.loads, but accepted all the same
            return self.compact(dict(value))
        return value

    def _sweep(self) -> None:
        with self._lock:
            if len(self._strings) < self._sweep_at:
                return  # another thread swept meanwhile
            self._strings = _referenced(self._strings)
            self._sweep_at = max(_MIN_SWEEP, 2 * len(self._strings))


def _referenced(strings: dict[str, str]) -> dict[str, str]:
    """The pooled strings something else still refers to."""
    kept = {}
    for s in strings:
        if sys.getrefcount(s) > _UNREFERENCED:
            kept[s] = s
    return kept


def _unreferenced_count() -> int:
    """What getrefcount says in `_referenced`'s loop of a string only the pool holds (its
    key and value, the loop variable, the argument), measured rather than assumed."""
    probe = "".join(("pool-", str(id(object()))))
    strings = {probe: probe}
    del probe
    count = 0
    for s in strings:
        count = sys.getrefcount(s)
    return count


_UNREFERENCED = _unreferenced_count()
POOL = StringPool()


def compact(value: Any, pool: StringPool = POOL) -> Any:
    """`value` (decoded JSON) with pooled strings: see StringPool.compact."""
    return pool.compact(value)
