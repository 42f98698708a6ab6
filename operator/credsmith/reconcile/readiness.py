"""Status of a credential resource: the fields derived from its Secret, and the conditions.

Conditions follow kstatus: Ready always; Stalled=True while only a person can make progress
(invalid spec, conflict, duplicate client ID). Status never holds a secret value: only its
fingerprint, which tells values apart without revealing them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from credsmith.api.common import CredentialSpec
from credsmith.api.enums import CredentialType
from credsmith.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    format_timestamp,
    set_condition,
    stored_conditions,
)
from credsmith.issuing.fingerprint import fingerprint
from credsmith.reconcile.consumers_report import Report, report
from credsmith.reconcile.expiry import expire_without_spec
from credsmith.reconcile.extras import extras_status
from credsmith.reconcile.layout import key_id_of
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.policy import next_rotation
from credsmith.reconcile.snapshots import Decision, Event, ResourceSnapshot
from credsmith.reconcile.trust import Credential

_READY_MESSAGES = {
    Reason.ISSUED: "Issued revision {revision} into Secret {secret}",
    Reason.ROTATED: "Rotated to revision {revision} in Secret {secret}",
    Reason.REISSUED: "Re-issued revision {revision} into Secret {secret}",
}


def conclude(p: Pass) -> Decision:
    """The last stage: status, Events, the next look and the rollouts, around the Secret to
    write (desired_secret.write_secret)."""
    spec, valid, credential, written = p.spec, p.valid, p.credential, p.written
    # A rotation that waits happens when the wait ends: that is the next rotation.
    rotation_at = p.waiting.until if p.waiting else next_rotation(credential, spec, p.spread)
    status = ready_status(
        p.resource, spec, p.now, valid.secret_name, valid.type, credential, p.change, rotation_at
    )
    if p.waiting is not None:
        status = _with_waiting(p.resource, status, p.now, p.waiting.message)
        if p.request is not None and p.request != credential.state.rotate_request:
            status["pendingRotateRequest"] = p.request  # remembered until it is acted on
    previous_expires_at = written.previous_expires_at if written is not None else None
    wake = [t for t in (rotation_at, previous_expires_at) if t is not None]
    status, events, poll = _with_followers(p, status)
    wake += [poll] if poll is not None else []
    status.update(p.rules.extra_status(spec))
    if written is not None and written.extras:
        status["extraSecrets"] = extras_status(written.extras)
    if p.duplicate_of is not None:
        status, duplicate_events = not_ready(
            p.resource,
            status,
            p.now,
            Reason.DUPLICATE_CLIENT_ID,
            f"client ID {credential.client_id} is also used by {p.resource.kind} "
            f"{p.duplicate_of}, created earlier, in the same registry: only that one is listed "
            "in it",
        )
        events += duplicate_events
    return Decision(
        status=status,
        secret=p.manifest if p.write else None,
        create=p.secret is None,
        events=events,
        requeue_at=min(wake) if wake else None,
        summary=events[0].message if events else ("Secret updated" if p.write else ""),
        rollouts=p.followers.rollouts if p.seen is not None and p.followers is not None else (),
        registration=p.registration,
    )


def _with_followers(
    p: Pass, status: dict[str, Any]
) -> tuple[dict[str, Any], tuple[Event, ...], datetime | None]:
    """status.consumers and its condition, the consumers' Events and when to poll them."""
    if p.seen is None or p.followers is None:
        return status, p.events, None
    credential = p.credential
    followed = report(
        p.seen,
        p.followers,
        credential.state,
        p.spec.rotation.overlap_duration,
        p.had_previous,
        credential.previous is not None,
        p.now,
    )
    status = with_consumers(p.resource, status, p.now, followed)
    return status, (*p.events, *followed.events), followed.wake


def _with_waiting(
    resource: ResourceSnapshot, status: dict[str, Any], now: datetime, message: str
) -> dict[str, Any]:
    """Reconciling=True while a rotation waits; Ready stays as it is (the credential in the
    Secret is fine). lastTransitionTime is kept from the stored condition while it holds."""
    stored = find_condition(conditions_of(resource), ConditionType.RECONCILING)
    conditions = [Condition.model_validate(c) for c in status["conditions"]]
    if stored is not None and stored.reason == Reason.ROTATION_WAITING.value:
        conditions.append(stored)
    conditions = with_condition(
        conditions, resource, now, ConditionType.RECONCILING, True, Reason.ROTATION_WAITING, message
    )
    return {**status, "conditions": [c.to_wire() for c in conditions]}


def stop(p: Pass, reason: Reason, message: str, recheck: datetime | None = None) -> Decision:
    """A pass ends early: Ready=False (failed), and an expired previous value still retires
    (expiry.expire_without_spec)."""
    retire, expires = expire_without_spec(p.secret, p.owner, p.now, p.state_key, p.scope, p.posing)
    wake = min((t for t in (recheck, expires) if t is not None), default=None)
    return failed(p.resource, p.now, reason, message, wake, retire)


