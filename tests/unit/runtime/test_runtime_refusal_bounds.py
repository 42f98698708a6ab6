"""Whatever text a failure carries, showing it cannot fail: an unexpected exception's text
(a value a server answered that the operator could not parse) is made printable, one line and
bounded before it reaches a log line or a refusal, and a refusal's message in a condition is
cut far below the condition's limit, past which it failed validation in the worker showing it
(which stopped the operator)."""

from __future__ import annotations

from datetime import UTC, datetime

from credsmith.api.status import Reason
from credsmith.runtime.backoff import RetryLimiter
from credsmith.runtime.failures import plan_retry
from credsmith.runtime.refusals import MAX_REFUSAL_MESSAGE, Refusal, refused_status
from credsmith.runtime.session import MAX_DESCRIBED, ApiError, describe

FORGED = "9\n2026-12-07 ERROR credsmith: forged line\u202e" + "x" * 40_000
NOW = datetime(2026, 12, 7, tzinfo=UTC)


def test_an_unexpected_exception_is_described_on_one_bounded_line() -> None:
    text = describe(ValueError(f"could not convert string to float: {FORGED!r}"))
    assert len(text) <= MAX_DESCRIBED
    assert all(char.isprintable() for char in text)
    assert text.startswith("ValueError: could not convert string to float")


def test_an_api_error_is_described_as_before() -> None:
    error = ApiError(422, "Unprocessable Entity", "data: Too long")
    assert describe(error) == "API error 422 Unprocessable Entity: data: Too long"


def test_a_refusal_of_any_length_is_shown_in_status() -> None:
    retry = plan_retry(RetryLimiter(rand=lambda: 1.0), "key", ValueError(FORGED))
    assert retry is not None
    assert retry.refusal is not None
    assert retry.refusal.reason == Reason.TRANSIENT_ERROR
    assert len(retry.refusal.message) <= MAX_DESCRIBED
    for message in (retry.refusal.message, "y" * 40_000):
        refusal = Refusal(Reason.TRANSIENT_ERROR, message, permanent=False)
        status = refused_status({}, 1, refusal, NOW)
        shown = {c["type"]: c for c in status["conditions"]}["Reconciling"]["message"]
        assert shown == message[:MAX_REFUSAL_MESSAGE]
