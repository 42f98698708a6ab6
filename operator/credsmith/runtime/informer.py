"""List, then watch: an in-memory cache of one kind, and a callback for each change.

The cache holds compact snapshots, not API bodies. `synced` is set once the first
listing is in the cache: until then a Secret not in it may just not be listed yet,
never taken for a missing one (the controller asks the API server instead). After a
disconnect the watch resumes from the last resourceVersion it saw; only an expired one
(410), or several failures in a row (the version may be the problem), cost a new
listing, which is then diffed against the cache so that deletions missed meanwhile are
reported.

A listing is a streaming watch (`sendInitialEvents`, Kubernetes' WatchList): the API
server sends every object from its watch cache as an ADDED event, then a bookmark that
marks the end of the initial state, then the changes on the same stream. Measured on
the local control plane (1.36) with 3000 credentials, under load: 0.6-1.9 s against
1.4-3.4 s for pages of 500 (which it reads from etcd and decodes again), and objects
arrive one at a time rather than a page at a time. A server that refuses the request
(the feature gate off, or before 1.27: 422 on `sendInitialEvents` or on
`resourceVersionMatch` for a watch) is listed by pages from then on. A bookmark without
the end mark amid the initial state is only a bookmark (as client-go's reflector takes
it): the listing goes on; so does an ERROR event amid it (a cut: streamed again).

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
# The annotation of the bookmark that ends a streaming listing's initial state.
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


class StreamingRefused(Exception):
    """The server does not stream listings (WatchList): list by pages."""


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
        stream_listing: bool = True,
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
        self.stream_listing = stream_listing
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
        cut_listings = 0  # streamed listings cut by a 410 before their end, in a row
        while True:
            self.heartbeat = time.monotonic()
            try:
                started = time.monotonic()
                if self._version is None and self.stream_listing:
                    await self._watch(listing=True)  # then the changes, on the same stream
                else:
                    if self._version is None:
                        await self._list()
                        self.synced.set()
                        started = time.monotonic()
                    await self._watch()
                failures = cut_listings = 0
                if time.monotonic() - started < 1:
                    await asyncio.sleep(1)  # a server ending watches at once: do not spin
            except StreamingRefused as exc:
                log.info("%s: no streaming listing (%s); listing by pages", self.path, exc)
                self.stream_listing = False
            except Gone:
                log.debug("%s: resourceVersion expired; listing again", self.path)
                if self._version is not None:
                    cut_listings = 0  # a watch resumed from an old version: list at once
                else:
                    # A listing cut before its end: again at once would send every object
                    # again, in a busy loop if the server keeps doing so.
                    cut_listings += 1
                    await asyncio.sleep(exponential(cut_listings, BACKOFF_BASE, BACKOFF_CAP))
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
                self._listed(obj, listed, first)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or ""
            if not token:
                if not metadata.get("resourceVersion"):  # no version to watch from
                    raise ValueError("a listing without a resourceVersion")
                self._version = str(metadata["resourceVersion"])
                break
        self._listing_ended(listed)

    def _listed(self, obj: Mapping[str, Any], listed: set[ObjectKey], first: bool) -> None:
        """One object of a listing: into the cache; reported as found (the first listing)
        or as changed since the cache had it (a listing again, after a 410)."""
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

    def _listing_ended(self, listed: set[ObjectKey]) -> None:
        """What the cache holds and the listing did not has been deleted meanwhile."""
        for key in [k for k in self.cache if self._mine(k) and k not in listed]:
            gone = self.cache.pop(key)
            self.on_change("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}}, gone)

    def _mine(self, key: ObjectKey) -> bool:
        return self.namespace is None or key[0] == self.namespace

    async def _watch(self, listing: bool = False) -> None:
        """Watch from the last version seen; or, `listing`, from the server's current
        state: its objects first (each as it arrives), the end bookmark, then changes."""
        # Spread the reconnects of many informers, as client-go does.
        seconds = random.randint(240, 300)
        params = {**self._params(), "allowWatchBookmarks": "true", "timeoutSeconds": str(seconds)}
        if listing:
            params |= {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}
        else:
            assert self._version is not None
            params["resourceVersion"] = self._version
        listed: set[ObjectKey] = set()
        first = not self.synced.is_set()
        answered = False  # the request was taken: an error now is the stream's, not a refusal
        try:
            events = self.session.watch(self.path, params, idle_timeout=self.idle_timeout)
            async for event in events:
                answered = True
                self.heartbeat = time.monotonic()
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise ApiError(int(obj.get("code") or 0), str(obj.get("reason", "")),
                                   str(obj.get("message", "")))  # fmt: skip
                meta = obj.get("metadata") or {}
                key = (meta.get("namespace", ""), meta.get("name", ""))
                if listing:
                    # No version to resume from until the initial state has ended: a stream
                    # cut before that is a listing to make again. (The API server sends
                    # only ADDED before the end mark; whatever else comes sets no version.)
                    if kind in ("ADDED", "MODIFIED"):
                        self._listed(obj, listed, first)
                        continue
                    if kind == "BOOKMARK":
                        if (meta.get("annotations") or {}).get(INITIAL_EVENTS_END) != "true":
                            # A bookmark while a long initial state streams, as client-go's
                            # reflector takes it: no end, and no version to resume from.
                            continue
                        if not meta.get("resourceVersion"):
                            # No version to watch from: stream the listing again.
                            raise ValueError("the end of a listing without a resourceVersion")
                        self._listing_ended(listed)
                        listing = False
                        self._version = str(meta["resourceVersion"])
                        self.synced.set()
                        continue
                    listed.discard(key)  # DELETED: reported below
                else:
                    self._version = str(meta.get("resourceVersion") or self._version)
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    gone = self.cache.pop(key, None)
                    self.on_change("DELETED", obj, gone if gone is not None else self.decode(obj))
                elif kind in ("ADDED", "MODIFIED"):
                    snapshot = self.decode(obj)
                    self.cache[key] = snapshot
                    self.on_change(kind, obj, snapshot)
        except ApiError as exc:
            # Refused as a request (the WatchList feature gate off: 422 Invalid, or 400):
            # not a failure to back off from. An ERROR event amid the stream is a cut.
            if listing and not answered and exc.status in (400, 422):
                raise StreamingRefused(f"{exc.status} {exc.reason}") from None
            raise
