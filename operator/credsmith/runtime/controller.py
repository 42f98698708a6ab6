"""The control loop: watch events become queued keys; workers reconcile a key at a time.

Informers list and watch the resources and the Secrets we manage (filtered
server-side by label) into in-memory caches. Workers start at once, but until every
cache holds its first listing they take only the passes that read nothing but their
resource and its Secret (runtime/early.py), and a Secret not in the cache yet is asked
of the API server: a worker never mistakes a Secret it has not seen yet for a missing
one. Other keys wait for the listings, and so does the backlog (what the listing found
settled). Nothing is persisted on the objects but their status and Secrets: no
annotations of the operator's own on resources, no finalizers. What a credential's pass
does is runtime/credential_pass.py; the writes and what they remember, runtime/writes.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from credsmith import GROUP, VERSION
from credsmith.reconcile.secret_state import OWNER as OWNER_ANNOTATION
from credsmith.reconcile.shared_rollouts import DEFAULT_WINDOW
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey
from credsmith.runtime.backlog import settled
from credsmith.runtime.backoff import RetryLimiter
from credsmith.runtime.consumers import Consumers
from credsmith.runtime.credential_pass import CredentialPass
from credsmith.runtime.documents import DOCUMENT_KINDS, Documents
from credsmith.runtime.early import passes_before_sync
from credsmith.runtime.eventlimit import EventLimiter
from credsmith.runtime.failures import plan_retry
from credsmith.runtime.informer import LISTED, Informer, ObjectKey
from credsmith.runtime.kinds import Key, KindConfig
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.provider_kinds import PROVIDER_KINDS, ProviderOptions
from credsmith.runtime.providers import Providers
from credsmith.runtime.refusals import (
    Refusal,
    refused_status,
)
from credsmith.runtime.shared_rollouts import SharedRollouts
from credsmith.runtime.workqueue import WorkQueue
from credsmith.runtime.writes import Writes

log = logging.getLogger("credsmith.controller")


CACHE_SYNC_TIMEOUT = 120.0
FAILED_RECORD_RETRY = 30.0  # seconds: a key whose failure could not be recorded, again


class CacheSyncTimeout(Exception):
    """The first listings did not complete in time: exit, and let a restart retry."""


class Controller:
    def __init__(
        self,
        kube: Kube,
        kinds: list[KindConfig],
        state_key: StateKey,
        workers: int = 16,
        metrics: Metrics | None = None,
        cache_sync_timeout: float = CACHE_SYNC_TIMEOUT,
        consumer_roll_window: timedelta = DEFAULT_WINDOW,
        provider_options: ProviderOptions | None = None,
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        if metrics is not None:
            metrics.watch_queue(lambda: len(self.queue), lambda: self.queue.scheduled)
        self.kinds = {k.kind: k for k in kinds}
        self.workers = workers
        self.queue: WorkQueue[Key] = WorkQueue()
        # The informers' caches: resources by kind, and the Secrets we manage.
        self.resources: dict[str, dict[ObjectKey, ResourceSnapshot]] = {k: {} for k in self.kinds}
        self.secrets: dict[ObjectKey, SecretSnapshot] = {}
        # Our writes, remembered until the watches deliver them (read-your-writes), and
        # told apart from others' changes during a pass.
        self.writes = Writes(kube, self.secrets, self.resource)
        self._retries: RetryLimiter[Key] = RetryLimiter()
        self._events = EventLimiter()
        self.cache_sync_timeout = cache_sync_timeout
        # Liveness: when a worker last took or finished a key (monotonic).
        self.worker_heartbeat = time.monotonic()
        self._informers: list[Informer[Any]] = []
        # The Secrets' informers by namespace (None: cluster-wide), to know which are listed.
        self._secret_informers: dict[str | None, Informer[Any]] = {}
        # Keys taken before the caches synced whose pass needs them: queued at sync.
        self._parked: set[Key] = set()
        # spec.consumers: the workloads read and rolled (no cache of them).
        self.consumers = Consumers(kube.session)
        # A workload shared by credentials that rotate together is rolled once for them.
        self.shared_rollouts = SharedRollouts(
            self.consumers,
            self.resource,
            self.queue.add,
            self.writes.post_event,
            consumer_roll_window,
        )
        # The registry Secrets and JWK Set ConfigMaps derived from the credentials.
        self.documents = Documents(
            kube,
            self.kinds,
            self.queue,
            self.resource,
            self.secret,
            self.writes.remember_secret,
            state_key,
        )
        # IdentityProviders and ClusterIdentityProviders, and their admin clients.
        self.providers = Providers(
            kube,
            self.queue.add,
            self.queue.add_at,
            self.resource,
            provider_options or ProviderOptions(),
            metrics.provider_ready if metrics is not None else None,
        )
        # What a credential's pass does (this controller queues and runs them).
        self.passes = CredentialPass(
            kube,
            self.kinds,
            self.writes,
            self.documents,
            self.consumers,
            self.shared_rollouts,
            self.providers,
            self.queue.add_at,
            self.resource,
            self.secret,
            self._secrets_listed,
            metrics,
        )

    # ---- watching -----------------------------------------------------------------

    def informers(self, namespaces: Sequence[str]) -> list[Informer[Any]]:
        """List+watch of each kind, and of the Secrets we manage (selected by label), in
        each namespace served (or cluster-wide), feeding the caches and the queue."""
        informers: list[Informer[Any]] = []
        scopes: list[str | None] = [*namespaces] or [None]
        for namespace in scopes:
            scope = f"/namespaces/{namespace}" if namespace else ""
            for config in self.kinds.values():
                informers.append(
                    Informer(
                        self.kube.watches,
                        f"/apis/{GROUP}/{VERSION}{scope}/{config.plural}",
                        ResourceSnapshot.from_api,
                        partial(self._resource_changed, config),
                        cache=self.resources[config.kind],
                        namespace=namespace,
                    )
                )
            secrets: Informer[SecretSnapshot] = Informer(
                self.kube.watches,
                f"/api/v1{scope}/secrets",
                SecretSnapshot.from_api,
                self._secret_changed,
                label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}",
                cache=self.secrets,
                namespace=namespace,
            )
            self._secret_informers[namespace] = secrets
            informers.append(secrets)
            informers += self.documents.informers(scope, namespace)
        return informers + self.providers.informers(namespaces)

    def _secret_changed(self, type_: str, body: Mapping[str, Any], secret: SecretSnapshot) -> None:
        namespace, name = secret.namespace, secret.name
        written = self.writes.secrets.get((namespace, name))
        # The echo of our own write changes nothing for its owner: no pass needed.
        echo = written is not None and written.resource_version == secret.resource_version
        if (
            echo
            or type_ != LISTED
            or not self.writes.listing_predates_write((namespace, name), secret.resource_version)
        ):
            # A listing may come after a write made before the caches synced and hold the
            # version it replaced: what was written stays until the watch delivers it.
            # One that holds a later version was read after the write: it is the answer.
            self.writes.forget_secret((namespace, name))
        owner = secret.annotations.get(OWNER_ANNOTATION, "")
        kind, _, owner_name = owner.partition("/")
        if kind in self.kinds and owner_name and not echo:
            if type_ == LISTED:  # a restart's listing: its owner's pass can wait
                self.queue.add_backlog((kind, namespace, owner_name))
            else:
                self._changed((kind, namespace, owner_name), type_, secret.resource_version)
        if owner_name:
            # Its hashes or public keys feed the documents that list it, if any.
            self.documents.secret_changed(kind, namespace, owner_name)

    def _resource_changed(
        self, config: KindConfig, type_: str, body: Mapping[str, Any], resource: ResourceSnapshot
    ) -> None:
        key = (config.kind, resource.namespace, resource.name)
        self.shared_rollouts.resource_changed(key, None if type_ == "DELETED" else resource)
        written = self.writes.status.get(key)
        echo = written is not None and written[0] == resource.resource_version
        if echo or type_ != LISTED:
            # A first listing streamed again after a cut may hold the version our status
            # patch replaced (as for Secrets): what was written stays until the watch has it.
            self.writes.status.pop(key, None)
        if type_ == LISTED and settled(resource):
            self.queue.add_backlog(key)  # a restart's listing: behind every change
        elif not echo:
            self._changed(key, type_, resource.resource_version)  # not our patch's echo
        self.documents.resource_changed(config, type_, body, key[1], key[2])
        self.providers.credential_changed(key, type_, resource)

    def _changed(self, key: Key, type_: str, version: str) -> None:
        if not self.writes.during_pass(key, type_, version):
            self.queue.add(key)

    # ---- workers -------------------------------------------------------------------

    async def run(self, informers: Sequence[Informer[Any]]) -> None:
        self._informers = list(informers)
        # One connection per informer: each holds its watch open for minutes, and none
        # may wait for another's (nor take the workers' or the Lease's connections).
        self.kube.watches.pool_size = len(informers)
        # What the listings find settled waits for them all (and behind every change).
        self.queue.close_backlog()
        tasks = [asyncio.create_task(i.run(), name=f"watch {i.path}") for i in informers]
        tasks.append(asyncio.create_task(self.queue.run_scheduler(), name="scheduler"))
        tasks += [
            asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(self.workers)
        ]
        try:
            # Until every cache holds its first listing, only passes that need no cache
            # but their Secret's go (_worker). A listing that never completes is a reason
            # to exit (as controller-runtime's CacheSyncTimeout), not to hang.
            try:
                async with asyncio.timeout(self.cache_sync_timeout):
                    await asyncio.gather(*(i.synced.wait() for i in informers))
            except TimeoutError:
                pending = [i.path for i in informers if not i.synced.is_set()]
                raise CacheSyncTimeout(
                    f"caches not synced in {self.cache_sync_timeout:.0f}s: {', '.join(pending)}"
                ) from None
            self.synced = True
            for key in self._parked:
                self.queue.add(key)
            self._parked.clear()
            self.queue.open_backlog()
            log.info("Watching: %s", ", ".join(i.path for i in informers))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.providers.close()

    synced = False

    def liveness_problem(self, stale_after: float = 300.0) -> str | None:
        """Why this process should be restarted, if it should: a watch loop that died,
        or keys waiting while no worker has moved for `stale_after` seconds."""
        for informer in self._informers:
            if problem := informer.liveness_problem(stale_after):
                return problem
        idle = time.monotonic() - self.worker_heartbeat
        if self.synced and len(self.queue) > 0 and idle > stale_after:
            return f"{len(self.queue)} keys waiting, no worker progress for {idle:.0f}s"
        return None

    async def _worker(self) -> None:
        while True:
            # A settled credential's pass runs on the loop and may never suspend, nor does
            # get() while keys wait: without this, one worker would take the loop through a
            # restart's whole backlog (3000 passes: 7 s), and a new credential's pass
            # (its thread's result, its writes' responses) would wait for all of them.
            await asyncio.sleep(0)
            key = await self.queue.get()
            if not self.synced and not self._passes_before_sync(key):
                self._parked.add(key)  # until every cache holds its first listing
                self.queue.done(key)
                continue
            self.worker_heartbeat = time.monotonic()
            self.writes.pass_started(key)
            try:
                await self.reconcile(key)
                self._retries.forget(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                try:
                    await self._failed(key, exc)
                except Exception as unexpected:  # recording a failure must not end a worker
                    log.error(
                        "%s/%s/%s: a failed pass could not be recorded: %s",
                        *key, type(unexpected).__name__,
                    )  # fmt: skip
                    self.queue.add_after(key, FAILED_RECORD_RETRY)
            finally:
                if self.writes.pass_ended(key):
                    self.queue.add(key)  # someone else changed it meanwhile
                self.queue.done(key)
                self.worker_heartbeat = time.monotonic()

    async def _failed(self, key: Key, exc: Exception) -> None:
        retry = plan_retry(self._retries, key, exc)
        if retry is None:
            log.debug("%s/%s/%s: its namespace is being deleted", *key)
            return
        if retry.hold:
            self.queue.hold_until(key, time.time() + retry.delay)
        else:
            self.queue.add_after(key, retry.delay)
        if retry.refusal is None:
            return  # a recheck, not a failure
        if self.metrics is not None:
            self.metrics.failed(key)
        log.log(
            logging.WARNING if retry.failures == 1 else logging.DEBUG,
            "%s/%s/%s: %s: %s; retrying in %.2fs (Retry-After %s)",
            *key, retry.refusal.reason.value, retry.refusal.message, retry.delay,
            retry.retry_after or "-",
        )  # fmt: skip
        if retry.show and key[0] in self.kinds:
            await self._show_refusal(key, retry.refusal)

    async def _show_refusal(self, key: Key, refusal: Refusal) -> None:
        """Status (and, bounded, an Event) for a failed pass: best effort, as the API
        server may be what failed."""
        resource = self.resource(key)
        if resource is None:
            return
        written = self.writes.status.get(key)
        current = written[1] if written is not None else resource.status
        status = refused_status(current, resource.generation, refusal, _now())
        try:
            if status != current:
                await self.writes.patch_status(key, self.kinds[key[0]], current, status)
            if self.metrics is not None:
                self.metrics.show(key, status)  # Ready=False shows per resource too
            if refusal.permanent and self._events.allow(key, refusal.reason.value):
                await self.writes.post_event(
                    resource, "Warning", refusal.reason.value, refusal.message
                )
        except ApiError as exc:
            log.debug("%s: could not show %s: %s", resource.ref, refusal.reason.value, exc.reason)

    def _passes_before_sync(self, key: Key) -> bool:
        config = self.kinds.get(key[0])
        if config is None:
            return False  # a registry, a JWK Set, a provider: built from whole caches
        resource = self.resource(key)
        return resource is not None and passes_before_sync(config, resource)

    def _secrets_listed(self, namespace: str) -> bool:
        informer = self._secret_informers.get(namespace) or self._secret_informers.get(None)
        return informer is None or informer.synced.is_set()

    def resource(self, key: Key) -> ResourceSnapshot | None:
        kind, namespace, name = key
        return self.resources[kind].get((namespace, name))

    def secret(self, namespace: str, name: str) -> SecretSnapshot | None:
        written = self.writes.secrets.get((namespace, name))
        return written or self.secrets.get((namespace, name))

    async def reconcile(self, key: Key) -> None:
        if key[0] in DOCUMENT_KINDS:
            await self.documents.reconcile(key)
        elif key[0] in PROVIDER_KINDS:
            await self.providers.reconcile(key)
        else:
            await self.passes.run(key)


def _now() -> datetime:
    return datetime.now(UTC)
