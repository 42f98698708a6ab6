"""The control loop: watch events become queued keys; workers reconcile a key at a time.

Informers list and watch the resources and the Secrets we manage (filtered
server-side by label) into in-memory caches. Workers start at once, but until every
cache holds its first listing they take only the passes that read nothing but their
resource and its Secret (runtime/early.py), and a Secret not in the cache yet is asked
of the API server: a worker never mistakes a Secret it has not seen yet for a missing
one. Other keys wait for the listings, and so does the backlog (what the listing found
settled). Nothing is persisted on the objects but their status and Secrets: no
annotations of the operator's own on resources, no finalizers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from credsmith import GROUP, VERSION
from credsmith.reconcile.published import with_unpublished
from credsmith.reconcile.secret_state import OWNER as OWNER_ANNOTATION
from credsmith.reconcile.shared_rollouts import DEFAULT_WINDOW
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Decision,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey
from credsmith.runtime.backlog import settled
from credsmith.runtime.backoff import RetryLimiter
from credsmith.runtime.consumers import Consumers
from credsmith.runtime.documents import DOCUMENT_KINDS, Documents
from credsmith.runtime.early import passes_before_sync
from credsmith.runtime.eventlimit import EventLimiter
from credsmith.runtime.failures import RecheckLater, plan_retry
from credsmith.runtime.informer import LISTED, Informer, ObjectKey
from credsmith.runtime.kinds import Key, KindConfig
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.provider_kinds import PROVIDER_KINDS, ProviderOptions
from credsmith.runtime.providers import Providers
from credsmith.runtime.refusals import (
    Refusal,
    refused_status,
    without_reconciling,
)
from credsmith.runtime.registration import provider_seen, register, restore
from credsmith.runtime.shared_rollouts import SharedRollouts
from credsmith.runtime.workqueue import WorkQueue
from credsmith.runtime.writes import Writes

log = logging.getLogger("credsmith.controller")


CACHE_SYNC_TIMEOUT = 120.0
# A failed identity provider call is retried at least this often (exponential below it).
REGISTRATION_RETRY_CAP = 30.0


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
                await self._failed(key, exc)
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

    async def _secret_for_pass(self, namespace: str, name: str) -> SecretSnapshot | None:
        """The cache's copy; while the Secrets are not all listed, one not in it is asked
        of the API server (a 404 means missing; not listed yet does not)."""
        found = self.secret(namespace, name)
        if found is not None or self._secrets_listed(namespace):
            return found
        body = await self.kube.get_secret(namespace, name)
        return SecretSnapshot.from_api(body) if body is not None else None

    def resource(self, key: Key) -> ResourceSnapshot | None:
        kind, namespace, name = key
        return self.resources[kind].get((namespace, name))

    def secret(self, namespace: str, name: str) -> SecretSnapshot | None:
        written = self.writes.secrets.get((namespace, name))
        return written or self.secrets.get((namespace, name))

    async def reconcile(self, key: Key) -> None:
        kind, namespace, _ = key
        if kind in DOCUMENT_KINDS:
            await self.documents.reconcile(key)
            return
        if kind in PROVIDER_KINDS:
            await self.providers.reconcile(key)
            return
        resource = self.resource(key)
        if resource is None:
            self.writes.status.pop(key, None)
            if self.metrics is not None:
                self.metrics.forget(key)
            return  # deleted: ownerReferences let the garbage collector do the rest
        written = self.writes.status.get(key)
        if written is not None:
            resource = _with_status(resource, written[1])
        config = self.kinds[kind]
        secret_name = config.secret_name(resource)
        started = time.perf_counter()
        secret = await self._secret_for_pass(namespace, secret_name)
        # In a thread: issuing an RSA-4096 key or an Argon2id hash takes a while.
        duplicate_of = self.documents.duplicate_of(config, resource)
        htpasswd = self.documents.registry_htpasswd(config, resource)
        consumers = await self.consumers.observe(resource, secret_name)
        provider = provider_seen(self.providers, resource)
        decide = partial(
            config.reconcile,
            resource,
            duplicate_of=duplicate_of,
            consumers=consumers,
            registry_htpasswd=htpasswd,
            provider=provider,
        )
        if config.light(resource, htpasswd):
            # Nothing slow can happen in it: on the loop, without a thread's hand-offs
            # (~0.3 ms of CPU a pass in a bulk issue; bench/README.md).
            decision = decide(secret, _now())
        else:
            decision = await asyncio.to_thread(decide, secret, _now())
        # Verifier first: the identity provider holds the value before the Secret does.
        decision = await register(self.providers, decision)

        if decision.secret is not None:
            try:
                await self.writes.write_secret(key, secret_name, decision)
            except ApiError as exc:
                if not (exc.status == 409 and decision.create):
                    if 400 <= exc.status < 500:
                        # Refused, so not written: the provider took a value the Secret
                        # does not hold. (A 5xx may have been written: the next pass
                        # reads the Secret and registers what it holds.)
                        await restore(self.providers, decision)
                        await self._keep_client_id(key, config, resource, decision)
                    raise
                # The name is taken by a Secret we do not cache: someone else's (we
                # watch only our own), or ours created a moment ago. Look at it once.
                registered = decision
                found = await self.kube.get_secret(namespace, secret_name)
                if found is None:
                    await self._keep_client_id(key, config, resource, registered)
                    raise
                secret = SecretSnapshot.from_api(found)
                decision = await asyncio.to_thread(decide, secret, _now())
                decision = await register(self.providers, decision)
                if decision.secret is not None:
                    await self.writes.write_secret(key, secret_name, decision)
                else:
                    # Someone else's (SecretConflict): it stays unwatched, so each look
                    # again is a first issue that registers before it creates: one client.
                    await self._keep_client_id(key, config, resource, registered)
        if decision.rollouts and consumers is not None:
            # Made now, or held a moment to be made once with other credentials' (shared).
            failures, held = await self.shared_rollouts.roll(resource, decision.rollouts, _now())
            if failures or held:
                # Deciding again with the refusals (and the held) known changes only status
                # and Events: the Secret (the value, or the previous one held for the
                # workloads being rolled) was written above as it would be now, so it is not
                # written twice. Its rollouts are not made again: the others were just now.
                consumers = consumers.with_roll_failures(failures).with_roll_held(held)
                decide = partial(
                    config.reconcile,
                    resource,
                    duplicate_of=duplicate_of,
                    consumers=consumers,
                    registry_htpasswd=htpasswd,
                    provider=provider,
                )
                decision = await register(
                    self.providers, await asyncio.to_thread(decide, secret, _now())
                )
                decision = replace(decision, secret=None)
        # Not Ready where no server can check it: a registry or JWK Set that cannot be written.
        blocked = self.documents.unpublished(config, resource)
        decision = with_unpublished(resource, decision, blocked, _now())
        status = without_reconciling(decision.status)  # this pass went through
        if status != resource.status:
            await self.writes.patch_status(key, config, resource.status, status)
        for event in decision.events:
            await self.writes.post_event(resource, event.type, event.reason, event.message)
        if decision.requeue_at is not None:
            self.queue.add_at(key, decision.requeue_at.timestamp())
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.record(key, decision, elapsed)
        if decision.summary:
            log.info("%s: %s", resource.ref, decision.summary)
        log.debug("%s: reconciled in %.1f ms", resource.ref, elapsed * 1e3)
        if decision.retry:
            # An identity provider call failed: status says so; again on the key's backoff.
            raise RecheckLater(REGISTRATION_RETRY_CAP)

    async def _keep_client_id(
        self, key: Key, config: KindConfig, resource: ResourceSnapshot, decision: Decision
    ) -> None:
        """A first issue whose Secret was refused (or whose name someone else's Secret
        holds) after the provider registered its client: status keeps the client ID (as
        registration._failed does), so that the retry registers that client again rather
        than one more under a new ID each time."""
        registration = decision.registration
        if registration is None or resource.status.get("clientId"):
            return
        kept = {**resource.status, "clientId": registration.desired.client_id}
        try:
            await self.writes.patch_status(key, config, resource.status, kept)
        except ApiError as exc:
            log.debug("%s: could not keep the client ID: %s", resource.ref, exc.reason)


def _now() -> datetime:
    return datetime.now(UTC)


def _with_status(resource: ResourceSnapshot, status: Mapping[str, Any]) -> ResourceSnapshot:
    return replace(resource, status=dict(status))
