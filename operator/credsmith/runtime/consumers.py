"""The API side of spec.consumers: read the workloads, and roll them.

No informer on workloads: the operator caches none (a cluster may hold thousands of
Deployments, a credential names a few). A workload is read when its credential is
reconciled and, while its rollout is in flight, again on the credential's requeue; named
consumers by GET, selected ones by a label-selected list. Rolling one is a server-side
apply of one pod-template annotation under a field manager of the credential's own, so that
the workload's manifest (kubectl diff, Argo CD) shows no drift and two credentials consumed
by one workload each keep their own key.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from credsmith.api.consumers import Consumer
from credsmith.reconcile.consumers import ConsumersSeen, Rollout
from credsmith.reconcile.rollouts import (
    PLURALS,
    Workload,
    field_manager,
    rollout_annotation,
    rollout_patch,
    workload_of,
)
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.session import APPLY_PATCH, ApiError, ApiSession

log = logging.getLogger("credsmith.consumers")

_CONSUMERS = TypeAdapter(list[Consumer])
# Statuses an API server answers when it will not let us read or patch a workload:
# RBAC (403), an admission policy (403/422 with a message), a kind it does not serve (404
# on a list).
_REFUSALS = (403,)


def consumers_of(resource: ResourceSnapshot) -> list[Consumer]:
    """spec.consumers as validated; empty when absent or invalid (the pass then reports
    the invalid spec, and no workload is touched)."""
    raw = resource.spec.get("consumers")
    if not raw:
        return []
    try:
        return _CONSUMERS.validate_python(raw)
    except ValidationError:
        return []


class Consumers:
    def __init__(self, session: ApiSession) -> None:
        self.session = session

    async def observe(self, resource: ResourceSnapshot) -> ConsumersSeen | None:
        """What spec.consumers finds now (None: the resource has none). A refusal becomes
        `refused`; any other error propagates (the pass is retried with backoff)."""
        consumers = consumers_of(resource)
        if not consumers:
            return None
        annotation = rollout_annotation(resource.kind, resource.name)
        found: dict[tuple[str, str], Workload] = {}
        missing: list[str] = []
        try:
            for consumer in consumers:
                path = f"/apis/apps/v1/namespaces/{resource.namespace}/{PLURALS[consumer.kind]}"
                if consumer.name is not None:
                    one = await self._get(f"{path}/{consumer.name}")
                    if one is None:
                        missing.append(f"{consumer.kind.value}/{consumer.name}")
                        continue
                    bodies: list[Mapping[str, Any]] = [one]
                else:
                    assert consumer.selector is not None
                    page = await self.session.request(
                        "GET", path, params={"labelSelector": consumer.selector.to_query()}
                    )
                    bodies = [b for b in page.get("items") or () if isinstance(b, Mapping)]
                for body in bodies:
                    workload = workload_of(consumer.kind, body, annotation)
                    if workload.name:
                        found[(workload.kind.value, workload.name)] = workload
        except ApiError as exc:
            if exc.status not in _REFUSALS:
                raise
            return ConsumersSeen(refused=_refusal(exc, "read"))
        # Every one is rolled; status.consumers lists the first MAX_CONSUMER_STATUSES.
        listed = sorted(found.values(), key=lambda w: (w.kind.value, w.name))
        return ConsumersSeen(workloads=tuple(listed), missing=tuple(missing))

    async def roll(self, resource: ResourceSnapshot, rollouts: tuple[Rollout, ...]) -> str | None:
        """Roll each workload to its revision; None, or why the API server refused one."""
        annotation = rollout_annotation(resource.kind, resource.name)
        manager = field_manager(resource.kind, resource.name)
        for rollout in rollouts:
            workload = rollout.workload
            path = (
                f"/apis/apps/v1/namespaces/{resource.namespace}/"
                f"{PLURALS[workload.kind]}/{workload.name}"
            )
            body = rollout_patch(workload.kind, workload.name, annotation, rollout.revision)
            try:
                await self.session.request(
                    "PATCH",
                    path,
                    body=body,
                    params={"fieldManager": manager, "force": "true"},
                    content_type=APPLY_PATCH,
                )
            except ApiError as exc:
                if exc.status == 404:
                    continue  # deleted since it was read: nothing left to roll
                if exc.status in (*_REFUSALS, 422):
                    # 422: e.g. deleted and the apply would have created it, or an
                    # admission policy's refusal: either way, not ours to retry blindly.
                    return _refusal(exc, "patch")
                raise
            log.info("%s: rolled %s to revision %d", resource.ref, workload.ref, rollout.revision)
        return None

    async def _get(self, path: str) -> dict[str, Any] | None:
        try:
            return await self.session.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise


def _refusal(exc: ApiError, verb: str) -> str:
    # The API server's message names the verb, resource and identity, never a value.
    return f"the API server refused to {verb} a workload ({exc.status} {exc.reason}: {exc.message})"
