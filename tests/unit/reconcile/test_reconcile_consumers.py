"""Consumers follow rotation, through reconcile(): each stale workload is rolled once per
revision (only once the Secret holds the new value), status.consumers and the
ConsumersRolledOut condition follow them, the previous value stays while one lags (at most
twice the overlap after the rotation), and rotations of credentials with consumers are
spread by UID.

The World of conftest.py runs the passes; `Fleet` stands in for the workloads the runtime
reads, and applies each Decision's rollouts the way the runtime patches them."""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from credsmith.api.consumers import MAX_CONSUMER_MESSAGE, MAX_CONSUMER_STATUSES
from credsmith.api.enums import WorkloadKind
from credsmith.api.status import format_timestamp, parse_timestamp
from credsmith.reconcile.consumers import (
    CREATION_MARGIN,
    ROLLOUT_POLL,
    ROTATION_SPREAD_MAX,
    ConsumersSeen,
    Failure,
    Unread,
    rotation_spread,
)
from credsmith.reconcile.credential import checked_credential, reconcile
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.rollouts import Workload
from credsmith.reconcile.secret_state import PREVIOUS_EXPIRES_AT
from credsmith.reconcile.snapshots import Decision
from tests.state_key import TEST_STATE_KEY

HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)
WEB = {"kind": "Deployment", "name": "web"}
SA = {"serviceAccount": "billing-exporter", "rotation": {"overlap": "1h"}, "consumers": [WEB]}
CLIENT = {
    "displayName": "Reporting",
    "rotation": {"overlap": "1h"},
    "consumers": [WEB, {"kind": "StatefulSet", "selector": {"matchLabels": {"app": "db"}}}],
}


@dataclass
class Fleet:
    """The consumer workloads as the runtime would read them, and the API server's answers
    to its rollouts."""

    workloads: dict[str, Workload] = field(default_factory=dict)
    # Every rollout refused with this message (403), or only those of some workloads.
    refused: str | None = None
    refusals: dict[str, str] = field(default_factory=dict)
    # spec.consumers entries that could not be read.
    unread: list[Unread] = field(default_factory=list)
    patches: list[tuple[str, int]] = field(default_factory=list)  # every rollout made
    # Rollouts the runtime holds to make them once with other credentials': ref -> until.
    hold: dict[str, datetime] = field(default_factory=dict)
    held: dict[tuple[str, str], datetime] = field(default_factory=dict)  # of the last pass

    def add(
        self,
        name: str,
        created_at: datetime | None,
        kind: WorkloadKind = WorkloadKind.DEPLOYMENT,
        rolled_to: int | None = None,
        complete: bool = True,
        uses_secret: bool = True,
    ) -> Workload:
        workload = Workload(
            kind, name, rolled_to, created_at, complete, "1 of 1 updated", uses_secret
        )
        self.workloads[workload.ref] = workload
        return workload

    def seen(self) -> ConsumersSeen:
        return ConsumersSeen(
            workloads=tuple(self.workloads.values()),
            unread=tuple(self.unread),
            secret_name="billing",
        )

    def roll(self, decision: Decision) -> dict[tuple[str, str], Failure]:
        """The runtime's patches, each on its own: the annotation set and the rollout begun
        (not complete), or the API server's refusal of that one."""
        failures: dict[tuple[str, str], Failure] = {}
        self.held = {}
        for rollout in decision.rollouts:
            ref = rollout.workload.ref
            if ref in self.hold:
                self.held[rollout.workload.key] = self.hold[ref]
                continue
            refusal = self.refusals.get(ref, self.refused)
            if refusal is not None:
                failures[rollout.workload.key] = Failure(403, refusal)
                continue
            self.patches.append((ref, rollout.revision))
            self.workloads[ref] = replace(
                self.workloads[ref],
                rolled_to=rollout.revision,
                complete=False,
                progress="0 of 1 updated, 0 available",
            )
        return failures

    def finish(self, ref: str = "Deployment/web") -> None:
        self.workloads[ref] = replace(self.workloads[ref], complete=True, progress="done")

    def get(self, ref: str = "Deployment/web") -> Workload:
        return self.workloads[ref]


def step(w: Any, fleet: Fleet | None, advance: timedelta | None = None) -> Decision:
    """World.step, with what the runtime saw of the consumers passed in; the Decision's
    rollouts are made on the fleet as the runtime makes them, and when some are refused the
    pass is decided again with the refusals known (runtime/credential_pass.py): the Secret the
    first decision wrote stands, and status and Events are the second's."""
    if advance is not None:
        w.advance(advance)
    resource, secret = w.snapshot(), w.secret_snapshot()
    before = (copy.deepcopy(w.resource), copy.deepcopy(w.secret))
    seen = fleet.seen() if fleet is not None else None
    decision = reconcile(
        w.rules,
        resource,
        secret,
        w.now,
        None,
        seen,
        generate=w._recording(),
        state_key=TEST_STATE_KEY,
    )
    assert before == (w.resource, w.secret), "reconcile changed its input"
    w._check(decision, resource, secret)
    if fleet is not None and seen is not None and decision.rollouts:
        failures = fleet.roll(decision)
        if failures or fleet.held:
            again = reconcile(
                w.rules,
                resource,
                secret,
                w.now,
                None,
                seen.with_roll_failures(failures).with_roll_held(fleet.held),
                generate=w._recording(),
                state_key=TEST_STATE_KEY,
            )
            w._check(again, resource, secret)
            # The controller does not write the Secret twice: it must not need to.
            assert again.secret == decision.secret
            assert not {r.workload.key for r in again.rollouts} & (failures.keys() | fleet.held)
            decision = again
    assert before == (w.resource, w.secret), "reconcile changed its input"
    w._apply(decision)
    w.decisions.append(decision)
    return decision


def consumers_condition(w: Any) -> tuple[str, str, str]:
    condition = w.condition("ConsumersRolledOut")
    # Every caller indexes or unpacks the result: a missing condition fails the test either way.
    assert condition is not None, "no ConsumersRolledOut condition"
    return condition["status"], condition["reason"], condition["message"]


