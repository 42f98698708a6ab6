"""What status, Events and the work queue are told of a credential's consumers after a pass:
status.consumers, the ConsumersRolledOut condition, and when to read the workloads again.
Pure: from the plan of consumers.py and the state after retirement.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from credsmith.api.consumers import MAX_CONSUMER_STATUSES
from credsmith.api.status import Reason, format_timestamp
from credsmith.reconcile.consumers_seen import FORBIDDEN, ConsumersSeen
from credsmith.reconcile.secret_state import SecretState
from credsmith.reconcile.snapshots import Event

if TYPE_CHECKING:
    from credsmith.reconcile.consumers import ConsumerPlan, Rollout

# While a rollout is in flight its workload is read again this often (no watch on workloads:
# the operator caches none), then less and less often once the previous value is gone.
ROLLOUT_POLL = timedelta(seconds=10)
# After the pass that wrote a new value (its Secret's echo sets off no pass of its own).
ROLLOUT_SOON = timedelta(seconds=1)
ROLLOUT_POLL_MAX = timedelta(minutes=10)


@dataclass(frozen=True)
class Report:
    """What status and the work queue are told of the consumers after a pass."""

    statuses: tuple[dict[str, Any], ...]
    ok: bool
    reason: Reason
    message: str
    events: tuple[Event, ...]
    wake: datetime | None


def report(
    seen: ConsumersSeen,
    plan: ConsumerPlan,
    state: SecretState,
    overlap: timedelta | None,
    had_previous: bool,
    has_previous: bool,
    now: datetime,
) -> Report:
    """status.consumers, the ConsumersRolledOut condition, Events and the next look, given the
    state after retirement (`has_previous`: the previous value is still in the Secret)."""
    events: list[Event] = []
    if event := rollout_event(plan.rollouts):
        events.append(event)
    held = (
        has_previous
        and overlap is not None
        and state.previous_expires_at is not None
        and state.previous_expires_at > state.rotated_at + overlap
    )
    ok, reason, message = _condition(seen, plan, state, has_previous, held)
    if had_previous and not has_previous and (plan.lagging or seen.refused is not None):
        # While refused the condition says ConsumersForbidden; the Event says what retired.
        retired = message
        if seen.refused is not None:
            retired = (
                f"the previous value has retired while the consumers could not be rolled to "
                f"revision {state.revision} ({seen.refused})"
            )
        events.append(Event("Warning", Reason.PREVIOUS_RETIRED_WHILE_LAGGING.value, retired))
    # status.consumers is bounded: the rest are rolled all the same, and counted.
    listed = plan.statuses[:MAX_CONSUMER_STATUSES]
    return Report(
        listed, ok, reason, message, tuple(events), poll_at(plan, state, has_previous, now)
    )


def _condition(
    seen: ConsumersSeen, plan: ConsumerPlan, state: SecretState, has_previous: bool, held: bool
) -> tuple[bool, Reason, str]:
    revision = state.revision
    found, done = plan.followed, plan.rolled_out
    tail = ""
    if seen.missing:
        tail += f"; not found: {some_names(seen.missing)}"
    if unused := [w.ref for w in seen.workloads if not w.uses_secret]:
        tail += f"; not using the Secret, so not rolled: {some_names(unused)}"
    if seen.refused is not None:
        unread = [u for u in seen.unread if not u.missing]
        forbidden = any(u.status in FORBIDDEN for u in unread) or any(
            f.forbidden for f in seen.roll_failures.values()
        )
        if forbidden:
            return False, Reason.CONSUMERS_FORBIDDEN, f"consumers cannot be rolled: {seen.refused}"
        return False, Reason.CONSUMERS_FAILED, f"consumers cannot be rolled: {seen.refused}"
    names = some_names([f"{w.ref} ({w.progress})" for w in plan.lagging])
    expires = state.previous_expires_at
    if plan.lagging and held and expires is not None:
        return (
            False,
            Reason.CONSUMERS_LAGGING,
            f"{names} has not finished rolling out to revision {revision}: the previous value "
            f"stays valid until {format_timestamp(expires)} at the latest{tail}",
        )
    if plan.lagging and not has_previous:
        return (
            False,
            Reason.PREVIOUS_RETIRED_WHILE_LAGGING,
            f"the previous value has retired while {names} had not finished rolling out to "
            f"revision {revision}{tail}",
        )
    if done < found:
        return (
            False,
            Reason.ROLLING_OUT,
            f"{done} of {found} consumers rolled out to revision {revision}{tail}",
        )
    return True, Reason.ROLLED_OUT, f"{found} consumers rolled out to revision {revision}{tail}"


def some_names(refs: list[str] | tuple[str, ...], shown: int = 5) -> str:
    """A few names, and how many more (a selector may match hundreds)."""
    more = f" and {len(refs) - shown} more" if len(refs) > shown else ""
    return ", ".join(refs[:shown]) + more


def poll_at(
    plan: ConsumerPlan, state: SecretState, has_previous: bool, now: datetime
) -> datetime | None:
    """When to read the workloads again: soon while a rollout is in flight and the previous
    value is kept for it, then less often; never once every rollout has finished."""
    if not plan.in_flight:
        return None
    if plan.deferred:
        return now + ROLLOUT_SOON
    if plan.held_until is not None:
        return max(plan.held_until, now)  # rolled then (or sooner, by another's pass)
    if has_previous:
        return now + ROLLOUT_POLL
    since = max(now - state.rotated_at, timedelta(0))
    return now + min(max(ROLLOUT_POLL, since / 4), ROLLOUT_POLL_MAX)


def rollout_event(rollouts: tuple[Rollout, ...]) -> Event | None:
    if not rollouts:
        return None
    names = ", ".join(r.workload.ref for r in rollouts)
    return Event("Normal", "RollingOut", f"Rolling out {names} to revision {rollouts[0].revision}")
