"""Claim the Secret: the one named by the spec must be ours, and of the credential's type.
Pure.

A Secret someone else made is never touched (behaviour 2: `SecretConflict`, the seeds' 409);
nor is one of ours of another type (a Secret's type is immutable). Either is looked at again
with a backoff, as it is not watched (we watch only our own Secrets).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from credsmith.api.status import ConditionType, Reason, find_condition, parse_timestamp
from credsmith.reconcile import readiness
from credsmith.reconcile.layout import LAYOUTS
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.secret_state import is_ours
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot

# While a foreign Secret blocks us we cannot watch it (we watch only our own), so look
# again now and then: first after CONFLICT_RECHECK, then after half the time the conflict
# has lasted, up to CONFLICT_RECHECK_MAX (a backoff, not a poll every 30 s forever).
CONFLICT_RECHECK = timedelta(seconds=30)
CONFLICT_RECHECK_MAX = timedelta(minutes=5)


def claim_secret(p: Pass) -> Pass | Decision:
    secret, valid, kind = p.secret, p.valid, p.resource.kind
    if secret is None:
        return p
    posing = p.posing
    if posing or not is_ours(secret.labels, secret.annotations, p.owner):
        # Posing: labelled and annotated as ours, but no operator made it (no valid state
        # MAC) and status records no credential: someone else's, made before its owner.
        made = "was not written by credsmith for" if posing else "is not managed by"
        return readiness.stop(
            p,
            Reason.SECRET_CONFLICT,
            f"Secret {valid.secret_name} already exists and {made} this {kind}: "
            "nothing was changed. Delete or rename that Secret, or set spec.secretName.",
            conflict_recheck(p.resource, p.now),
        )
    secret_type = LAYOUTS[valid.type].secret_type
    if secret.type != secret_type:
        # Ours, from a deleted resource of the same name and another spec.type (Orphan):
        # a Secret's type is immutable, so it cannot be rewritten, only replaced by a person.
        return readiness.stop(
            p,
            Reason.SECRET_CONFLICT,
            f"Secret {valid.secret_name} has type {secret.type}, but a {valid.type.value} "
            f"credential needs type {secret_type}: nothing was changed. Delete that Secret to "
            "have it issued anew, or set spec.secretName.",
            conflict_recheck(p.resource, p.now),
        )
    return p


def conflict_recheck(resource: ResourceSnapshot, now: datetime) -> datetime:
    """When to look at a conflict again: sooner while it is new, rarely once it lasts."""
    ready = find_condition(readiness.conditions_of(resource), ConditionType.READY)
    since = None
    if ready is not None and ready.reason == Reason.SECRET_CONFLICT.value:
        since = _timestamp(ready.last_transition_time)
    lasted = now - since if since is not None and since <= now else timedelta(0)
    return now + min(max(CONFLICT_RECHECK, lasted / 2), CONFLICT_RECHECK_MAX)


def _timestamp(value: str | None) -> datetime | None:
    try:
        return parse_timestamp(value) if value else None
    except ValueError:
        return None
