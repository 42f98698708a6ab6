"""Shared consumers rolled once (issue 24): when the rolls asked for one workload are made,
all in one write. Pure: the pending asks, the other users of the workload, the time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.api.status import format_timestamp
from credsmith.reconcile.shared_rollouts import (
    STALE_AFTER_WINDOWS,
    RollRequest,
    merged,
    roll_at,
    sharer_due,
    workloads_followed,
)

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=10)
SECOND = timedelta(seconds=1)
WEB = ("Deployment", "web")


def key(name: str) -> tuple[str, str, str]:
    return ("ServiceAccountCredential", "team", name)


def ask(name: str, at: datetime = T0, revision: int = 2) -> RollRequest:
    return RollRequest(
        key(name), f"serviceaccountcredential.credsmith.io/{name}", f"m-{name}", revision, at
    )


def pending(*requests: RollRequest) -> dict[tuple[str, str, str], RollRequest]:
    return {r.credential: r for r in requests}


def test_a_lone_credential_rolls_at_once() -> None:
    assert roll_at(pending(ask("a")), {}, WINDOW, T0) is None


def test_others_not_about_to_roll_do_not_hold_it() -> None:
    # One with nothing scheduled, one that rotates only after the window.
    sharers = {key("b"): None, key("c"): T0 + WINDOW + SECOND}
    assert roll_at(pending(ask("a")), sharers, WINDOW, T0) is None


def test_another_user_about_to_roll_holds_it_until_the_window_passes() -> None:
    sharers = {key("b"): T0, key("c"): T0 + 5 * SECOND}
    assert roll_at(pending(ask("a")), sharers, WINDOW, T0) == T0 + WINDOW
    # Asked again later: the window runs from the first ask, not the latest.
    later = T0 + 4 * SECOND
    asks = pending(ask("a"), ask("b", later))
    assert roll_at(asks, sharers, WINDOW, later) == T0 + WINDOW
    # Never longer than the window.
    assert roll_at(asks, sharers, WINDOW, T0 + WINDOW) is None


def test_once_every_user_about_to_roll_has_asked_they_roll_together_at_once() -> None:
    sharers = {key("b"): T0, key("c"): T0 + 2 * SECOND}
    now = T0 + 3 * SECOND
    asks = pending(ask("a"), ask("b", T0 + SECOND), ask("c", now))
    assert roll_at(asks, sharers, WINDOW, now) is None


def test_a_window_of_zero_rolls_each_at_once() -> None:
    assert roll_at(pending(ask("a")), {key("b"): T0}, timedelta(0), T0) is None


def test_asking_again_keeps_the_first_time_and_stale_asks_are_dropped() -> None:
    first = pending(ask("a"), ask("b"))
    again = merged(first, ask("a", T0 + 3 * SECOND), WINDOW)
    assert again[key("a")].requested_at == T0  # the window does not move
    newer = merged(first, ask("a", T0 + 3 * SECOND, revision=3), WINDOW)
    assert newer[key("a")] == ask("a", T0 + 3 * SECOND, revision=3)
    late = T0 + STALE_AFTER_WINDOWS * WINDOW + SECOND
    assert set(merged(first, ask("c", late), WINDOW)) == {key("c")}


def test_when_another_user_may_ask_to_roll_it() -> None:
    later = T0 + timedelta(hours=1)
    at_rest = {
        "revision": 2,
        "nextRotationAt": format_timestamp(later),
        "consumers": [{"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True}],
        "lastRotateRequest": "r1",
    }
    assert sharer_due(at_rest, {ROTATE_ANNOTATION: "r1"}, WEB, T0) == later
    # A rotation asked for and not acted upon yet: about to roll.
    assert sharer_due(at_rest, {ROTATE_ANNOTATION: "r2"}, WEB, T0) == T0
    # Rotated, the workload not rolled to its revision yet (or its roll held): about to.
    rotated = {**at_rest, "revision": 3}
    assert sharer_due(rotated, {}, WEB, T0) == T0
    assert sharer_due({**rotated, "nextRotationAt": None}, {}, ("Deployment", "x"), T0) is None


def test_the_users_of_a_workload_are_read_from_status_consumers() -> None:
    status = {
        "consumers": [
            {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True},
            # Does not use the Secret: listed at revision 0, never rolled by it.
            {"kind": "Deployment", "name": "other", "revision": 0, "rolledOut": False},
            {"kind": "StatefulSet", "selector": "app=db", "revision": 0, "rolledOut": False},
            "junk",
        ]
    }
    assert workloads_followed(status) == {WEB}
    assert workloads_followed({}) == frozenset()