def started(w: Any, *names: str) -> tuple[Any, Fleet]:
    """A World with its credential issued (revision 1) and the named Deployments running
    since the day before."""
    fleet = Fleet()
    for name in names:
        fleet.add(name, w.now - 24 * HOUR)
    step(w, fleet)
    assert w.status["revision"] == 1
    return w, fleet


def rotate(w: Any, fleet: Fleet, request: str = "r1") -> Decision:
    w.request_rotation(request)
    return step(w, fleet)


def previous_expiry(w: Any) -> datetime:
    return parse_timestamp(w.secret["metadata"]["annotations"][PREVIOUS_EXPIRES_AT])


def has_previous_value(w: Any) -> bool:
    return "client_secret_previous" in w.data()


# ---- one revision, one rollout --------------------------------------------------------


def test_first_issue_rolls_nothing_and_records_the_workload(world):
    w, fleet = started(world(SA), "web")
    first = w.decisions[0]
    assert first.rollouts == ()
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 1, "rolledOut": True}
    ]
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    assert fleet.get().rolled_to is None  # never patched


@pytest.mark.parametrize(
    ("spec", "rules"),
    [(SA, None), (CLIENT, API_CLIENT)],
    ids=["ServiceAccountCredential", "ApiClient"],
)
def test_rotation_then_one_rollout_per_stale_workload(world, spec, rules):
    w = world(spec, **({"rules": rules} if rules else {}))
    fleet = Fleet()
    fleet.add("web", w.now - 24 * HOUR)
    fleet.add("db-0", w.now - 24 * HOUR, kind=WorkloadKind.STATEFUL_SET)
    step(w, fleet)
    old = w.data()["client_secret"]

    # The pass that writes the new value rolls nothing.
    w.advance(HOUR)
    rotation = rotate(w, fleet)
    assert rotation.secret is not None
    assert w.status["revision"] == 2
    assert rotation.rollouts == ()
    assert [e.reason for e in rotation.events] == ["Rotated"]
    assert all(not s["rolledOut"] for s in w.status["consumers"])
    assert rotation.requeue_at is not None
    assert rotation.requeue_at <= w.now + ROLLOUT_POLL
    rotated_at = parse_timestamp(w.status["rotatedAt"])

    # The next one (the Secret holds revision 2, the previous value too) rolls each once.
    follow = step(w, fleet, SECOND)
    assert w.data()["client_secret_previous"] == old
    assert follow.secret is None
    assert sorted(r.workload.ref for r in follow.rollouts) == ["Deployment/web", "StatefulSet/db-0"]
    assert {r.revision for r in follow.rollouts} == {2}
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": False},
        {"kind": "StatefulSet", "name": "db-0", "revision": 2, "rolledOut": False},
    ]
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("False", "RollingOut")
    assert "0 of 2" in message
    assert [(e.type, e.reason) for e in follow.events] == [("Normal", "RollingOut")]
    assert "Deployment/web" in follow.events[0].message
    assert w.condition()["status"] == "True"  # Ready does not wait for the consumers
    assert follow.requeue_at is not None
    assert follow.requeue_at <= w.now + ROLLOUT_POLL

    # Rolled already (annotated with revision 2): not rolled again while it progresses.
    again = step(w, fleet, 5 * SECOND)
    assert again.rollouts == ()
    assert again.requeue_at <= w.now + ROLLOUT_POLL
    assert consumers_condition(w)[:2] == ("False", "RollingOut")

    fleet.finish("Deployment/web")
    half = step(w, fleet, 5 * SECOND)
    assert half.rollouts == ()
    assert "1 of 2" in consumers_condition(w)[2]

    fleet.finish("StatefulSet/db-0")
    done = step(w, fleet, 5 * SECOND)
    assert done.rollouts == ()
    assert all(s["rolledOut"] and s["revision"] == 2 for s in w.status["consumers"])
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    # No more polling: the wake-up is the previous value's expiry (no period here).
    assert done.requeue_at == rotated_at + HOUR
    assert w.data()["client_secret_previous"] == old


def test_completed_rollout_wakes_only_for_rotation_or_expiry(world):
    w = world({**SA, "rotation": {"period": "24h", "overlap": "1h"}})
    w, fleet = started(w, "web")
    step(w, fleet, 24 * HOUR + ROTATION_SPREAD_MAX)  # the period elapsed: rotated
    assert w.status["revision"] == 2
    step(w, fleet, SECOND)
    assert fleet.get().rolled_to == 2
    fleet.finish()
    done = step(w, fleet, SECOND)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    expires = parse_timestamp(w.status["previousExpiresAt"])
    assert done.requeue_at is not None
    assert abs(done.requeue_at - expires) < SECOND
    # The previous value expires, and the next wake-up is the next rotation.
    gone = step(w, fleet, HOUR)
    assert not has_previous_value(w)
    assert gone.rollouts == ()
    assert gone.requeue_at is not None
    assert abs(gone.requeue_at - parse_timestamp(w.status["nextRotationAt"])) < SECOND
    assert step(w, fleet, HOUR).events == ()


def test_workload_already_on_the_revision_is_not_rolled(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    fleet.add("web", w.now - 24 * HOUR, rolled_to=2, complete=True)  # someone else's doing
    follow = step(w, fleet, SECOND)
    assert follow.rollouts == ()
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True}
    ]
    assert consumers_condition(w)[:2] == ("True", "RolledOut")


