"""A provider's status (reconcile/provider_status.py): kstatus conventions, as the credentials'."""

from datetime import UTC, datetime, timedelta

import pytest

from credsmith.api.identity_provider import IdentityProviderSpec, IdentityProviderStatus
from credsmith.api.status import Reason
from credsmith.reconcile.provider_status import (
    MAX_CLEANUP_MESSAGE,
    CleanupOutcome,
    is_ready,
    provider_status,
)

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
SPEC = IdentityProviderSpec.model_validate({"hydra": {"adminURL": "http://hydra:4445"}})


def types(status):
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ready():
    status = provider_status(SPEC, 3, {}, T0, clients=2)
    assert types(status) == {"Ready": ("True", "Connected")}
    assert (status["observedGeneration"], status["type"], status["clients"]) == (3, "Hydra", 2)
    assert is_ready(status)
    assert IdentityProviderStatus.model_validate(status).to_wire() == status  # the CRD's shape


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (Reason.PROVIDER_UNREACHABLE, "Reconciling"),
        (Reason.PROVIDER_TLS_ERROR, "Reconciling"),
        (Reason.PROVIDER_ERROR, "Reconciling"),
        (Reason.URL_NOT_ALLOWED, "Stalled"),
        (Reason.PROVIDER_LOGIN_REFUSED, "Stalled"),
        (Reason.PROVIDER_FORBIDDEN, "Stalled"),
    ],
)
def test_a_failure_is_in_progress_or_stalled(reason, kind):
    status = provider_status(SPEC, 1, {}, T0, reason=reason, message="http://hydra:4445: no")
    assert types(status) == {"Ready": ("False", reason.value), kind: ("True", reason.value)}
    assert not is_ready(status)


def test_recovery_clears_both_and_keeps_the_count_when_not_listed():
    down = provider_status(
        SPEC, 1, {"clients": 4}, T0, reason=Reason.PROVIDER_UNREACHABLE, message="x"
    )
    assert down["clients"] == 4
    up = provider_status(SPEC, 1, down, T0 + timedelta(minutes=1))
    assert types(up) == {"Ready": ("True", "Connected")}
    ready = next(c for c in up["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-12-06T08:01:00Z"
    again = provider_status(SPEC, 1, up, T0 + timedelta(minutes=5))
    assert again["conditions"] == up["conditions"]  # no transition, no new time


def cleanup_types(status):
    return {k: v for k, v in types(status).items() if k == "CleanedUp"}


def test_a_failed_clean_up_is_its_own_condition_and_ready_stays_true():
    failed = CleanupOutcome(
        0, [("c1", "DELETE http://hydra:4445/admin/clients/c1: 403"), ("c2", "x: 500")]
    )
    status = provider_status(SPEC, 2, {}, T0, clients=2, cleanup=failed)
    assert types(status) == {
        "Ready": ("True", "Connected"),
        "CleanedUp": ("False", "CleanupFailed"),
    }
    assert is_ready(status)  # reached and authenticated: kstatus Current, Argo CD Healthy
    message = next(c for c in status["conditions"] if c["type"] == "CleanedUp")["message"]
    assert "2 client(s)" in message
    assert "c1: DELETE http://hydra:4445/admin/clients/c1: 403" in message
    assert IdentityProviderStatus.model_validate(status).to_wire() == status


def test_the_clean_up_condition_is_kept_between_clean_ups_and_clears_on_success():
    failed = provider_status(SPEC, 1, {}, T0, cleanup=CleanupOutcome(0, [("c1", "x: 403")]))
    kept = provider_status(SPEC, 1, failed, T0 + timedelta(seconds=5))  # no clean-up this pass
    assert cleanup_types(kept) == {"CleanedUp": ("False", "CleanupFailed")}
    cleared = provider_status(SPEC, 1, kept, T0 + timedelta(minutes=1), cleanup=CleanupOutcome(1))
    assert cleanup_types(cleared) == {"CleanedUp": ("True", "CleanedUp")}
    # And a provider down keeps what the last clean-up said.
    down = provider_status(
        SPEC, 1, cleared, T0 + timedelta(minutes=2), reason=Reason.PROVIDER_UNREACHABLE
    )
    assert cleanup_types(down) == {"CleanedUp": ("True", "CleanedUp")}


def test_the_clean_up_message_is_bounded_and_names_a_few_clients():
    many = CleanupOutcome(0, [(f"client-{i}", "DELETE x: 403 " + "y" * 300) for i in range(50)])
    message = many.message()
    assert len(message) <= MAX_CLEANUP_MESSAGE
    assert message.startswith("50 client(s)")
    assert "client-0" in message
    assert "client-49" not in message
    assert CleanupOutcome(1).message() == CleanupOutcome(7).message()  # no status churn


def test_a_client_id_the_provider_lists_is_named_on_one_line_and_bounded():
    # The IDs come from the provider's list, where anyone with its admin API can write any
    # client: a forged one must not break the message into lines (logs, Events) nor fill it.
    forged = "x\nWarning: forged line\x1b[31m" + "z" * 1000
    failures = [(forged, "DELETE x: 403"), ("client-2", "DELETE y: 403")]
    message = CleanupOutcome(0, failures).message()
    assert message.isprintable()
    assert "client-2" in message  # the next one is still named
