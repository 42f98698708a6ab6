"""One credential's pass: read its resource and Secret, decide (reconcile/), register with its
identity provider, write the Secret, roll its consumers, write status and Events.

Split from runtime/controller.py, which watches, queues and runs the passes (and shows a
failed one); the writes and what they remember are runtime/writes.py's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from credsmith.reconcile.published import with_unpublished
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot, SecretSnapshot
from credsmith.runtime.consumers import Consumers
from credsmith.runtime.documents import Documents
from credsmith.runtime.failures import RecheckLater
from credsmith.runtime.kinds import Key, KindConfig
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.providers import Providers
from credsmith.runtime.refusals import without_reconciling
from credsmith.runtime.registration import provider_seen, register, restore
from credsmith.runtime.shared_rollouts import SharedRollouts
from credsmith.runtime.writes import Writes

log = logging.getLogger("credsmith.controller")

# A failed identity provider call is retried at least this often (exponential below it).
REGISTRATION_RETRY_CAP = 30.0


class CredentialPass:
    def __init__(
        self,
        kube: Kube,
        kinds: Mapping[str, KindConfig],
        writes: Writes,
        documents: Documents,
        consumers: Consumers,
        shared_rollouts: SharedRollouts,
        providers: Providers,
        queue_add_at: Callable[[Key, float], None],
        resource: Callable[[Key], ResourceSnapshot | None],
        secret: Callable[[str, str], SecretSnapshot | None],
        secrets_listed: Callable[[str], bool],
        metrics: Metrics | None,
    ) -> None:
        self.kube = kube
        self.kinds = kinds
        self.writes = writes
        self.documents = documents
        self.consumers = consumers
        self.shared_rollouts = shared_rollouts
        self.providers = providers
        self._queue_add_at = queue_add_at
        self._resource = resource
        self._secret = secret
        self._secrets_listed = secrets_listed
        self.metrics = metrics

    async def run(self, key: Key) -> None:
        """The pass of `key`, a credential kind's. Raises what failed (the controller
        retries it on the key's backoff and shows it)."""
        kind, namespace, _ = key
        resource = self._resource(key)
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
        secret = await self.secret_for_pass(namespace, secret_name)
        # In a thread: issuing an RSA-4096 key or an Argon2id hash takes a while.
        duplicate_of = self.documents.duplicate_of(config, resource)
        htpasswd = self.documents.registry_htpasswd(config, resource)
        consumers = await self.consumers.observe(resource, secret_name)
        provider = provider_seen(self.providers, resource)
        # Decided with what this pass saw; again below with the rollouts' outcome known.
        decide_seeing = partial(
            config.reconcile,
            resource,
            duplicate_of=duplicate_of,
            registry_htpasswd=htpasswd,
            provider=provider,
        )
        decide = partial(decide_seeing, consumers=consumers)
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
                decide = partial(decide_seeing, consumers=consumers)
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
            self._queue_add_at(key, decision.requeue_at.timestamp())
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.record(key, decision, elapsed)
        if decision.summary:
            log.info("%s: %s", resource.ref, decision.summary)
        log.debug("%s: reconciled in %.1f ms", resource.ref, elapsed * 1e3)
        if decision.retry:
            # An identity provider call failed: status says so; again on the key's backoff.
            raise RecheckLater(REGISTRATION_RETRY_CAP)

    async def secret_for_pass(self, namespace: str, name: str) -> SecretSnapshot | None:
        """The cache's copy; while the Secrets are not all listed, one not in it is asked
        of the API server (a 404 means missing; not listed yet does not)."""
        found = self._secret(namespace, name)
        if found is not None or self._secrets_listed(namespace):
            return found
        body = await self.kube.get_secret(namespace, name)
        return SecretSnapshot.from_api(body) if body is not None else None

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
