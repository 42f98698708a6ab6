"""Shared consumers rolled once: the runtime side. A pass's rollouts go through here; a
workload another credential uses and may be about to roll too is held a moment (at most the
window since the first ask, reconcile/shared_rollouts.py decides), then rolled by one write
that carries every credential's annotation. The pass that makes the write wakes the others,
which then find their annotation in place, as if each had rolled it.

Held rolls live only in memory: a held workload keeps its recorded revision in status (the
pass that holds it says so), so after a restart every credential finds it not rolled and
asks again. Which credentials use a workload comes from their status.consumers, indexed as
the watch delivers them (no workload is watched).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta

from credsmith.reconcile.consumers import Failure, Rollout
from credsmith.reconcile.rollouts import Workload, field_manager, rollout_annotation
from credsmith.reconcile.shared_rollouts import (
    DEFAULT_WINDOW,
    CredentialKey,
    RollRequest,
    WorkloadKey,
    merged,
    roll_at,
    sharer_due,
    workloads_followed,
)
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.consumers import Consumers

log = logging.getLogger("credsmith.consumers")

# (namespace, (kind, name)): a workload in the cluster.
Where = tuple[str, WorkloadKey]
PostEvent = Callable[[ResourceSnapshot, str, str, str], Awaitable[None]]


class SharedRollouts:
    def __init__(
        self,
        consumers: Consumers,
        resource: Callable[[CredentialKey], ResourceSnapshot | None],
        wake: Callable[[CredentialKey], None],
        post_event: PostEvent,
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.consumers = consumers
        self.resource = resource
        self.wake = wake
        self.post_event = post_event
        self.window = window
        self._pending: dict[Where, dict[CredentialKey, RollRequest]] = {}
        # Who follows which workload, by status.consumers (and the reverse, to update it).
        self._users: dict[Where, set[CredentialKey]] = {}
        self._follows: dict[CredentialKey, frozenset[WorkloadKey]] = {}
        # A write for several credentials that the API server refused: told to each of the
        # others at its next pass (the pass that made it is told at once).
        self._refused: dict[tuple[CredentialKey, WorkloadKey, int], Failure] = {}

    def resource_changed(self, key: CredentialKey, resource: ResourceSnapshot | None) -> None:
        follows = workloads_followed(resource.status) if resource is not None else frozenset()
        before = self._follows.get(key, frozenset())
        if follows == before:
            return
        namespace = key[1]
        for workload in before - follows:
            users = self._users.get((namespace, workload))
            if users is not None:
                users.discard(key)
                if not users:
                    del self._users[(namespace, workload)]
        for workload in follows - before:
            self._users.setdefault((namespace, workload), set()).add(key)
        if follows:
            self._follows[key] = follows
        else:
            self._follows.pop(key, None)

    async def roll(
        self, resource: ResourceSnapshot, rollouts: tuple[Rollout, ...], now: datetime
    ) -> tuple[dict[WorkloadKey, Failure], dict[WorkloadKey, datetime]]:
        """Make or hold each rollout: the ones refused (and why), and the ones held (and
        until when they are rolled at the latest)."""
        key = (resource.kind, resource.namespace, resource.name)
        annotation = rollout_annotation(resource.kind, resource.name)
        manager = field_manager(resource.kind, resource.name)
        failures: dict[WorkloadKey, Failure] = {}
        held: dict[WorkloadKey, datetime] = {}
        alone: list[Rollout] = []
        for rollout in rollouts:
            workload = rollout.workload
            where = (resource.namespace, workload.key)
            refused = self._refused.pop((key, workload.key, rollout.revision), None)
            if refused is not None:
                failures[workload.key] = refused
                continue
            request = RollRequest(key, annotation, manager, rollout.revision, now)
            pending = merged(self._pending.get(where, {}), request, self.window)
            until = roll_at(pending, self._sharers_due(key, where, now), self.window, now)
            if until is not None:
                self._pending[where] = pending
                held[workload.key] = until
                continue
            self._pending.pop(where, None)
            if len(pending) == 1:
                alone.append(rollout)  # as it always was: its own apply, its own manager
                continue
            if failure := await self._roll_together(key, resource.namespace, workload, pending):
                failures[workload.key] = failure
        failures.update(await self.consumers.roll(resource, tuple(alone)))
        return failures, held

    def _sharers_due(
        self, key: CredentialKey, where: Where, now: datetime
    ) -> dict[CredentialKey, datetime | None]:
        found: dict[CredentialKey, datetime | None] = {}
        for other in self._users.get(where, ()):
            if other != key and (resource := self.resource(other)) is not None:
                found[other] = sharer_due(resource.status, resource.annotations, where[1], now)
        return found

    async def _roll_together(
        self,
        key: CredentialKey,
        namespace: str,
        workload: Workload,
        pending: Mapping[CredentialKey, RollRequest],
    ) -> Failure | None:
        annotations = {r.annotation: str(r.revision) for r in pending.values()}
        failure = await self.consumers.roll_together(namespace, workload, annotations)
        others = [r for r in pending.values() if r.credential != key]
        for request in others:
            if failure is not None:
                self._refused[(request.credential, workload.key, request.revision)] = failure
            elif (resource := self.resource(request.credential)) is not None:
                names = ", ".join(
                    f"{r.credential[0]}/{r.credential[2]}" for r in pending.values() if r != request
                )
                message = (
                    f"Rolling out {workload.ref} to revision {request.revision}, once for this "
                    f"credential and {names}"
                )
                await self.post_event(resource, "Normal", "RollingOut", message)
            self.wake(request.credential)  # to see its annotation in place (or the refusal)
        return failure
