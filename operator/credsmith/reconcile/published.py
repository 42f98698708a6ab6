"""Whether the documents a credential is published in (its registry Secret, its JWK Set
ConfigMap) could be written. Pure.

A credential is usable only where a server can check it: an ApiClient whose registry Secret
is someone else's, or whose write the API server refuses, cannot be verified by anyone, so
it is not Ready, whatever its own Secret holds. The runtime says which documents are
blocked; this module turns that into the member's status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from credsmith.api.status import ConditionStatus, ConditionType, Reason
from credsmith.reconcile import readiness
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot


@dataclass(frozen=True)
class Unpublished:
    """A document that could not be written (or that leaves this member out), and why."""

    reason: Reason
    message: str


def with_unpublished(
    resource: ResourceSnapshot,
    decision: Decision,
    blocked: Iterable[Unpublished],
    now: datetime,
) -> Decision:
    """`decision` with Ready=False (and Stalled=True) for the first blocked document, if the
    credential is otherwise Ready: a failure of its own says more and is left as it is."""
    first = next(iter(blocked), None)
    if first is None or not _ready(decision):
        return decision
    status, events = readiness.not_ready(
        resource, decision.status, now, first.reason, first.message
    )
    summary = decision.summary or (events[0].message if events else "")
    return replace(decision, status=status, events=decision.events + events, summary=summary)


def _ready(decision: Decision) -> bool:
    for condition in decision.status.get("conditions") or ():
        if condition.get("type") == ConditionType.READY.value:
            return bool(condition.get("status") == ConditionStatus.TRUE.value)
    return False