def test_workload_created_after_the_rotation_is_recorded_without_a_rollout(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    fleet.add("late", rotated_at + CREATION_MARGIN + SECOND)
    follow = step(w, fleet, 2 * SECOND)
    assert [r.workload.ref for r in follow.rollouts] == ["Deployment/web"]
    assert {"kind": "Deployment", "name": "late", "revision": 2, "rolledOut": True} in w.status[
        "consumers"
    ]


def test_workload_created_in_the_second_of_the_rotation_is_rolled(world):
    # creationTimestamp and rotatedAt both have whole seconds (and two clocks): a workload
    # created in the rotation's second, or just after, may have started with the old value.
    w, fleet = started(world(SA))
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    fleet.add("same-second", rotated_at)
    fleet.add("just-after", rotated_at + CREATION_MARGIN - SECOND)
    follow = step(w, fleet, SECOND)
    assert sorted(r.workload.ref for r in follow.rollouts) == [
        "Deployment/just-after",
        "Deployment/same-second",
    ]


def test_workload_of_unknown_age_is_rolled(world):
    w, fleet = started(world(SA))
    fleet.add("web", None)
    rotate(w, fleet)
    assert [r.workload.ref for r in step(w, fleet, SECOND).rollouts] == ["Deployment/web"]


def test_without_an_overlap_a_known_consumer_rolls_once_and_holds_nothing(world):
    # No previous value to keep: the workload status last saw at revision 1 runs a value
    # that is gone, so it is rolled (once); nothing is held for it.
    w, fleet = started(world({**SA, "rotation": {}}), "web")
    rotation = rotate(w, fleet)
    assert not has_previous_value(w)
    assert rotation.rollouts == ()
    rolled = step(w, fleet, SECOND)
    assert [(r.workload.name, r.revision) for r in rolled.rollouts] == [("web", 2)]
    assert fleet.get().rolled_to == 2
    assert consumers_condition(w)[:2] == ("False", "PreviousRetiredWhileLagging")
    fleet.finish()
    assert step(w, fleet, HOUR).rollouts == ()
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True}
    ]
    assert consumers_condition(w)[:2] == ("True", "RolledOut")


def test_without_an_overlap_a_consumer_not_seen_before_is_recorded_without_a_restart(world):
    w, fleet = started(world({**SA, "rotation": {}}))
    rotate(w, fleet)
    fleet.add("web", w.now - 24 * HOUR)  # e.g. consumers added to the spec just now
    for decision in (step(w, fleet, SECOND), step(w, fleet, HOUR)):
        assert decision.rollouts == ()
    assert fleet.get().rolled_to is None
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True}
    ]


def test_rotation_during_a_rollout_waits_then_rolls_again_for_the_new_revision(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet, "r1")
    step(w, fleet, SECOND)
    assert fleet.get().rolled_to == 2
    assert rotate(w, fleet, "r2").rollouts == ()
    # The previous value is promised until previousExpiresAt: the rotation waits for it.
    assert w.status["revision"] == 2
    fleet.finish()
    w.now = previous_expiry(w)
    step(w, fleet)
    assert w.status["revision"] == 3
    assert [r.revision for r in step(w, fleet, SECOND).rollouts] == [3]


# ---- the previous value held for a lagging consumer -----------------------------------


def lagging_at_expiry(world: Any) -> tuple[Any, Fleet, datetime, str]:
    w, fleet = started(world(SA), "web")
    old = w.data()["client_secret"]
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    step(w, fleet, SECOND)
    assert fleet.get().rolled_to == 2
    assert not fleet.get().complete
    return w, fleet, rotated_at, old


def test_lagging_consumer_holds_the_previous_value_up_to_twice_the_overlap(world):
    w, fleet, rotated_at, old = lagging_at_expiry(world)
    w.now = rotated_at + HOUR  # previousExpiresAt
    held = step(w, fleet)
    # The Secret written keeps the previous value, with its expiry moved out.
    assert held.secret is not None
    assert w.data()["client_secret_previous"] == old
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    assert w.status["previousExpiresAt"] == format_timestamp(rotated_at + 2 * HOUR)
    warnings = [e for e in held.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["ConsumersLagging"]
    assert "Deployment/web" in warnings[0].message
    assert format_timestamp(rotated_at + 2 * HOUR) in warnings[0].message
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("False", "ConsumersLagging")
    assert "Deployment/web" in message
    assert w.condition()["status"] == "True"
    assert held.requeue_at is not None
    assert held.requeue_at <= w.now + ROLLOUT_POLL

    # Still lagging: held, no second warning, the Secret not rewritten.
    later = step(w, fleet, HOUR / 2)
    assert later.secret is None
    assert has_previous_value(w)
    assert [e.type for e in later.events] == []
    assert consumers_condition(w)[1] == "ConsumersLagging"

    # At twice the overlap the previous value goes, lagging or not.
    w.now = rotated_at + 2 * HOUR
    retired = step(w, fleet)
    assert retired.secret is not None
    assert not has_previous_value(w)
    assert PREVIOUS_EXPIRES_AT not in w.secret["metadata"]["annotations"]
    assert "previousExpiresAt" not in w.status
    assert [(e.type, e.reason) for e in retired.events] == [
        ("Warning", "PreviousRetiredWhileLagging")
    ]
    assert "Deployment/web" in retired.events[0].message
    assert consumers_condition(w)[:2] == ("False", "PreviousRetiredWhileLagging")
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": False}
    ]
    # Still looked at (less often), and never rolled again for this revision.
    assert retired.requeue_at is not None
    assert retired.rollouts == ()
    fleet.finish()
    step(w, fleet, HOUR)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")


def test_completion_after_the_expiry_retires_the_previous_value_at_once(world):
    w, fleet, rotated_at, _ = lagging_at_expiry(world)
    w.now = rotated_at + HOUR
    step(w, fleet)
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    fleet.finish()
    done = step(w, fleet, 10 * SECOND)
    assert done.secret is not None
    assert not has_previous_value(w)
    assert "previousExpiresAt" not in w.status
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    assert [e.type for e in done.events if e.type == "Warning"] == []
    assert done.requeue_at is None


def test_consumer_finishing_before_the_expiry_changes_nothing(world):
    w, fleet, rotated_at, _ = lagging_at_expiry(world)
    fleet.finish()
    step(w, fleet, 10 * SECOND)
    assert previous_expiry(w) == rotated_at + HOUR
    w.now = rotated_at + HOUR
    gone = step(w, fleet)
    assert not has_previous_value(w)
    assert [e.type for e in gone.events if e.type == "Warning"] == []


