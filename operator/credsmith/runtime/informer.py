"""List, then watch: an in-memory cache of one kind, and a callback for each change.

The cache holds compact snapshots, not API bodies. `synced` is set once the first
listing is in the cache: workers wait for it, so a Secret not yet seen is never
taken for a missing one. After a disconnect the watch resumes from the last
resourceVersion it saw; only an expired one (410), or several failures in a row
(the version may be the problem), cost a new listing, which is then diffed
against the cache so that deletions missed meanwhile are reported.

A watch that goes silent is taken for dead: the API server sends a bookmark about
once a minute on a healthy watch, so `idle_timeout` seconds without a byte means
the connection is half-open (a proxy or NAT that stopped forwarding) and the watch
is opened again on a fresh connection.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

import aiohttp

from credsmith.runtime.backoff import exponential
from credsmith.runtime.session import ApiError, ApiSession, Gone, describe

log = logging.getLogger("credsmith.informer")

ObjectKey = tuple[str, str]  # (namespace, name)

PAGE_SIZE = 500
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0
# Failures in a row, other than 410, after which the next try lists afresh.
RELIST_AFTER = 3
# Seconds without a byte (not even a bookmark) after which a watch is dead.
IDLE_TIMEOUT = 90.0


class Versioned(Protocol):
    @property
    def resource_version(self) -> str: ...


T = TypeVar("T", bound=Versioned)

# (event type ADDED | MODIFIED | DELETED | LISTED, the raw object, its snapshot)
OnChange = Callable[[str, Mapping[str, Any], Any], None]
# An object of the first listing: found, not changed (a restart lists every object; the
# controller handles these after everything that did change).
LISTED = "LISTED"


class Informer(Generic[T]):
    def __init__(
        self,
        session: ApiSession,
        path: str,
        decode: Callable[[Mapping[str, Any]], T],
        on_change: OnChange,
        *,
        label_selector: str | None = None,
        cache: dict[ObjectKey, T] | None = None,
        namespace: str | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.session = session
        self.path = path
        self.decode = decode
        self.on_change = on_change
        self.label_selector = label_selector
        # Informers of one kind in several namespaces share one cache.
        self.cache: dict[ObjectKey, T] = {} if cache is None else cache
        self.namespace = namespace
        self.synced = asyncio.Event()
        self.idle_timeout = idle_timeout
        self._version: str | None = None
        # Liveness: when the loop last made progress or tried to (monotonic); it is
        # set while retrying too, as an unreachable API server is no reason to restart.
        self.heartbeat = time.monotonic()
        self._running = False

    def liveness_problem(self, stale_after: float) -> str | None:
        if not self._running:
            return f"{self.path}: the watch loop is not running"
        idle = time.monotonic() - self.heartbeat
        if idle > max(stale_after, self.idle_timeout * 2):
            return f"{self.path}: no progress for {idle:.0f}s"
        return None

    def _params(self) -> dict[str, str]:
        return {"labelSelector": self.label_selector} if self.label_selector else {}

    async def run(self) -> None:
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False

    async def _run(self) -> None:
        failures = 0
        while True:
            self.heartbeat = time.monotonic()
            try:
                if self._version is None:
                    await self._list()
                    self.synced.set()
                started = time.monotonic()
                await self._watch()
                failures = 0
                if time.monotonic() - started < 1:
                    await asyncio.sleep(1)  # a server ending watches at once: do not spin
            except Gone:
                log.debug("%s: resourceVersion expired; listing again", self.path)
                self._version = None
            except (ApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # Unreachable, refused, cut off or silent: keep trying, as the rest of
                # the operator waits for these events and nothing else would restart
                # them; after several failures in a row, from a new listing.
                failures += 1
                if failures >= RELIST_AFTER and self._version is not None:
                    log.info("%s: %d failures in a row; listing afresh", self.path, failures)
                    self._version = None
                delay = exponential(failures, BACKOFF_BASE, BACKOFF_CAP)
                if isinstance(exc, ApiError) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                log.warning("%s: %s; watching again in %.1fs", self.path, describe(exc), delay)
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        # Page by page into the cache, so that a page's bodies are dropped before the
        # next one is read; what was not listed at all has been deleted meanwhile.
        listed: set[ObjectKey] = set()
        first = not self.synced.is_set()
        token = ""
        while True:
            params = {**self._params(), "limit": str(PAGE_SIZE)}
            if token:
                params["continue"] = token
            try:
                page = await self.session.request("GET", self.path, params=params, timeout=60)
            except ApiError as exc:
                if exc.status == 410:  # the continue token expired: start over
                    listed, token = set(), ""
                    continue
                raise
            for obj in page.get("items") or ():
                meta = obj.get("metadata") or {}
                key = (meta.get("namespace", ""), meta.get("name", ""))
                listed.add(key)
                snapshot = self.decode(obj)
                known = self.cache.get(key)
                self.cache[key] = snapshot
                if first:
                    self.on_change(LISTED, obj, snapshot)
                elif known is None or known.resource_version != snapshot.resource_version:
                    self.on_change("ADDED" if known is None else "MODIFIED", obj, snapshot)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or ""
            if not token:
                self._version = str(metadata.get("resourceVersion", ""))
                break
        for key in [k for k in self.cache if self._mine(k) and k not in listed]:
            gone = self.cache.pop(key)
            self.on_change("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}}, gone)

    def _mine(self, key: ObjectKey) -> bool:
        return self.namespace is None or key[0] == self.namespace

    async def _watch(self) -> None:
        assert self._version is not None
        # Spread the reconnects of many informers, as client-go does.
        seconds = random.randint(240, 300)
        params = {
            **self._params(),
            "resourceVersion": self._version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        async for event in self.session.watch(self.path, params, idle_timeout=self.idle_timeout):
            self.heartbeat = time.monotonic()
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise Gone()
                raise ApiError(int(obj.get("code") or 0), str(obj.get("reason", "")),
                               str(obj.get("message", "")))  # fmt: skip
            meta = obj.get("metadata") or {}
            self._version = str(meta.get("resourceVersion") or self._version)
            if kind == "BOOKMARK":
                continue
            key = (meta.get("namespace", ""), meta.get("name", ""))
            if kind == "DELETED":
                gone = self.cache.pop(key, None)
                self.on_change("DELETED", obj, gone if gone is not None else self.decode(obj))
            elif kind in ("ADDED", "MODIFIED"):
                snapshot = self.decode(obj)
                self.cache[key] = snapshot
                self.on_change(kind, obj, snapshot)
