"""What a refused write becomes: a reason, a clean message, permanent or not, status."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from credsmith.api.status import Reason
from credsmith.runtime.backoff import RetryLimiter
from credsmith.runtime.failures import REFUSAL_RECHECK, RecheckLater, plan_retry
from credsmith.runtime.refusals import (
    MESSAGE_LIMIT,
    REDACTED,
    SecretWriteRefused,
    classify,
    refused_status,
    transient,
    without_reconciling,
)
from credsmith.runtime.session import ApiError, parse_retry_after

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
VAP = (
    "secrets \"s\" is forbidden: ValidatingAdmissionPolicy 'deny' with binding 'deny' "
    "denied request: no Secret writes here"
)


QUOTA = 'secrets "s" is forbidden: exceeded quota: q, requested: count/secrets=1'
RBAC = 'secrets "s" is forbidden: User "u" cannot create resource'
IMMUTABLE = 'Secret "s" is invalid: data: Forbidden: field is immutable when `immutable` is set'
TOO_LONG = "metadata.annotations: Too long: must have at most 262144 bytes"


@pytest.mark.parametrize(
    ("status", "message", "reason", "permanent"),
    [
        (403, QUOTA, Reason.QUOTA_EXCEEDED, True),
        (422, VAP, Reason.SECRET_WRITE_DENIED, True),
        (403, VAP, Reason.SECRET_WRITE_DENIED, True),
        (403, 'admission webhook "x" denied the request: no', Reason.SECRET_WRITE_DENIED, True),
        (403, RBAC, Reason.SECRET_WRITE_DENIED, True),
        (422, IMMUTABLE, Reason.SECRET_IMMUTABLE, True),
        (422, TOO_LONG, Reason.SECRET_INVALID, True),
        (413, "Request entity too large", Reason.SECRET_INVALID, True),
        (429, "Too many requests, please try again later.", Reason.THROTTLED, False),
        (409, "the object has been modified", Reason.WRITE_CONFLICT, False),
        (0, "ClientConnectorError", Reason.API_SERVER_UNAVAILABLE, False),
        (503, "etcdserver: leader changed", Reason.API_SERVER_UNAVAILABLE, False),
        (404, 'secrets "s" not found', Reason.TRANSIENT_ERROR, False),
    ],
)
def test_refusals_are_classified(
    status: int, message: str, reason: Reason, permanent: bool
) -> None:
    refusal = classify(ApiError(status, "", message))
    assert (refusal.reason, refusal.permanent) == (reason, permanent)
    assert refusal.message == message


def test_a_namespace_being_deleted_is_not_a_denial() -> None:
    error = ApiError(403, "Forbidden", "unable to create", ("NamespaceTerminating",))
    assert not classify(error).permanent


def test_transient_never_claims_a_permanent_refusal() -> None:
    assert not transient(ApiError(422, "Invalid", "status.x: Invalid value")).permanent


def test_messages_are_truncated_and_never_carry_the_values_written() -> None:
    value = "s3cr3t-value-0123456789"
    encoded = base64.b64encode(value.encode()).decode()
    message = f"denied request: data.client_secret={value} ({encoded}) " + "x" * 2000
    refused = SecretWriteRefused.of(ApiError(422, "Invalid", message, retry_after=3), [value])
    refusal = classify(refused, refused.values)
    assert value not in refusal.message
    assert encoded not in refusal.message
    assert REDACTED in refusal.message
    assert len(refusal.message) <= MESSAGE_LIMIT
    assert refused.status == 422
    assert refused.retry_after == 3


def test_a_permanent_refusal_is_ready_false_and_stalled_keeping_what_the_secret_holds() -> None:
    status = {
        "revision": 1,
        "fingerprint": "sha256:0123456789abcdef",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Issued", "message": "ok",
             "lastTransitionTime": "2026-11-30T11:00:00Z", "observedGeneration": 1},
            {"type": "Reconciling", "status": "True", "reason": "Throttled", "message": "",
             "lastTransitionTime": "2026-11-30T11:00:00Z"},
        ],
    }  # fmt: skip
    refusal = classify(ApiError(403, "Forbidden", "exceeded quota: q"))
    result = refused_status(status, 2, refusal, NOW)
    by_type = {c["type"]: c for c in result["conditions"]}
    assert set(by_type) == {"Ready", "Stalled"}
    assert by_type["Ready"]["status"] == "False"
    assert by_type["Ready"]["reason"] == "QuotaExceeded"
    assert by_type["Ready"]["lastTransitionTime"] == "2026-11-30T12:00:00Z"
    assert by_type["Stalled"]["status"] == "True"
    assert result["observedGeneration"] == 2
    assert by_type["Ready"]["observedGeneration"] == 2
    assert result["revision"] == 1
    assert result["fingerprint"] == status["fingerprint"]
    assert refused_status(result, 2, refusal, NOW) == result  # no churn on re-checks


def test_a_transient_failure_is_reconciling_and_leaves_ready_alone() -> None:
    refusal = transient(ApiError(429, "TooManyRequests", "slow down"))
    fresh = refused_status({}, 1, refusal, NOW)
    by_type = {c["type"]: c for c in fresh["conditions"]}
    assert by_type["Reconciling"]["status"] == "True"
    assert by_type["Reconciling"]["reason"] == "Throttled"
    assert by_type["Ready"]["status"] == "Unknown"  # Ready is always present
    condition = {"type": "Ready", "status": "True", "reason": "Issued", "message": ""}
    ready = {"conditions": [{**condition, "lastTransitionTime": "2026-11-30T11:00:00Z"}]}
    kept = {c["type"]: c for c in refused_status(ready, 1, refusal, NOW)["conditions"]}
    assert kept["Ready"]["status"] == "True"
    assert without_reconciling(refused_status(ready, 1, refusal, NOW))["conditions"] == [
        ready["conditions"][0]
    ]
    assert without_reconciling(ready) is ready


@pytest.mark.parametrize(
    "written", ["3000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2999-12-31T23:59:59-01:00"]
)
def test_a_condition_read_back_that_is_not_valid_is_dropped_not_raised(written: str) -> None:
    # The CRD's date-time lets these through; anyone who may write status may write them.
    refusal = transient(ApiError(429, "TooManyRequests", "slow down"))
    condition = {"type": "Issued", "status": "True", "reason": "X", "message": ""}
    status = {"conditions": [{**condition, "lastTransitionTime": written}]}
    shown = refused_status(status, 1, refusal, NOW)
    assert {c["type"] for c in shown["conditions"]} == {"Ready", "Reconciling"}


def test_a_completed_pass_keeps_the_reconcilers_own_reconciling() -> None:
    """A rotation that waits for a promise (RotationWaiting) is the reconciler's, not a
    transient failure's: it stays after the pass."""
    waiting = {
        "type": "Reconciling",
        "status": "True",
        "reason": "RotationWaiting",
        "message": "rotation to revision 3 waits",
        "lastTransitionTime": "2026-11-30T11:00:00Z",
    }
    ready = {"type": "Ready", "status": "True", "reason": "Rotated", "message": ""}
    status = {"conditions": [ready, waiting]}
    assert without_reconciling(status) is status