def test_expiry_edited_past_twice_the_overlap_is_moved_back(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    far = format_timestamp(rotated_at + 30 * HOUR)
    # Authenticated (an earlier operator's bug, say): bounded all the same.
    w.edit_secret_as_operator(
        lambda s: s["metadata"]["annotations"].update({PREVIOUS_EXPIRES_AT: far})
    )
    decision = step(w, fleet, SECOND)
    assert decision.secret is not None
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    assert w.status["previousExpiresAt"] == format_timestamp(rotated_at + 2 * HOUR)
    warnings = [e for e in decision.events if e.type == "Warning"]
    assert len(warnings) == 1
    assert "moved back" in warnings[0].message
    assert has_previous_value(w)


def test_expiry_edited_within_twice_the_overlap_is_kept(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    near = format_timestamp(rotated_at + 90 * timedelta(minutes=1))
    w.edit_secret_as_operator(
        lambda s: s["metadata"]["annotations"].update({PREVIOUS_EXPIRES_AT: near})
    )
    decision = step(w, fleet, SECOND)
    assert previous_expiry(w) == rotated_at + 90 * timedelta(minutes=1)
    assert [e for e in decision.events if e.type == "Warning"] == []


# ---- refusal, removal -----------------------------------------------------------------


def test_forbidden_consumers_leave_ready_and_are_looked_at_again(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    fleet.refused = 'deployments.apps "web" is forbidden: cannot patch'
    refused = step(w, fleet, SECOND)
    assert refused.rollouts == ()
    assert w.condition()["status"] == "True"
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("False", "ConsumersForbidden")
    assert "forbidden" in message
    assert refused.requeue_at is not None
    assert refused.requeue_at <= w.now + ROLLOUT_POLL
    # The permission granted: the next pass rolls, no restart needed.
    fleet.refused = None
    assert [r.workload.ref for r in step(w, fleet, 10 * SECOND).rollouts] == ["Deployment/web"]
    assert consumers_condition(w)[:2] == ("False", "RollingOut")


@pytest.mark.parametrize("known", [True, False], ids=["patch-refused", "read-refused"])
def test_forbidden_consumers_hold_the_previous_value_up_to_twice_the_overlap(world, known):
    # Consumers we may not roll (or not even read) may all still run the previous value:
    # it is held as for a lagging rollout, and retired at twice the overlap.
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    if known:
        fleet.refused = 'deployments.apps "web" is forbidden'
    else:
        fleet.workloads.clear()  # a refused read finds nothing
        fleet.unread = [Unread(WorkloadKind.DEPLOYMENT, "web", None, 403, "web is forbidden")]
    step(w, fleet, SECOND)
    assert previous_expiry(w) == rotated_at + HOUR

    w.now = rotated_at + HOUR
    held = step(w, fleet)
    assert held.secret is not None
    assert has_previous_value(w)
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    warnings = [e for e in held.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["ConsumersLagging"]
    assert "forbidden" in warnings[0].message
    assert ("Deployment/web (not rolled)" in warnings[0].message) is known
    assert consumers_condition(w)[:2] == ("False", "ConsumersForbidden")
    assert w.condition()["status"] == "True"

    w.now = rotated_at + 2 * HOUR
    retired = step(w, fleet)
    assert not has_previous_value(w)
    assert [(e.type, e.reason) for e in retired.events] == [
        ("Warning", "PreviousRetiredWhileLagging")
    ]
    assert "could not be rolled" in retired.events[0].message


def test_permission_granted_while_held_rolls_and_then_retires(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    fleet.refused = "forbidden"
    step(w, fleet, SECOND)
    w.now = rotated_at + HOUR
    step(w, fleet)
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    fleet.refused = None
    rolled = step(w, fleet, 10 * SECOND)
    assert [r.workload.ref for r in rolled.rollouts] == ["Deployment/web"]
    assert has_previous_value(w)
    fleet.finish()
    done = step(w, fleet, 10 * SECOND)
    assert not has_previous_value(w)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    assert [e for e in done.events if e.type == "Warning"] == []


def test_forbidden_without_a_rotation_still_requeues(world):
    w = world(SA)
    fleet = Fleet(unread=[Unread(WorkloadKind.DEPLOYMENT, "web", None, 403, "forbidden")])
    first = step(w, fleet)
    assert w.condition()["status"] == "True"
    assert consumers_condition(w)[:2] == ("False", "ConsumersForbidden")
    assert first.requeue_at is not None
    assert first.requeue_at <= w.now + 10 * 60 * SECOND


def test_removing_consumers_removes_their_status(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    step(w, fleet, SECOND)
    assert "consumers" in w.status
    w.edit_spec(lambda s: s.pop("consumers"))
    # The runtime sees no consumers in the spec any more: it passes none.
    decision = step(w, None, SECOND)
    assert "consumers" not in w.status
    assert w.condition("ConsumersRolledOut") is None
    assert decision.rollouts == ()
    # Even if it passes what it saw before, the spec rules.
    step(w, fleet, SECOND)
    assert "consumers" not in w.status
    assert w.condition("ConsumersRolledOut") is None


def test_consumers_seen_without_consumers_in_the_spec_are_ignored(world):
    w = world({"serviceAccount": "billing-exporter", "rotation": {"overlap": "1h"}})
    fleet = Fleet()
    fleet.add("web", w.now - HOUR)
    step(w, fleet)
    rotate(w, fleet)
    assert step(w, fleet, SECOND).rollouts == ()
    assert "consumers" not in w.status


# ---- spread ---------------------------------------------------------------------------


def next_rotation_of(world: Any, spec: dict[str, Any], name: str, fleet: Fleet | None) -> Any:
    w = world(spec, name=name)
    step(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    return w, parse_timestamp(w.status["nextRotationAt"]) - rotated_at


def test_rotation_with_consumers_is_spread_by_uid(world):
    spec = {**SA, "rotation": {"period": "24h", "overlap": "1h"}}
    fleet = Fleet()
    fleet.add("web", None)
    spreads = {}
    for name in ("billing", "reporting", "exports"):
        w, after = next_rotation_of(world, spec, name, fleet)
        spread = rotation_spread(w.uid, 24 * HOUR)
        # status is written at second precision
        assert abs(after - (24 * HOUR + spread)) < SECOND
        assert timedelta(0) <= spread <= ROTATION_SPREAD_MAX
        assert w.decisions[-1].requeue_at is not None
        assert abs(w.decisions[-1].requeue_at - (w.now + 24 * HOUR + spread)) < SECOND
        spreads[name] = spread
    assert len(set(spreads.values())) == 3
    # The same uid, the same spread.
    w, again = next_rotation_of(world, spec, "billing", fleet)
    assert abs(again - (24 * HOUR + spreads["billing"])) < SECOND


def test_rotation_waits_for_the_spread(world):
    spec = {**SA, "rotation": {"period": "24h", "overlap": "1h"}}
    w, fleet = started(world(spec, name="reporting"), "web")
    spread = rotation_spread(w.uid, 24 * HOUR)
    assert spread > 2 * SECOND
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    w.now = rotated_at + 24 * HOUR + SECOND
    step(w, fleet)
    assert w.status["revision"] == 1
    w.now = rotated_at + 24 * HOUR + spread + SECOND
    step(w, fleet)
    assert w.status["revision"] == 2


def test_rotation_without_consumers_is_spread_by_uid_too(world):
    """Every scheduled rotation is spread (issue 24): 5000 credentials created together
    must not rotate in the same second, consumers or not."""
    spec = {"serviceAccount": "billing-exporter", "rotation": {"period": "24h", "overlap": "1h"}}
    spreads = set()
    for name in ("billing", "reporting", "exports"):
        w, after = next_rotation_of(world, spec, name, None)
        spread = rotation_spread(w.uid, 24 * HOUR)
        assert abs(after - (24 * HOUR + spread)) < SECOND
        assert timedelta(0) <= spread <= ROTATION_SPREAD_MAX
        spreads.add(after)
        # And the rotation waits for it.
        rotated_at = parse_timestamp(w.status["rotatedAt"])
        w.now = rotated_at + 24 * HOUR + spread - SECOND
        w.step()
        assert w.status["revision"] == 1
        w.now = rotated_at + 24 * HOUR + spread + SECOND
        w.step()
        assert w.status["revision"] == 2
        assert (
            abs(parse_timestamp(w.status["nextRotationAt"]) - (w.now + 24 * HOUR + spread)) < SECOND
        )
    assert len(spreads) == 3


def test_spread_is_deterministic_and_bounded():
    uids = [str(uuid.UUID(int=i)) for i in range(200)]
    for period in (timedelta(minutes=1), 2 * timedelta(minutes=1), 24 * HOUR, 90 * 24 * HOUR):
        bound = min(period / 10, HOUR)
        spreads = [rotation_spread(uid, period) for uid in uids]
        assert all(timedelta(0) <= s <= bound for s in spreads)
        assert spreads == [rotation_spread(uid, period) for uid in uids]
        # Whole seconds: as many distinct delays as the bound allows (200 UIDs over 3600 s
        # collide a few times).
        assert all(s == timedelta(seconds=int(s.total_seconds())) for s in spreads)
        assert len(set(spreads)) >= min(180, int(bound.total_seconds()))
    # A long period: spread up to an hour, not a tenth of it.
    assert max(rotation_spread(uid, 90 * 24 * HOUR) for uid in uids) > 50 * timedelta(minutes=1)


def test_spread_is_roughly_uniform():
    period = 2 * timedelta(minutes=1)  # spread over 0..12 s
    generator = random.Random(1234)
    spreads = [
        rotation_spread(str(uuid.UUID(int=generator.getrandbits(128), version=4)), period)
        for _ in range(1000)
    ]
    buckets = [0, 0, 0, 0]
    for spread in spreads:
        assert timedelta(0) <= spread < 12 * SECOND
        buckets[min(int(spread / (3 * SECOND)), 3)] += 1
    assert all(150 <= count <= 350 for count in buckets), buckets


# ---- secrecy --------------------------------------------------------------------------


def test_no_secret_value_in_anything_consumers_say(world, leaks):
    """The harness scans every pass; here every consumer path is walked with real values,
    and the workload's own name made of a value would still be caught."""
    w = world(SA, real=True)
    fleet = Fleet()
    fleet.add("web", w.now - HOUR)
    step(w, fleet)
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    step(w, fleet, SECOND)
    w.now = rotated_at + HOUR
    step(w, fleet)
    w.now = rotated_at + 2 * HOUR
    step(w, fleet)
    fleet.refused = "forbidden"
    step(w, fleet, SECOND)
    values = w.secret_values()
    assert len(values) >= 2
    for decision in w.decisions:
        places = {
            "status": repr(decision.status),
            "rollouts": repr(decision.rollouts),
            **{f"event {i}": e.message for i, e in enumerate(decision.events)},
        }
        assert leaks(values, places) == []
    reasons = {e.reason for e in w.events}
    assert {"RollingOut", "ConsumersLagging", "PreviousRetiredWhileLagging"} <= reasons


def test_rollout_begun_after_the_expiry_holds_the_previous_value(world):
    """The operator was away across previousExpiresAt: the pass that rolls the workload
    keeps the previous value for it (its old pods keep working while new ones start)."""
    w, fleet = started(world(SA), "web")
    old = w.data()["client_secret"]
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    w.now = rotated_at + HOUR + 5 * timedelta(minutes=1)
    late = step(w, fleet)
    assert [r.workload.ref for r in late.rollouts] == ["Deployment/web"]
    assert w.data()["client_secret_previous"] == old
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    assert [e.reason for e in late.events if e.type == "Warning"] == ["ConsumersLagging"]
    assert consumers_condition(w)[:2] == ("False", "ConsumersLagging")
    fleet.finish()
    step(w, fleet, 10 * SECOND)
    assert not has_previous_value(w)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")


def test_lagging_past_the_cap_says_only_that_the_previous_value_retired(world):
    """The operator was away across twice the overlap while a rollout lagged: one Warning,
    that the previous value has retired; none that it stays."""
    w, fleet, rotated_at, _ = lagging_at_expiry(world)
    w.now = rotated_at + 2 * HOUR + 5 * timedelta(minutes=1)
    retired = step(w, fleet)
    assert not has_previous_value(w)
    assert [(e.type, e.reason) for e in retired.events] == [
        ("Warning", "PreviousRetiredWhileLagging")
    ]
    assert consumers_condition(w)[:2] == ("False", "PreviousRetiredWhileLagging")


def test_registry_keeps_the_previous_value_while_a_consumer_lags(world):
    """The registry publishes what checked_credential reads from the Secret: the previous
    value while it is held for a lagging consumer, none once it is retired."""
    w = world(CLIENT, rules=API_CLIENT)
    fleet = Fleet()
    fleet.add("web", w.now - 24 * HOUR)
    step(w, fleet)
    old = w.data()["client_secret"]
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    step(w, fleet, SECOND)
    w.now = rotated_at + HOUR
    step(w, fleet)
    found = checked_credential(
        API_CLIENT, w.snapshot(), w.secret_snapshot(), w.now, state_key=TEST_STATE_KEY
    )
    assert found is not None
    assert found[1].previous == old
    assert found[1].state.previous_expires_at == rotated_at + 2 * HOUR
    w.now = rotated_at + 2 * HOUR
    step(w, fleet)
    found = checked_credential(
        API_CLIENT, w.snapshot(), w.secret_snapshot(), w.now, state_key=TEST_STATE_KEY
    )
    assert found is not None
    assert found[1].previous is None


def test_polling_an_unchanged_rollout_writes_nothing(world):
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    step(w, fleet, SECOND)
    writes = (w.secret_writes, w.status_writes)
    for _ in range(3):
        poll = step(w, fleet, ROLLOUT_POLL)
        assert poll.secret is None
        assert poll.events == ()
        assert poll.rollouts == ()
        assert poll.requeue_at == w.now + ROLLOUT_POLL
    assert (w.secret_writes, w.status_writes) == writes


def test_missing_consumers_are_named(world):
    w = world(SA)
    fleet = Fleet()
    fleet.add("web", w.now - HOUR)
    resource = w.snapshot()
    missing = Unread(WorkloadKind.DEPLOYMENT, "api", None, 404, "not found")
    seen = ConsumersSeen(workloads=fleet.seen().workloads, unread=(missing,))
    decision = reconcile(
        w.rules,
        resource,
        None,
        w.now,
        None,
        seen,
        generate=w._recording(),
        state_key=TEST_STATE_KEY,
    )
    [condition] = [c for c in decision.status["conditions"] if c["type"] == "ConsumersRolledOut"]
    assert condition["status"] == "True"
    assert condition["message"] == (
        "1 consumers rolled out to revision 1; not found: Deployment/api"
    )
    assert decision.status["consumers"] == [
        {
            "kind": "Deployment",
            "name": "api",
            "revision": 0,
            "rolledOut": False,
            "message": "not found",
        },
        {"kind": "Deployment", "name": "web", "revision": 1, "rolledOut": True},
    ]
    # Nothing to look at again for it: a missing workload holds no value.
    assert decision.requeue_at is None


def test_more_workloads_than_status_lists_are_all_rolled(world):
    """A selector may pick more workloads than status.consumers lists (64): each is rolled
    all the same, status lists the first 64, and the condition counts them all."""
    w = world(
        {**SA, "consumers": [{"kind": "Deployment", "selector": {"matchLabels": {"a": "b"}}}]}
    )
    fleet = Fleet()
    for i in range(MAX_CONSUMER_STATUSES + 6):
        fleet.add(f"web-{i:03d}", w.now - HOUR)
    step(w, fleet)
    assert len(w.status["consumers"]) == MAX_CONSUMER_STATUSES
    assert consumers_condition(w)[2] == "70 consumers rolled out to revision 1"
    rotate(w, fleet)
    follow = step(w, fleet, SECOND)
    assert len(follow.rollouts) == 70
    assert len(w.status["consumers"]) == MAX_CONSUMER_STATUSES
    assert w.status["consumers"][0]["name"] == "web-000"
    assert consumers_condition(w)[:2] == ("False", "RollingOut")
    assert consumers_condition(w)[2].startswith("0 of 70 consumers")
    for ref in list(fleet.workloads)[:-1]:
        fleet.finish(ref)
    step(w, fleet, SECOND)
    # The one still rolling is not listed, but is counted.
    assert all(s["rolledOut"] for s in w.status["consumers"])
    assert consumers_condition(w)[:2] == ("False", "RollingOut")
    assert consumers_condition(w)[2].startswith("69 of 70 consumers")


# ---- each consumer on its own (issue 21) ----------------------------------------------


def test_a_refused_workload_stops_no_other_rollout_and_each_is_rolled_once(world):
    """The first workload (by kind and name) refused: those after it are rolled all the
    same, once; the refused one is listed with the server's message, holds the previous
    value, and is rolled (once) when the refusal goes."""
    w, fleet = started(world(SA), "a-first", "b-second", "c-third")
    fleet.refusals["Deployment/a-first"] = 'deployments.apps "a-first" is forbidden: no'
    rotate(w, fleet)
    rolled = step(w, fleet, SECOND)
    assert fleet.patches == [("Deployment/b-second", 2), ("Deployment/c-third", 2)]
    assert sorted(r.workload.ref for r in rolled.rollouts) == [
        "Deployment/b-second",
        "Deployment/c-third",
    ]
    first = w.status["consumers"][0]
    assert first["name"] == "a-first"
    assert first["rolledOut"] is False
    assert first["revision"] == 1
    assert "forbidden" in first["message"]
    assert all("message" not in s for s in w.status["consumers"][1:])
    assert consumers_condition(w)[:2] == ("False", "ConsumersForbidden")
    assert "Deployment/a-first" in consumers_condition(w)[2]

    # Passes while refused: the others are not rolled again (they carry revision 2).
    for _ in range(3):
        step(w, fleet, ROLLOUT_POLL)
    assert [ref for ref, _ in fleet.patches] == ["Deployment/b-second", "Deployment/c-third"]
    fleet.finish("Deployment/b-second")
    fleet.finish("Deployment/c-third")

    # The refusal goes: only the one left is rolled, once.
    fleet.refusals.clear()
    step(w, fleet, ROLLOUT_POLL)
    step(w, fleet, ROLLOUT_POLL)
    assert fleet.patches[2:] == [("Deployment/a-first", 2)]
    fleet.finish("Deployment/a-first")
    step(w, fleet, ROLLOUT_POLL)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    assert all("message" not in s and s["revision"] == 2 for s in w.status["consumers"])
    assert len(fleet.patches) == 3


def bad_selector() -> Unread:
    return Unread(
        WorkloadKind.DEPLOYMENT,
        None,
        "x/y=z",
        400,
        "the API server refused to list the workloads (400 BadRequest: invalid selector)",
    )


def test_unreadable_entries_stop_neither_issuing_nor_rotating_nor_retiring(world):
    """A selector the API server rejects (400) and a missing workload beside a healthy one:
    the credential is issued, rotated on schedule and its previous value retired; the
    healthy one is rolled; each problem is its own entry's message."""
    spec = {**SA, "rotation": {"period": "24h", "overlap": "1h"}}
    w = world(spec)
    fleet = Fleet()
    fleet.add("web", w.now - 24 * HOUR)
    fleet.unread = [
        bad_selector(),
        Unread(WorkloadKind.DEPLOYMENT, "gone", None, 404, "not found"),
    ]
    step(w, fleet)
    assert w.status["revision"] == 1
    assert w.condition()["status"] == "True"
    by_entry = {(s["kind"], s.get("name"), s.get("selector")): s for s in w.status["consumers"]}
    assert by_entry[("Deployment", None, "x/y=z")]["message"].startswith(
        "the API server refused to list"
    )
    assert by_entry[("Deployment", "gone", None)]["message"] == "not found"
    assert by_entry[("Deployment", "web", None)]["rolledOut"] is True
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("False", "ConsumersFailed")
    assert "400" in message
    assert "Deployment x/y=z" in message

    rotated_at = parse_timestamp(w.status["rotatedAt"])
    w.now = parse_timestamp(w.status["nextRotationAt"]) + SECOND
    step(w, fleet)
    assert w.status["revision"] == 2
    step(w, fleet, SECOND)
    assert fleet.patches == [("Deployment/web", 2)]
    fleet.finish()
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    # The unreadable selector may hide workloads on the previous value: held as for a
    # refusal, up to twice the overlap, then retired.
    w.now = rotated_at + HOUR
    step(w, fleet)
    assert has_previous_value(w)
    assert previous_expiry(w) == rotated_at + 2 * HOUR
    w.now = rotated_at + 2 * HOUR
    step(w, fleet)
    assert not has_previous_value(w)
    assert w.condition()["status"] == "True"
    assert fleet.patches == [("Deployment/web", 2)]


def test_a_missing_workload_holds_nothing(world):
    w, fleet = started(world(SA), "web")
    fleet.unread = [Unread(WorkloadKind.DEPLOYMENT, "gone", None, 404, "not found")]
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    step(w, fleet, SECOND)
    fleet.finish()
    step(w, fleet, SECOND)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    w.now = rotated_at + HOUR
    step(w, fleet)
    assert not has_previous_value(w)


def test_a_workload_that_does_not_use_the_secret_is_listed_and_left_alone(world):
    """A selector (here `{key: x, operator: DoesNotExist}`, which matches nearly everything)
    picks a workload whose pod template does not use the Secret: it is never rolled, is
    listed as not using it, and holds no previous value."""
    spec = {
        **SA,
        "consumers": [
            {"kind": "Deployment", "selector": {"matchExpressions": [
                {"key": "x", "operator": "DoesNotExist"}
            ]}},
        ],
    }  # fmt: skip
    w = world(spec)
    fleet = Fleet()
    fleet.add("web", w.now - 24 * HOUR)
    fleet.add("bystander", w.now - 24 * HOUR, uses_secret=False)
    step(w, fleet)
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    step(w, fleet, SECOND)
    assert fleet.patches == [("Deployment/web", 2)]
    assert fleet.get("Deployment/bystander").rolled_to is None
    [bystander] = [s for s in w.status["consumers"] if s["name"] == "bystander"]
    assert bystander["rolledOut"] is False
    assert bystander["revision"] == 0
    assert bystander["message"].startswith("does not use Secret billing")
    assert "not rolled" in bystander["message"]
    fleet.finish()
    done = step(w, fleet, SECOND)
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("True", "RolledOut")
    assert message == (
        "1 consumers rolled out to revision 2; not using the Secret, so not rolled: "
        "Deployment/bystander"
    )
    # Nothing is held for it, and nothing polls for it.
    assert done.requeue_at == rotated_at + HOUR
    w.now = rotated_at + HOUR
    step(w, fleet)
    assert not has_previous_value(w)
    for _ in range(3):
        step(w, fleet, HOUR)
    assert fleet.patches == [("Deployment/web", 2)]


def test_only_workloads_that_use_the_secret_are_rolled_even_when_named(world):
    w = world({**SA, "consumers": [WEB]})
    fleet = Fleet()
    fleet.add("web", w.now - 24 * HOUR, uses_secret=False)
    step(w, fleet)
    rotate(w, fleet)
    for _ in range(3):
        assert step(w, fleet, SECOND).rollouts == ()
    assert fleet.patches == []
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    assert consumers_condition(w)[2].startswith("0 consumers rolled out to revision 2")


def test_a_long_server_message_is_cut_to_what_status_holds(world):
    w, fleet = started(world(SA), "web")
    fleet.refused = "x" * 5000
    rotate(w, fleet)
    step(w, fleet, SECOND)
    [entry] = w.status["consumers"]
    assert len(entry["message"]) == MAX_CONSUMER_MESSAGE
    assert entry["message"].endswith("...")


# ---- hundreds of workloads: what status says stays within what the CRD admits ----------

LONG = 240  # a Deployment's name may have 253 characters


def many(world: Any, count: int) -> tuple[Any, Fleet]:
    w = world(
        {**SA, "consumers": [{"kind": "Deployment", "selector": {"matchLabels": {"a": "b"}}}]}
    )
    fleet = Fleet()
    for i in range(count):
        fleet.add(f"{i:03d}-" + "w" * LONG, w.now - HOUR)
    step(w, fleet)
    return w, fleet


def test_hundreds_of_lagging_workloads_fit_in_the_condition(world):
    """Each lagging workload was named in the ConsumersRolledOut message: 150 long names
    passed the 32768 characters a condition's message may have, and the pass raised (no
    status, no retirement Event) on every look while they lagged."""
    w, fleet = many(world, 150)
    rotate(w, fleet)
    rotated_at = parse_timestamp(w.status["rotatedAt"])
    step(w, fleet, SECOND)
    assert len(fleet.patches) == 150
    w.now = rotated_at + HOUR  # previousExpiresAt: every one still lags
    step(w, fleet)
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("False", "ConsumersLagging")
    assert len(message) <= 32768
    assert "and 145 more" in message
    w.now = rotated_at + 2 * HOUR
    step(w, fleet)
    assert consumers_condition(w)[1] == "PreviousRetiredWhileLagging"
    assert len(consumers_condition(w)[2]) <= 32768


def test_hundreds_of_refused_workloads_fit_in_the_condition(world):
    """An admission policy refusing every rollout, with a long message each time."""
    w, fleet = many(world, 150)
    fleet.refused = "denied by policy no-restarts: " + "x" * 300
    rotate(w, fleet)
    step(w, fleet, SECOND)
    status, reason, message = consumers_condition(w)
    assert (status, reason) == ("False", "ConsumersForbidden")
    assert len(message) <= 32768
    assert "more" in message


@pytest.mark.parametrize("left", [None, 1], ids=["annotation removed", "rolled back"])
def test_a_workload_whose_annotation_is_undone_is_not_rolled_again(world, left):
    """`kubectl rollout undo`, a `kubectl replace` or a GitOps sync that replaces the pod
    template takes our annotation away (or back to the revision before) after we rolled
    it: its pods restart anyway, reading the Secret as it is. Status recorded the rollout:
    rolling it again would be a second restart for one revision."""
    w, fleet = started(world(SA), "web")
    rotate(w, fleet)
    step(w, fleet, SECOND)
    assert fleet.patches == [("Deployment/web", 2)]
    fleet.workloads["Deployment/web"] = replace(fleet.get(), rolled_to=left, complete=False)
    for _ in range(3):
        again = step(w, fleet, ROLLOUT_POLL)
        assert again.rollouts == ()
    assert fleet.patches == [("Deployment/web", 2)]
    fleet.finish()
    step(w, fleet, ROLLOUT_POLL)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    # The next revision (once the previous value's promise has ended) rolls it, once.
    step(w, fleet, HOUR)
    rotate(w, fleet, "r2")
    step(w, fleet, SECOND)
    assert fleet.patches[1:] == [("Deployment/web", 3)]


# ---- shared consumers rolled once (issue 24) ------------------------------------------


def test_a_rollout_held_to_roll_with_others_lags_and_keeps_the_previous_value(world):
    """The runtime holds a shared workload's rollout a moment (shared_rollouts.py): status
    keeps the revision it was last rolled to (so that a restart asks again), the previous
    value stays while it waits, and the pass looks again when the hold ends."""
    w, fleet = started(world({**SA, "rotation": {"overlap": "5s"}}), "web")
    rotate(w, fleet)
    until = w.now + 8 * SECOND
    fleet.hold["Deployment/web"] = until
    held = step(w, fleet, SECOND)
    assert held.rollouts == ()
    assert fleet.patches == []
    (entry,) = w.status["consumers"]
    assert (entry["revision"], entry["rolledOut"]) == (1, False)
    assert entry["message"].startswith(f"to be rolled by {format_timestamp(until)}")
    assert consumers_condition(w)[:2] == ("False", "RollingOut")
    assert held.requeue_at is not None
    assert held.requeue_at <= until
    assert [e.reason for e in held.events] == []  # no RollingOut before it is rolled
    # Past the overlap while still held: the previous value stays (it lags).
    step(w, fleet, 5 * SECOND)
    assert has_previous_value(w)
    assert previous_expiry(w) > w.now
    # Rolled together by another credential's pass: its annotation is in place.
    fleet.hold.clear()
    fleet.workloads["Deployment/web"] = replace(fleet.get(), rolled_to=2, complete=False)
    after = step(w, fleet, SECOND)
    assert after.rollouts == ()
    assert w.status["consumers"] == [
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": False}
    ]
    # Its annotation in place (written for it by another) is not a finished rollout: past
    # the overlap, the previous value stays until the one rollout has finished.
    assert has_previous_value(w)
    assert previous_expiry(w) > w.now
    fleet.finish()
    step(w, fleet, SECOND)
    assert consumers_condition(w)[:2] == ("True", "RolledOut")
    assert not has_previous_value(w)  # it retires once the one rollout has finished


def test_a_held_rollout_is_looked_at_again_when_its_hold_ends(world):
    w, fleet = started(world(SA), "web")  # overlap 1h: nothing else due sooner
    rotate(w, fleet)
    fleet.hold["Deployment/web"] = until = w.now + 9 * SECOND
    assert step(w, fleet, SECOND).requeue_at == until


def test_a_revision_someone_wrote_on_a_workload_never_shows_past_the_credentials(world):
    """A workload first seen during a rotation, whose rollout is refused, is listed at what
    its annotation says it was rolled to: never past the credential's revision (the
    annotation is anyone's to write)."""
    w, fleet = started(world(SA))
    fleet.add("web", w.now - 24 * HOUR, rolled_to=7)
    fleet.refusals["Deployment/web"] = 'deployments.apps "web" is forbidden: no'
    rotate(w, fleet)
    assert w.status["revision"] == 2
    (web,) = w.status["consumers"]
    assert web["rolledOut"] is False
    assert web["revision"] == 0
    # It is still to be rolled: the next pass tries, and is refused.
    step(w, fleet, SECOND)
    (web,) = w.status["consumers"]
    assert web["rolledOut"] is False
    assert "forbidden" in web["message"]