def ready_status(
    resource: ResourceSnapshot,
    spec: CredentialSpec,
    now: datetime,
    secret_name: str,
    type_: CredentialType,
    credential: Credential,
    change: Reason | None,
    next_rotation: datetime | None,
) -> dict[str, Any]:
    state = credential.state
    conditions = conditions_of(resource)
    reason = change or _settled_reason(conditions, state.revision, resource.status)
    message = _READY_MESSAGES[reason].format(revision=state.revision, secret=secret_name)
    conditions = with_condition(
        conditions, resource, now, ConditionType.READY, True, reason, message
    )
    # ConsumersRolledOut is set again by with_consumers while there are consumers, and
    # Reconciling by _with_waiting while a rotation waits (the runtime drops its own).
    # Registered by registration.apply_outcome while spec.identityProvider names a provider.
    gone = {ConditionType.STALLED, ConditionType.CONSUMERS_ROLLED_OUT, ConditionType.RECONCILING}
    if spec.identity_provider is None:
        gone.add(ConditionType.REGISTERED)
    conditions = [c for c in conditions if c.type not in gone]
    status: dict[str, Any] = {
        "observedGeneration": resource.generation,
        "conditions": [c.to_wire() for c in conditions],
        "clientId": credential.client_id,
        "secretName": secret_name,
        "revision": state.revision,
        "issuedAt": format_timestamp(state.issued_at),
        "rotatedAt": format_timestamp(state.rotated_at),
        "fingerprint": fingerprint(credential.value),
        "parameters": spec.parameters().to_wire(),  # type: ignore[attr-defined]
    }
    if next_rotation is not None:
        status["nextRotationAt"] = format_timestamp(next_rotation)
    if state.previous_expires_at is not None:
        status["previousExpiresAt"] = format_timestamp(state.previous_expires_at)
    if (key_id := key_id_of(type_, credential.value)) is not None:
        status["keyId"] = key_id
    if state.client_uuid is not None:
        status["id"] = state.client_uuid
    if state.rotate_request is not None:
        status["lastRotateRequest"] = state.rotate_request
    return status


def with_consumers(
    resource: ResourceSnapshot, status: Mapping[str, Any], now: datetime, report: Report
) -> dict[str, Any]:
    """`status` with status.consumers and the ConsumersRolledOut condition (which never
    changes Ready: a credential is usable whether or not its consumers have caught up)."""
    stored = conditions_of(resource)
    previous = find_condition(stored, ConditionType.CONSUMERS_ROLLED_OUT)
    conditions = [Condition.model_validate(c) for c in status["conditions"]]
    if previous is not None:  # keep its lastTransitionTime while its status holds
        conditions.append(previous)
    conditions = with_condition(
        conditions,
        resource,
        now,
        ConditionType.CONSUMERS_ROLLED_OUT,
        report.ok,
        report.reason,
        report.message,
    )
    updated = dict(status)
    updated["conditions"] = [c.to_wire() for c in conditions]
    updated["consumers"] = [dict(s) for s in report.statuses]
    return updated


def not_ready(
    resource: ResourceSnapshot,
    status: Mapping[str, Any],
    now: datetime,
    reason: Reason,
    message: str,
) -> tuple[dict[str, Any], tuple[Event, ...]]:
    """`status` with Ready=False and Stalled=True for `reason`, and a Warning Event when the
    reason or message is new (not on every pass)."""
    # From the stored status, so that lastTransitionTime moves only on a real transition.
    conditions = conditions_of(resource)
    before = find_condition(conditions, ConditionType.READY)
    conditions = with_condition(
        conditions, resource, now, ConditionType.READY, False, reason, message
    )
    conditions = with_condition(
        conditions, resource, now, ConditionType.STALLED, True, reason, message
    )
    # A rotation waits no more: the pass stopped before deciding one.
    conditions = [c for c in conditions if c.reason != Reason.ROTATION_WAITING.value]
    failed = dict(status)
    failed["observedGeneration"] = resource.generation
    failed["conditions"] = [c.to_wire() for c in conditions]
    is_new = before is None or before.reason != reason or before.message != message
    return failed, ((Event("Warning", reason.value, message),) if is_new else ())


def failed(
    resource: ResourceSnapshot,
    now: datetime,
    reason: Reason,
    message: str,
    requeue_at: datetime | None = None,
    secret: Mapping[str, Any] | None = None,
) -> Decision:
    """Ready=False (and kstatus Stalled=True). The Secret is left as it is, but for `secret`:
    the same Secret without a previous value that expired (which never waits for a fix)."""
    status, events = not_ready(resource, resource.status, now, reason, message)
    return Decision(
        status=status,
        secret=secret,
        events=events,
        requeue_at=requeue_at,
        summary=f"{reason.value}: {message}" if events else "",
    )


def conditions_of(resource: ResourceSnapshot) -> list[Condition]:
    return stored_conditions(resource.status)


def validation_message(exc: ValidationError) -> str:
    """Field paths and pydantic's messages; never the input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(["spec", *(str(p) for p in error["loc"])])
        parts.append(f"{path}: {error['msg']}")
    return "; ".join(parts)


def _settled_reason(
    conditions: list[Condition], revision: int, status: Mapping[str, Any]
) -> Reason:
    """Ready's reason when nothing happened in this pass: keep the last one, if it was
    about this revision (not when adopting a Secret written just before a crash)."""
    ready = find_condition(conditions, ConditionType.READY)
    if (
        ready is not None
        and ready.status == ConditionStatus.TRUE
        and ready.reason in (Reason.ISSUED, Reason.ROTATED, Reason.REISSUED)
        and status.get("revision") == revision
    ):
        return Reason(ready.reason)
    return Reason.ISSUED if revision == 1 else Reason.ROTATED


def with_condition(
    conditions: list[Condition],
    resource: ResourceSnapshot,
    now: datetime,
    type_: ConditionType,
    ok: bool,
    reason: Reason,
    message: str,
) -> list[Condition]:
    """`conditions` with `type_` set (True when `ok`) for the resource's generation."""
    condition = Condition(
        type=type_.value,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        observed_generation=resource.generation,
        reason=reason.value,
        message=message,
    )
    return list(set_condition(conditions, condition, now))
