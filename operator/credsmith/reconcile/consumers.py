"""Consumers follow rotation: which workloads to roll, how long the previous value stays,
and what status says of them. Pure: (what the runtime saw of the workloads, the credential,
the time) -> a plan.

Rules:
- Each spec.consumers entry is read on its own and each workload rolled on its own: one that
  cannot be read (refused, missing, a selector the API server rejects) or rolled is that
  entry's status.consumers message, and never stops the others, nor issuing, rotating or
  retiring.
- Only a workload whose pod template uses the credential's Secret is rolled (rollouts.py
  uses_secret: its owner's consent); any other one matched is listed as not using it, left
  alone, and holds no previous value.
- A workload is rolled once per revision (status.consumers remembers it, should its
  annotation be undone), and only while the previous value is still in the Secret (so that
  its old pods keep working while new ones start), and only once the Secret holds the new
  value (a pass that writes the Secret rolls nothing; the next one does).
- A workload created after the current value was issued (CREATION_MARGIN after, for clocks
  and whole seconds) started with it: it is recorded without a restart. So is every workload
  when there is no previous value to move off.
- The previous value retires at previousExpiresAt; while a workload rolled to this revision
  has not finished (or the API server refuses to let us read or roll the consumers, so that
  they may all still run it), it stays, but never past twice rotation.overlap after the
  rotation. The extension is written to the Secret (previousExpiresAt), so the registry and
  JWK Set, which follow the Secret, keep the previous hash or key exactly as long.
- Credentials that share a workload and rotate within a short window roll it once: the
  runtime may hold a rollout (ConsumersSeen.roll_held, decided in shared_rollouts.py); a
  held workload is not rolled yet, lags (so it holds the previous value), and keeps its
  last recorded revision in status, so that a restart loses nothing.
- The report (status.consumers, the condition, the next look) is consumers_report.py; the
  spread of scheduled rotations is rotation_spread.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from credsmith.api.consumers import MAX_CONSUMER_MESSAGE
from credsmith.api.status import Reason, format_timestamp
from credsmith.reconcile.consumers_report import (
    ROLLOUT_POLL,
    ROLLOUT_POLL_MAX,
    ROLLOUT_SOON,
    some_names,
)
from credsmith.reconcile.consumers_seen import ConsumersSeen, Failure, Unread
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.rollouts import Workload
from credsmith.reconcile.rotation_spread import (
    ROTATION_SPREAD,
    ROTATION_SPREAD_MAX,
    rotation_spread,
)
from credsmith.reconcile.secret_state import SecretState
from credsmith.reconcile.snapshots import Event

# The types of what the runtime saw live in consumers_seen.py, the constants of the polls in
# consumers_report.py and the spread in rotation_spread.py; importers may name them here.
__all__ = [
    "ROLLOUT_POLL",
    "ROLLOUT_POLL_MAX",
    "ROLLOUT_SOON",
    "ROTATION_SPREAD",
    "ROTATION_SPREAD_MAX",
    "ConsumerPlan",
    "ConsumersSeen",
    "Failure",
    "Rollout",
    "Unread",
    "bounded_expiry",
    "plan_consumers",
    "recorded_revisions",
    "retirement",
    "rotation_spread",
]
if TYPE_CHECKING:
    from credsmith.reconcile.trust import Credential

# A workload's creationTimestamp has whole seconds and the API server's clock; rotatedAt has
# whole seconds and ours. One created up to this long after the rotation may still have
# started with the previous value, so it is rolled: a needless restart costs less than a pod
# left holding a value that expires.
CREATION_MARGIN = timedelta(seconds=2)


@dataclass(frozen=True)
class Rollout:
    workload: Workload
    revision: int


@dataclass(frozen=True)
class ConsumerPlan:
    rollouts: tuple[Rollout, ...]
    statuses: tuple[dict[str, Any], ...]
    lagging: tuple[Workload, ...]  # rolled to this revision by us, not finished
    in_flight: bool
    # Rollouts wait for the Secret to hold the value this pass writes: look again at once.
    deferred: bool = False
    # The workloads that use the Secret (the others are listed, not followed), and how many
    # of them have rolled out to this revision.
    followed: int = 0
    rolled_out: int = 0
    # Rollouts held to be made with other credentials' (ConsumersSeen.roll_held): look
    # again when the first of them is due.
    held_until: datetime | None = None


def follow_consumers(p: Pass) -> Pass:
    """The stage: which consumers to roll, and the previous value held while they lag."""
    credential = p.credential
    had_previous = credential.previous is not None
    if p.seen is None:
        return replace(p, had_previous=had_previous)
    # Rolled only once the Secret already holds this value (a pass that issues it rolls
    # nothing: the next one, set off by the Secret's change, does).
    settled = p.checked is not None and p.change is None
    recorded = recorded_revisions(p.resource.status)
    followers = plan_consumers(p.seen, credential.state, had_previous, settled, recorded)
    held: tuple[Event, ...] = ()
    if had_previous:
        overlap, lagging = p.spec.rotation.overlap_duration, followers.lagging
        state, held = retirement(credential.state, overlap, lagging, p.now, p.seen.refused)
        credential = replace(credential, state=state)
    return replace(
        p,
        credential_=credential,
        had_previous=had_previous,
        followers=followers,
        events=p.with_events(*held),
    )


def held_until(p: Pass, credential: Credential) -> datetime | None:
    """When the previous value retires if this pass
    does not rotate: previousExpiresAt, moved out while consumers lag (retirement)."""
    state = credential.state
    if credential.previous is None or state.previous_expires_at is None:
        return None
    if p.seen is None:
        return state.previous_expires_at
    # As follow_consumers would plan it for a pass that keeps the value in the Secret.
    settled = p.checked is not None
    recorded = recorded_revisions(p.resource.status)
    plan = plan_consumers(p.seen, state, True, settled, recorded)
    overlap = p.spec.rotation.overlap_duration
    held, _ = retirement(state, overlap, plan.lagging, p.now, p.seen.refused)
    return held.previous_expires_at


def plan_consumers(
    seen: ConsumersSeen,
    state: SecretState,
    has_previous: bool,
    settled: bool,
    recorded: Mapping[tuple[str, str], int] | None = None,
) -> ConsumerPlan:
    """`settled`: the Secret already holds this revision and this pass does not write it.
    `recorded`: the revision status.consumers last gave each workload (recorded_revisions).
    Each workload is decided on its own: one that cannot be read or rolled changes nothing
    for the others."""
    recorded = recorded or {}
    revision = state.revision
    rollouts: list[Rollout] = []
    statuses = [_unread_status(unread, recorded) for unread in seen.unread]
    followed: list[dict[str, Any]] = []
    lagging: list[Workload] = []
    deferred = False
    held_until: datetime | None = None
    for workload in sorted(seen.workloads, key=lambda w: (w.kind.value, w.name)):
        if not workload.uses_secret:
            # No consent: never rolled, and it holds no previous value.
            statuses.append(_status(workload, 0, False, _not_using(seen.secret_name)))
            continue
        failure = seen.roll_failures.get(workload.key)
        held = seen.roll_held.get(workload.key)
        message = None
        # Rolled once per revision: by its annotation, or by status when someone took the
        # annotation away since (`kubectl rollout undo`, a replace): its pods restart anyway.
        if workload.rolled_to == revision or recorded.get(workload.key) == revision:
            entry = _status(workload, revision, workload.complete)
            if not workload.complete:
                lagging.append(workload)
        elif _started_before(workload, state.rotated_at) and (
            has_previous or 0 < recorded.get(workload.key, revision) < revision
        ):
            # It may hold an older value: during an overlap, or (no overlap, or a re-issue)
            # when status last saw it at an older revision.
            if settled and failure is None and held is None:
                rollouts.append(Rollout(workload, revision))
                # Rolled now, so not finished: the previous value stays for it.
                lagging.append(replace(workload, complete=False, progress="rolling out now"))
                entry = _status(workload, revision, False)
            else:
                deferred = deferred or (failure is None and held is None)
                if failure is not None:
                    # Refused, so not rolled: it has not finished either.
                    lagging.append(replace(workload, complete=False, progress="not rolled"))
                    message = f"not rolled: {failure.message}"
                elif held is not None:
                    # Held to roll once with other credentials: not rolled yet, so it lags.
                    when = format_timestamp(held)
                    lagging.append(
                        replace(workload, complete=False, progress=f"to be rolled by {when}")
                    )
                    message = (
                        f"to be rolled by {when}, at once with the other credentials that use "
                        "it and rotate now"
                    )
                    held_until = held if held_until is None else min(held_until, held)
                known = recorded.get(workload.key) or workload.rolled_to or 0
                # Past this revision is no revision of ours (the annotation is anyone's to
                # write): never rolled. Not this revision either, which would read as rolled.
                known = known if known < revision else 0
                entry = _status(workload, known, False, message)
        else:
            entry = _status(workload, revision, workload.complete)  # started with this value
        statuses.append(entry)
        followed.append(entry)
    # A refusal is looked at again too: granting the permission needs no restart.
    in_flight = seen.refused is not None or any(not s["rolledOut"] for s in followed)
    return ConsumerPlan(
        tuple(rollouts),
        tuple(statuses),
        tuple(lagging),
        in_flight,
        deferred,
        followed=len(followed),
        rolled_out=sum(1 for s in followed if s["rolledOut"]),
        held_until=held_until,
    )


def retirement(
    state: SecretState,
    overlap: timedelta | None,
    lagging: tuple[Workload, ...],
    now: datetime,
    refused: str | None = None,
) -> tuple[SecretState, tuple[Event, ...]]:
    """The state with previousExpiresAt moved while consumers lag: out to twice the overlap
    after the rotation when one lags at the expiry, back to now once none does. Consumers
    that cannot be read or rolled (`refused`) may all still run the previous value: they
    hold it as lagging ones do."""
    expires = state.previous_expires_at
    if expires is None or overlap is None:
        return state, ()
    due = state.rotated_at + overlap
    latest = state.rotated_at + 2 * overlap
    if now < due:
        return state, ()
    held = bool(lagging) or refused is not None
    if held and expires < latest and now < latest:
        if lagging:
            names = some_names([f"{w.ref} ({w.progress})" for w in lagging])
            why = f"{names} has not finished rolling out to revision {state.revision}"
        else:
            why = f"the consumers cannot be seen rolling out to revision {state.revision}"
        if refused is not None:
            why += f" ({refused})"
        message = (
            f"{why}: the previous value stays valid until it has, at most until "
            f"{format_timestamp(latest)}"
        )
        event = Event("Warning", Reason.CONSUMERS_LAGGING.value, message)
        return replace(state, previous_expires_at=latest), (event,)
    if not held and expires > due:
        return replace(state, previous_expires_at=now), ()
    return state, ()


def bounded_expiry(state: SecretState, overlap: timedelta | None) -> tuple[SecretState, str | None]:
    """previousExpiresAt as read from the Secret, checked: never later than twice the overlap
    after the rotation (the longest consumers may hold it), or it is moved back."""
    expires = state.previous_expires_at
    if expires is None or overlap is None:
        return state, None
    latest = state.rotated_at + 2 * overlap
    if expires <= latest:
        return state, None
    problem = (
        "its previous value's expiry was later than twice rotation.overlap after the "
        "rotation and was moved back"
    )
    return replace(state, previous_expires_at=latest), problem


def recorded_revisions(status: Mapping[str, Any]) -> dict[tuple[str, str], int]:
    """status.consumers as (kind, name) -> revision; entries of the wrong shape are skipped
    (status is ours, but read back like everything else)."""
    found: dict[tuple[str, str], int] = {}
    entries = status.get("consumers")
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        kind, name, revision = entry.get("kind"), entry.get("name"), entry.get("revision")
        if (
            isinstance(kind, str)
            and isinstance(name, str)
            and isinstance(revision, int)
            and not isinstance(revision, bool)
            and revision >= 0
        ):
            found[(kind, name)] = revision
    return found


def _started_before(workload: Workload, rotated_at: datetime) -> bool:
    # Unknown creation time: it may hold the old value, so roll it.
    return workload.created_at is None or workload.created_at < rotated_at + CREATION_MARGIN


def _status(
    workload: Workload, revision: int, rolled_out: bool, message: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": workload.kind.value,
        "name": workload.name,
        "revision": revision,
        "rolledOut": rolled_out,
    }
    if message is not None:
        entry["message"] = _bounded(message)
    return entry


def _unread_status(unread: Unread, recorded: Mapping[tuple[str, str], int]) -> dict[str, Any]:
    """The status.consumers entry of a spec.consumers entry that could not be read."""
    entry: dict[str, Any] = {"kind": unread.kind.value}
    if unread.name is not None:
        entry["name"] = unread.name
    else:
        entry["selector"] = _bounded(unread.selector or "")
    entry["revision"] = recorded.get((unread.kind.value, unread.name or ""), 0)
    entry["rolledOut"] = False
    entry["message"] = _bounded(unread.message)
    return entry


def _not_using(secret_name: str) -> str:
    return (
        f"does not use Secret {secret_name} (no env secretKeyRef, envFrom secretRef, secret "
        "or projected volume of its pod template names it): not rolled"
    )


def _bounded(message: str) -> str:
    # status.consumers[].message has a maxLength (the API server's messages can be long).
    if len(message) <= MAX_CONSUMER_MESSAGE:
        return message
    return message[: MAX_CONSUMER_MESSAGE - 3] + "..."
