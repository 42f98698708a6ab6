"""The API side of spec.consumers: read the workloads, and roll them.

No informer on workloads: the operator caches none (a cluster may hold thousands of
Deployments, a credential names a few). A workload is read when its credential is
reconciled and, while its rollout is in flight, again on the credential's requeue; named
consumers by GET, selected ones by a label-selected list. Rolling one is a server-side
apply of one pod-template annotation under a field manager of the credential's own, so that
the workload's manifest (kubectl diff, Argo CD) shows no drift and two credentials consumed
by one workload each keep their own key. Credentials that rotate together roll a workload
they share once (roll_together; when, decided in reconcile/shared_rollouts.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from credsmith.api.consumers import Consumer
from credsmith.reconcile.consumers import ConsumersSeen, Failure, Rollout, Unread
from credsmith.reconcile.rollouts import (
    PLURALS,
    Workload,
    field_manager,
    rollout_annotation,
    rollout_patch,
    workload_of,
)
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.session import APPLY_PATCH, MERGE_PATCH, ApiError, ApiSession

log = logging.getLogger("credsmith.consumers")

_CONSUMERS = TypeAdapter(list[Consumer])
# The field manager of a rollout made at once for several credentials (roll_together).
SHARED_ROLLOUT_MANAGER = "credsmith-shared-rollout"


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

    async def observe(self, resource: ResourceSnapshot, secret_name: str) -> ConsumersSeen | None:
        """What spec.consumers finds now (None: the resource has none). Each entry is read
        on its own: one the API server will not answer (refused, not found, a selector it
        rejects, any error) is recorded as unread, and the others are read all the same."""
        consumers = consumers_of(resource)
        if not consumers:
            return None
        annotation = rollout_annotation(resource.kind, resource.name)
        found: dict[tuple[str, str], Workload] = {}
        unread: list[Unread] = []
        for consumer in consumers:
            path = f"/apis/apps/v1/namespaces/{resource.namespace}/{PLURALS[consumer.kind]}"
            query = consumer.selector.to_query() if consumer.selector is not None else None
            try:
                if consumer.name is not None:
                    bodies: list[Mapping[str, Any]] = [
                        await self.session.request("GET", f"{path}/{consumer.name}")
                    ]
                else:
                    page = await self.session.request(
                        "GET", path, params={"labelSelector": query or ""}
                    )
                    bodies = [b for b in page.get("items") or () if isinstance(b, Mapping)]
            except ApiError as exc:
                if exc.status != 404 or consumer.name is None:
                    log.warning("%s: cannot read its consumers: %s", resource.ref, exc)
                message = "not found" if exc.status == 404 and consumer.name else None
                unread.append(
                    Unread(
                        consumer.kind,
                        consumer.name,
                        query,
                        exc.status,
                        message or _refusal(exc, "read" if consumer.name else "list"),
                    )
                )
                continue
            for body in bodies:
                workload = workload_of(consumer.kind, body, annotation, secret_name)
                if workload.name:
                    found[(workload.kind.value, workload.name)] = workload
        # Every one is rolled; status.consumers lists the first MAX_CONSUMER_STATUSES.
        listed = sorted(found.values(), key=lambda w: (w.kind.value, w.name))
        return ConsumersSeen(workloads=tuple(listed), unread=tuple(unread), secret_name=secret_name)

    async def roll(
        self, resource: ResourceSnapshot, rollouts: tuple[Rollout, ...]
    ) -> dict[tuple[str, str], Failure]:
        """Roll each workload to its revision, each on its own: the ones the API server
        would not let us roll, and why (a refusal of one never stops the others)."""
        annotation = rollout_annotation(resource.kind, resource.name)
        manager = field_manager(resource.kind, resource.name)
        failures: dict[tuple[str, str], Failure] = {}
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
                # 403/422: RBAC or an admission policy's refusal (422 also: deleted and the
                # apply would have created it); anything else is a failure of its own. The
                # next look tries again (not blindly: only while it is still stale).
                log.warning("%s: cannot roll %s: %s", resource.ref, workload.ref, exc)
                failures[workload.key] = Failure(exc.status, _refusal(exc, "patch"))
                continue
            log.info("%s: rolled %s to revision %d", resource.ref, workload.ref, rollout.revision)
        return failures

    async def roll_together(
        self, namespace: str, workload: Workload, annotations: Mapping[str, str]
    ) -> Failure | None:
        """Roll one workload once for several credentials: one write that sets each one's
        pod-template annotation (annotation key -> revision), so that the workload's
        controller makes one new ReplicaSet (or revision), not one per credential. A merge
        patch, not an apply: one apply cannot be made under several credentials' field
        managers, and a shared manager that applied another set of keys the next time would
        remove the keys it no longer lists. The patch removes nothing; each credential's own
        apply takes its key back the next time it rolls alone. None: rolled (or deleted
        since it was read: nothing left to roll)."""
        path = f"/apis/apps/v1/namespaces/{namespace}/{PLURALS[workload.kind]}/{workload.name}"
        body = {"spec": {"template": {"metadata": {"annotations": dict(annotations)}}}}
        try:
            await self.session.request(
                "PATCH",
                path,
                body=body,
                params={"fieldManager": SHARED_ROLLOUT_MANAGER},
                content_type=MERGE_PATCH,
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            log.warning("%s: cannot roll %s: %s", namespace, workload.ref, exc)
            return Failure(exc.status, _refusal(exc, "patch"))
        log.info(
            "%s/%s: rolled once for %d credentials (%s)",
            namespace,
            workload.ref,
            len(annotations),
            ", ".join(f"{k}={v}" for k, v in sorted(annotations.items())),
        )
        return None


def _refusal(exc: ApiError, verb: str) -> str:
    # The API server's message names the verb, resource and identity, never a value.
    what = "the workloads" if verb == "list" else "it"
    return f"the API server refused to {verb} {what} ({exc.status} {exc.reason}: {exc.message})"