@pytest.mark.parametrize(
    ("header", "seconds"), [("1", 1.0), (" 5 ", 5.0), ("", None), (None, None), ("-1", None),
                            ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)  # fmt: skip
def test_retry_after_is_read_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def limiter() -> RetryLimiter[str]:
    return RetryLimiter(base=1, cap=60, rand=lambda: 1.0, clock=lambda: 0.0)


def test_a_permanent_refusal_is_shown_at_once_and_rechecked_within_the_cap() -> None:
    retries = limiter()
    refused = SecretWriteRefused.of(ApiError(403, "Forbidden", "exceeded quota: q"), ())
    plans = [plan_retry(retries, "k", refused) for _ in range(10)]
    assert all(p is not None and p.show and not p.hold for p in plans)
    assert max(p.delay for p in plans if p is not None) == REFUSAL_RECHECK


def test_transient_failures_show_reconciling_only_after_a_few_and_never_under_429() -> None:
    retries = limiter()
    conflict = ApiError(409, "Conflict", "modified")
    shown = [plan.show for _ in range(4) if (plan := plan_retry(retries, "k", conflict))]
    assert shown == [False, False, True, True]
    throttled = ApiError(429, "TooManyRequests", "slow down", retry_after=5)
    for _ in range(5):
        plan = plan_retry(retries, "t", throttled)
        assert plan is not None
        assert plan.hold
        assert not plan.show
        assert plan.delay >= 5


def test_a_namespace_going_or_gone_ends_the_retries() -> None:
    retries = limiter()
    plan_retry(retries, "k", ApiError(500, "", ""))
    gone = ApiError(404, "NotFound", 'namespaces "x" not found', kind="namespaces")
    assert plan_retry(retries, "k", gone) is None
    assert retries.failures("k") == 0
    terminating = ApiError(403, "Forbidden", "", ("NamespaceTerminating",))
    assert plan_retry(retries, "k", terminating) is None


def test_a_recheck_is_no_failure() -> None:
    plan = plan_retry(limiter(), "k", RecheckLater(300))
    assert plan is not None
    assert plan.refusal is None
    assert not plan.show
