"""Conditions keep metav1 semantics; timestamps are RFC 3339 in UTC."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from credsmith.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    format_timestamp,
    parse_timestamp,
    set_condition,
)

T0 = datetime(2024, 6, 13, 6, 44, 37, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def ready(status: ConditionStatus, reason: Reason, message: str = "", **kw: object) -> Condition:
    return Condition.model_validate(
        {"type": ConditionType.READY, "status": status, "reason": reason, "message": message, **kw}
    )


def test_new_condition_is_appended_with_now() -> None:
    reconciling = Condition(
        type=ConditionType.RECONCILING,
        status=ConditionStatus.FALSE,
        reason=Reason.ISSUED,
        last_transition_time="2024-01-01T00:00:00Z",
    )
    result = set_condition([reconciling], ready(ConditionStatus.TRUE, Reason.ISSUED), T0)
    assert [c.type for c in result] == ["Reconciling", "Ready"]
    assert result[1].last_transition_time == "2024-06-13T06:44:37Z"
    assert result[0] is reconciling


def test_same_status_keeps_last_transition_time_and_takes_the_rest() -> None:
    first = set_condition([], ready(ConditionStatus.TRUE, Reason.ISSUED, observedGeneration=1), T0)
    second = set_condition(
        first, ready(ConditionStatus.TRUE, Reason.ROTATED, "rotated", observedGeneration=2), T1
    )
    [condition] = second
    assert condition.last_transition_time == format_timestamp(T0)
    assert condition.reason == "Rotated"
    assert condition.message == "rotated"
    assert condition.observed_generation == 2


def test_status_change_moves_last_transition_time() -> None:
    first = set_condition([], ready(ConditionStatus.TRUE, Reason.ISSUED), T0)
    second = set_condition(first, ready(ConditionStatus.FALSE, Reason.SECRET_CONFLICT), T1)
    [condition] = second
    assert condition.last_transition_time == format_timestamp(T1)
    assert condition.reason == "SecretConflict"


def test_status_change_takes_an_explicit_transition_time() -> None:
    first = set_condition([], ready(ConditionStatus.TRUE, Reason.ISSUED), T0)
    explicit = ready(
        ConditionStatus.FALSE, Reason.INVALID_SPEC, lastTransitionTime="2024-06-14T00:00:00Z"
    )
    [condition] = set_condition(first, explicit, T1)
    assert condition.last_transition_time == "2024-06-14T00:00:00Z"


def test_input_is_not_changed_and_order_is_kept() -> None:
    stalled = Condition(
        type=ConditionType.STALLED, status=ConditionStatus.FALSE, reason=Reason.ISSUED
    )
    conditions = set_condition([], ready(ConditionStatus.TRUE, Reason.ISSUED), T0)
    conditions = set_condition(conditions, stalled, T0)
    before = [c.model_copy(deep=True) for c in conditions]
    after = set_condition(conditions, ready(ConditionStatus.FALSE, Reason.INVALID_TEMPLATE), T1)
    assert conditions == before
    assert [c.type for c in after] == ["Ready", "Stalled"]
    assert find_condition(after, "Ready") == after[0]
    assert find_condition(after, "Missing") is None


def test_condition_wire_shape_is_metav1() -> None:
    [condition] = set_condition([], ready(ConditionStatus.TRUE, Reason.ISSUED), T0)
    assert condition.to_wire() == {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2024-06-13T06:44:37Z",
        "reason": "Issued",
        "message": "",
    }


def test_timestamps_are_utc_seconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2024, 6, 13, 8, 44, 37, 999999, tzinfo=plus_two)
    assert format_timestamp(moment) == "2024-06-13T06:44:37Z"
    assert parse_timestamp("2024-06-13T06:44:37Z") == T0
    with pytest.raises(ValueError, match="time zone"):
        format_timestamp(datetime(2024, 6, 13))
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_timestamp("2024-06-13")
