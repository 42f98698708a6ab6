"""A provider's status (reconcile/provider_status.py): kstatus conventions, as the credentials'."""

from datetime import UTC, datetime, timedelta

import pytest

from credsmith.api.identity_provider import IdentityProviderSpec, IdentityProviderStatus
from credsmith.api.status import Reason
from credsmith.reconcile.provider_status import is_ready, provider_status

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
