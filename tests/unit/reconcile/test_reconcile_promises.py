"""Promises kept (design behaviour 14) and no annotation makes a loop (behaviour 13).

A rotation that comes due while the previous value is still promised (previousExpiresAt)
waits, Reconciling=True saying until when, Ready still True, and happens once when the
promise ends. Requested rotations obey the 1m floor of scheduled ones. A revision that
cannot advance is Stalled, never issued again and again."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.api.enums import WorkloadKind
from credsmith.api.status import format_timestamp, parse_timestamp
from credsmith.issuing.fingerprint import fingerprint
from credsmith.reconcile.consumers import ConsumersSeen
from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.revision import MAX_REVISION
from credsmith.reconcile.rollouts import Workload
from credsmith.reconcile.secret_state import FINGERPRINT, PREVIOUS_EXPIRES_AT, REVISION

OVERLAP = {"serviceAccount": "a", "rotation": {"overlap": "1h"}}
NO_OVERLAP = {"serviceAccount": "a"}
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def _step_with(monkeypatch: pytest.MonkeyPatch, world: Any) -> None:
    """World.step_with(seen, advance): a pass with what the runtime saw of the consumers."""
    kind = type(world({"serviceAccount": "a"}))

    def step_with(w: Any, seen: ConsumersSeen, advance: timedelta | None = None) -> Any:
        if advance is not None:
            w.advance(advance)
        resource, secret = w.snapshot(), w.secret_snapshot()
        decision = reconcile(
            w.rules,
            resource,
            secret,
            w.now,
            None,
            seen,
            generate=w._recording(),
            state_key=w.state_key,
        )
        w._check(decision, resource, secret)
        w._apply(decision)
        return decision

    monkeypatch.setattr(kind, "step_with", step_with, raising=False)


def condition(w: Any, type_: str) -> dict[str, Any] | None:
    return next((c for c in w.status["conditions"] if c["type"] == type_), None)


def present(w: Any, type_: str) -> dict[str, Any]:
    """The condition the test reads (indexing None would fail the test as this assert does)."""
    found = condition(w, type_)
    assert found is not None, f"no {type_} condition"
    return found


def waiting(w: Any) -> dict[str, Any] | None:
    found = condition(w, "Reconciling")
    return found if found is not None and found["reason"] == "RotationWaiting" else None


def rotation_waiting(w: Any) -> dict[str, Any]:
    found = waiting(w)
    assert found is not None, "not waiting to rotate"
    return found


def issued_and_rotated(w: Any) -> tuple[str, str]:
    """Revision 1, then (a minute later, past the floor) revision 2 by request: the values."""
    w.step()
    first = w.data()["client_secret"]
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step(2 * MINUTE)
    assert w.status["revision"] == 2
    assert w.data()["client_secret_previous"] == first
    return first, w.data()["client_secret"]


# ---- a rotation inside an overlap waits for the promise --------------------------------


def test_a_second_request_inside_the_overlap_keeps_the_first_value_until_its_promise(world):
    w = world(OVERLAP)
    first, _second = issued_and_rotated(w)
    promised = parse_timestamp(w.status["previousExpiresAt"])
    w.annotate(ROTATE_ANNOTATION, "r2")
    decision = w.step(10 * MINUTE)
    assert decision.secret is None
    assert w.status["revision"] == 2
    assert w.data()["client_secret_previous"] == first
    assert present(w, "Ready")["status"] == "True"
    wait = waiting(w)
    assert wait is not None
    assert wait["status"] == "True"
    assert format_timestamp(promised) in wait["message"]
    assert "revision 3" in wait["message"]
    assert "promised" in wait["message"]
    assert decision.requeue_at == promised
    assert w.status["nextRotationAt"] == format_timestamp(promised)
    assert [e.reason for e in decision.events] == []
    # Passes meanwhile change nothing.
    assert w.step(10 * MINUTE).secret is None
    assert w.data()["client_secret_previous"] == first


def test_the_waiting_rotation_happens_once_when_the_promise_ends(world):
    w = world(OVERLAP)
    _, second = issued_and_rotated(w)
    promised = parse_timestamp(w.status["previousExpiresAt"])
    w.annotate(ROTATE_ANNOTATION, "r2")
    w.step(10 * MINUTE)
    w.annotate(ROTATE_ANNOTATION, "r3")  # another request while waiting: still one rotation
    w.step(10 * MINUTE)
    w.now = promised
    decision = w.step()
    assert w.status["revision"] == 3
    assert w.data()["client_secret_previous"] == second
    assert w.status["lastRotateRequest"] == "r3"
    assert waiting(w) is None
    assert [e.reason for e in decision.events] == ["Rotated"]
    for _ in range(3):
        assert w.step(MINUTE).secret is None
    assert w.status["revision"] == 3


def test_a_request_seen_while_waiting_is_remembered_when_the_annotation_goes(world):
    w = world(OVERLAP)
    _, second = issued_and_rotated(w)
    w.annotate(ROTATE_ANNOTATION, "r2")
    w.step(MINUTE)
    assert w.status["pendingRotateRequest"] == "r2"
    assert w.status["lastRotateRequest"] == "r1"
    w.annotate(ROTATE_ANNOTATION, None)  # removed while the rotation waits
    w.step(MINUTE)
    assert waiting(w) is not None
    w.now = parse_timestamp(w.status["previousExpiresAt"])
    w.step()
    assert w.status["revision"] == 3
    assert w.data()["client_secret_previous"] == second
    assert w.status["lastRotateRequest"] == "r2"
    assert "pendingRotateRequest" not in w.status
    for _ in range(3):
        w.step(HOUR)
    assert w.status["revision"] == 3


def test_a_parameter_change_inside_the_overlap_waits_too(world):
    w = world(OVERLAP)
    first, _ = issued_and_rotated(w)
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    w.step(MINUTE)
    assert w.status["revision"] == 2
    assert w.data()["client_secret_previous"] == first
    assert "generation parameters changed" in rotation_waiting(w)["message"]
    w.now = parse_timestamp(w.status["previousExpiresAt"])
    w.step()
    assert w.status["revision"] == 3
    assert len(w.data()["client_secret"]) == 64


def test_a_scheduled_rotation_waits_while_a_lagging_consumer_holds_the_previous(world):
    spec = {
        "serviceAccount": "a",
        "rotation": {"period": "1h", "overlap": "40m"},
        "consumers": [{"kind": "Deployment", "name": "web"}],
    }
    w = world(spec)
    web = Workload(WorkloadKind.DEPLOYMENT, "web", None, w.now - 24 * HOUR, True, "done")
    seen = ConsumersSeen(workloads=(web,))
    w.step_with(seen)
    w.now = parse_timestamp(w.status["nextRotationAt"]) + SECOND  # whole seconds
    w.step_with(seen)
    assert w.status["revision"] == 2
    first = w.data()["client_secret_previous"]
    rotated = parse_timestamp(w.status["rotatedAt"])
    decision = w.step_with(seen, SECOND)
    assert [r.revision for r in decision.rollouts] == [2]
    # The rollout never finishes: at the expiry the previous value is held for it.
    lagging = ConsumersSeen(workloads=(replace(web, rolled_to=2, complete=False),))
    w.now = rotated + 40 * MINUTE
    w.step_with(lagging)
    assert parse_timestamp(w.status["previousExpiresAt"]) == rotated + 80 * MINUTE
    # The next scheduled rotation comes due while it is held: it waits.
    w.now = parse_timestamp(w.status["nextRotationAt"]) + SECOND
    assert w.now < rotated + 80 * MINUTE
    decision = w.step_with(lagging)
    assert w.status["revision"] == 2
    assert w.data()["client_secret_previous"] == first
    assert waiting(w) is not None
    assert decision.requeue_at is not None
    assert decision.requeue_at <= rotated + 80 * MINUTE
    w.now = rotated + 80 * MINUTE
    w.step_with(lagging)
    assert w.status["revision"] == 3


# ---- requested rotations count against the 1m floor -----------------------------------


def test_two_requests_within_a_minute_rotate_once_then_again_after_the_floor(world):
    w = world(NO_OVERLAP)
    w.step()
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step(2 * MINUTE)
    assert w.status["revision"] == 2
    rotated = parse_timestamp(w.status["rotatedAt"])
    w.annotate(ROTATE_ANNOTATION, "r2")
    decision = w.step(SECOND)
    assert w.status["revision"] == 2
    assert decision.secret is None
    floor = rotated + MINUTE
    assert decision.requeue_at is not None
    assert decision.requeue_at <= floor + SECOND
    assert "at most once per 1m" in rotation_waiting(w)["message"]
    assert present(w, "Ready")["status"] == "True"
    w.now = decision.requeue_at
    w.step()
    assert w.status["revision"] == 3
    assert waiting(w) is None


def test_the_first_request_after_the_issue_is_not_held_the_second_is(world):
    w = world(NO_OVERLAP)
    w.step()
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step(SECOND)
    assert w.status["revision"] == 2  # a first issue is not a rotation
    w.annotate(ROTATE_ANNOTATION, "r2")
    w.step(SECOND)
    assert w.status["revision"] == 2
    assert waiting(w) is not None
    w.step(MINUTE)
    assert w.status["revision"] == 3


def test_a_rotation_in_the_second_of_the_issue_still_holds_the_next_request(world):
    w = world(NO_OVERLAP)
    w.step()
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step(timedelta(milliseconds=100))  # rotatedAt == issuedAt, in whole seconds
    assert w.status["revision"] == 2
    assert w.status["rotatedAt"] == w.status["issuedAt"]
    w.annotate(ROTATE_ANNOTATION, "r2")
    w.step(SECOND)
    assert w.status["revision"] == 2
    assert waiting(w) is not None


def test_a_request_right_after_a_reissue_waits_for_the_floor(world):
    w = world(NO_OVERLAP)
    w.step()
    w.delete_secret()
    w.step(2 * MINUTE)
    assert w.status["revision"] == 2
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step(SECOND)
    assert w.status["revision"] == 2
    assert waiting(w) is not None


def test_a_parameter_change_is_not_held_by_the_floor(world):
    w = world(NO_OVERLAP)
    w.step()
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    w.step(SECOND)
    assert w.status["revision"] == 2


# ---- no annotation makes a loop --------------------------------------------------------


def plant_last_revision(secret: dict[str, Any]) -> None:
    notes = secret["metadata"]["annotations"]
    notes[REVISION] = str(MAX_REVISION)
    notes[FINGERPRINT] = fingerprint("not the value")


def test_a_planted_last_revision_is_not_followed(world):
    """Written by someone else (no valid MAC): re-issued once, at the revision status
    records + 1, and then settled: no loop."""
    w = world(NO_OVERLAP)
    w.step()
    w.edit_secret(plant_last_revision)
    w.step(SECOND)
    assert w.status["revision"] == 2
    writes = w.secret_writes
    for _ in range(5):
        assert w.step(SECOND).secret is None
    assert w.secret_writes == writes
    assert present(w, "Ready")["status"] == "True"


def test_the_last_revision_with_a_wrong_fingerprint_stalls_instead_of_looping(world):
    """Even a state the operator authenticated (a bug, a restored backup) cannot loop."""
    w = world(NO_OVERLAP)
    w.step()
    value = w.data()["client_secret"]
    w.edit_secret_as_operator(plant_last_revision)
    writes = w.secret_writes
    for _ in range(5):
        decision = w.step(SECOND)
        assert decision.secret is None
    assert w.secret_writes == writes
    assert w.data()["client_secret"] == value
    assert present(w, "Ready")["status"] == "False"
    assert present(w, "Ready")["reason"] == "RevisionExhausted"
    assert present(w, "Stalled")["status"] == "True"
    assert str(MAX_REVISION) in present(w, "Stalled")["message"]
    # One Warning, not one per pass.
    assert [e.reason for e in w.events].count("RevisionExhausted") == 1


def test_deleting_the_secret_recovers_from_the_last_revision(world):
    w = world(NO_OVERLAP)
    w.step()
    w.edit_secret_as_operator(plant_last_revision)
    w.step(SECOND)
    w.delete_secret()
    w.step(SECOND)
    assert present(w, "Ready")["status"] == "True"
    assert w.status["revision"] == 2


def test_a_rotation_past_the_last_revision_stalls(world):
    w = world(NO_OVERLAP)
    w.step()

    def last(secret: dict[str, Any]) -> None:
        secret["metadata"]["annotations"][REVISION] = str(MAX_REVISION)

    w.edit_secret_as_operator(last)
    w.lose_status()  # so that status agrees: the state is believed as it is
    w.step(SECOND)
    assert w.status["revision"] == MAX_REVISION
    w.annotate(ROTATE_ANNOTATION, "r1")
    decision = w.step(2 * MINUTE)
    assert decision.secret is None
    assert present(w, "Stalled")["reason"] == "RevisionExhausted"
    assert w.step(MINUTE).secret is None


def test_previous_expiry_is_in_the_secret_while_waiting(world):
    w = world(OVERLAP)
    issued_and_rotated(w)
    before = w.secret["metadata"]["annotations"][PREVIOUS_EXPIRES_AT]
    w.annotate(ROTATE_ANNOTATION, "r2")
    w.step(MINUTE)
    assert w.secret["metadata"]["annotations"][PREVIOUS_EXPIRES_AT] == before
