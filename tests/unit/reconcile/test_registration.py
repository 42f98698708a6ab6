"""spec.identityProvider in the pipeline: the register stage and apply_outcome (verifier
first), run through the harness (conftest.World), which calls apply_outcome where the runtime
calls client.ensure and checks every pass for leaks and a status the CRD accepts."""

from datetime import timedelta

import pytest

from credsmith.api.identity_provider import ClusterIdentityProviderSpec, IdentityProviderSpec
from credsmith.api.provider_ref import ProviderKind
from credsmith.issuing.keypair import key_pair_from_private_pem
from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.registration import (
    ProviderSeen,
    RegistrationOutcome,
)

NAMESPACE = "team-a"  # conftest.NAMESPACE, where the harness puts its resources

SA = {"serviceAccount": "billing-exporter"}
PROVIDER_UID = "6f1c2a9e-0b7d-4e58-9c3a-1d2e3f4a5b6c"
NAMED = {"identityProvider": {"name": "hydra"}}
HOUR = timedelta(hours=1)
DOWN = ProviderError(ProviderReason.UNREACHABLE, "http://hydra-admin.auth:4445: connection refused")


def hydra(ready=True, ready_reason=""):
    return ProviderSeen(
        kind=ProviderKind.IDENTITY_PROVIDER,
        name="hydra",
        namespace=NAMESPACE,
        uid=PROVIDER_UID,
        spec=IdentityProviderSpec.model_validate({"hydra": {"adminURL": "http://hydra:4445"}}),
        ready=ready,
        ready_reason=ready_reason,
    )


def cluster_provider(allowed, labels):
    spec = {"keycloak": KEYCLOAK}
    if allowed is not None:
        spec["allowedNamespaces"] = allowed
    return ProviderSeen(
        kind=ProviderKind.CLUSTER_IDENTITY_PROVIDER,
        name="shared",
        namespace="",
        uid=PROVIDER_UID,
        spec=ClusterIdentityProviderSpec.model_validate(spec),
        ready=True,
        namespace_labels=labels,
    )


KEYCLOAK = {
    "url": "https://keycloak:8443",
    "realm": "machines",
    "credentialsSecretRef": {"name": "kc", "clientIdKey": "id", "clientSecretKey": "secret"},
}
CLUSTER_NAMED = {"identityProvider": {"kind": "ClusterIdentityProvider", "name": "shared"}}


def named(world, spec=None, provider=None, **kw):
    w = world({**SA, **NAMED, **(spec or {})}, **kw)
    w.provider = provider if provider is not None else hydra()
    return w


def failing(error=DOWN):
    return lambda registration: RegistrationOutcome(error=error)


def event_reasons(decision):
    return [(e.type, e.reason) for e in decision.events]


# ---- the provider: missing, not allowed, not to be called ---------------------------------


def test_a_missing_provider_stops_the_pass_without_a_secret(world):
    w = world({**SA, **NAMED})  # the runtime found no IdentityProvider "hydra"
    decision = w.step()
    assert w.secret is None
    assert decision.registration is None
    assert w.registrations == []
    assert w.condition()["status"] == "False"
    assert w.condition()["reason"] == "ProviderNotFound"
    assert "IdentityProvider hydra in namespace team-a not found" in w.condition()["message"]
    assert w.condition("Registered")["reason"] == "ProviderNotFound"
    assert w.condition("Stalled")["status"] == "True"
    assert w.status["identityProvider"] == {"registered": False}


def test_a_missing_provider_leaves_an_issued_secret_as_it_was(world):
    w = world(SA)
    w.step()
    before, writes = w.data(), w.secret_writes
    w.edit_spec(lambda s: s.update(NAMED))
    w.step()
    assert (w.data(), w.secret_writes) == (before, writes)
    assert w.condition("Registered")["reason"] == "ProviderNotFound"


@pytest.mark.parametrize(
    ("allowed", "labels"),
    [
        (None, {"team": "billing"}),  # absent: no namespace
        ({"matchLabels": {"team": "payments"}}, {"team": "billing"}),
        ({"matchExpressions": [{"key": "idp", "operator": "Exists"}]}, {}),
    ],
    ids=["absent", "other-label", "expression"],
)
def test_a_cluster_provider_that_does_not_select_the_namespace_is_refused(world, allowed, labels):
    w = world({**SA, **CLUSTER_NAMED})
    w.provider = cluster_provider(allowed, labels)
    w.step()
    assert w.secret is None
    assert w.registrations == []
    registered = w.condition("Registered")
    assert (registered["status"], registered["reason"]) == ("False", "ProviderNotAllowed")
    assert (
        "ClusterIdentityProvider shared does not allow namespace team-a" in (registered["message"])
    )
    assert w.condition()["reason"] == "ProviderNotAllowed"


@pytest.mark.parametrize(
    "allowed", [{}, {"matchLabels": {"team": "billing"}}], ids=["empty-selects-all", "label"]
)
def test_a_cluster_provider_that_selects_the_namespace_registers(world, allowed):
    w = world({**SA, **CLUSTER_NAMED})
    w.provider = cluster_provider(allowed, {"team": "billing"})
    w.step()
    assert w.condition("Registered")["status"] == "True"
    assert w.registrations[0].provider.kind is ProviderKind.CLUSTER_IDENTITY_PROVIDER


def test_an_identity_provider_of_another_namespace_is_refused(world):
    # The runtime looks one up in the credential's namespace only; should it ever hand
    # over another namespace's, the pass still refuses it.
    other = hydra()
    other = type(other)(**{**other.__dict__, "namespace": "team-b"})
    w = named(world, provider=other)
    w.step()
    assert w.secret is None
    assert w.registrations == []
    registered = w.condition("Registered")
    assert registered["reason"] == "ProviderNotAllowed"
    assert "it serves its own namespace only" in registered["message"]


def test_a_provider_outside_the_url_allow_list_is_never_asked(world):
    w = named(world, provider=hydra(ready=False, ready_reason="URLNotAllowed"))
    w.step()
    assert w.registrations == []
    assert w.secret is None
    assert w.condition("Registered")["reason"] == "URLNotAllowed"


# ---- what the provider must hold -----------------------------------------------------------


def test_client_secret_desired_client(world):
    w = named(
        world,
        {
            "identityProvider": {
                "name": "hydra",
                "client": {"scope": ["read", "write"], "audience": ["https://api"]},
            }
        },
    )
    w.step()
    [registration] = w.registrations
    desired = registration.desired
    data = w.data()
    assert desired.client_id == data["client_id"] == w.status["clientId"]
    assert desired.secret == data["client_secret"]  # what the Secret holds after the pass
    assert desired.previous_secret is None
    assert desired.jwks == ()
    assert desired.auth_method == "client_secret_basic"
    assert desired.grant_types == ("client_credentials",)
    assert (desired.scope, desired.audience) == (("read", "write"), ("https://api",))
    assert desired.marker.provider_uid == PROVIDER_UID
    owner = desired.marker.owner
    assert (owner.kind, owner.namespace, owner.name, owner.uid) == (
        "ServiceAccountCredential",
        NAMESPACE,
        "billing",
        w.uid,
    )
    assert desired.marker.revision == 1
    assert registration.changes_value  # a first issue
    assert str(registration.provider) == f"IdentityProvider {NAMESPACE}/hydra"


def test_api_client_registers_its_client_secret(world):
    w = named(world, rules=API_CLIENT, spec={"displayName": "Billing"})
    w.step()
    assert w.registrations[0].desired.secret == w.data()["client_secret"]
    assert w.condition("Registered")["status"] == "True"


def test_key_pair_registers_its_public_key(world):
    w = named(world, {"type": "KeyPair"})
    w.step()
    desired = w.registrations[-1].desired
    public = key_pair_from_private_pem(w.data()["private_key.pem"]).public_jwk
    assert desired.jwks == (public,)
    assert "d" not in desired.jwks[0]  # public members only
    assert desired.secret is None
    assert desired.auth_method == "private_key_jwt"


def test_previous_value_and_key_during_the_overlap_then_gone(world):
    rotation = {"rotation": {"period": "24h", "overlap": "2h"}}
    w = named(world, rotation)
    w.step()
    old = w.data()["client_secret"]
    w.step(advance=25 * HOUR)
    desired = w.registrations[-1].desired
    assert desired.secret == w.data()["client_secret"] != old
    assert desired.previous_secret == old == w.data()["client_secret_previous"]
    assert desired.previous_expires_at is not None
    assert desired.marker.revision == 2
    w.step(advance=3 * HOUR)  # the overlap is over
    desired = w.registrations[-1].desired
    assert desired.previous_secret is None
    assert desired.previous_expires_at is None

    k = named(world, {"type": "KeyPair", **rotation}, name="signer")
    k.step()
    old_key = key_pair_from_private_pem(k.data()["private_key.pem"]).public_jwk
    k.step(advance=25 * HOUR)
    new_key = key_pair_from_private_pem(k.data()["private_key.pem"]).public_jwk
    assert k.registrations[-1].desired.jwks == (new_key, old_key)  # current first
    k.step(advance=3 * HOUR)
    assert k.registrations[-1].desired.jwks == (new_key,)


# ---- the provider's answer -----------------------------------------------------------------


def test_success_fills_registered_and_converges(world):
    w = named(world)
    decision = w.step()
    assert decision.secret is not None
    assert not decision.retry
    registered = w.condition("Registered")
    assert (registered["status"], registered["reason"]) == ("True", "Registered")
    assert "holds client client-001 at revision 1" in registered["message"]
    assert w.status["identityProvider"] == {
        "registered": True,
        "clientId": "client-001",
        "revision": 1,
    }
    assert w.condition()["status"] == "True"
    w.converge()


def test_drift_is_a_warning_naming_what_differed(world):
    w = named(world)
    w.answer = lambda registration: RegistrationOutcome(drifted=("client",))
    first = w.step()
    assert "ProviderDrift" not in [e.reason for e in first.events]  # created, not drifted
    w.answer = lambda registration: RegistrationOutcome(drifted=("secret", "scope"))
    decision = w.step()
    [drift] = [e for e in decision.events if e.reason == "ProviderDrift"]
    assert drift.type == "Warning"
    assert "(secret, scope)" in drift.message
    assert "client-001" in drift.message
    w.answer = lambda registration: RegistrationOutcome(drifted=("client",))
    decision = w.step()  # deleted in the provider after it was registered: drift
    assert "ProviderDrift" in [e.reason for e in decision.events]
    assert w.data()["client_id"] == "client-001"  # the consumer's value never changes


@pytest.mark.parametrize(
    ("spec", "holds_two", "reason"),
    [
        ({"rotation": {"period": "24h", "overlap": "1h"}}, False, "OverlapUnsupported"),
        ({"rotation": {"period": "24h", "overlap": "1h"}}, True, "Registered"),
        ({"rotation": {"period": "24h"}}, False, "Registered"),
        ({"type": "KeyPair", "rotation": {"period": "24h", "overlap": "1h"}}, False, "Registered"),
    ],
    ids=["overlap-one-secret", "overlap-two-secrets", "no-overlap", "key-pair"],
)
def test_overlap_unsupported_only_where_the_previous_value_would_stop(
    world, spec, holds_two, reason
):
    w = named(world, spec)
    w.answer = lambda registration: RegistrationOutcome(holds_two_secrets=holds_two)
    w.step()  # before the first rotation
    registered = w.condition("Registered")
    assert (registered["status"], registered["reason"]) == ("True", reason)
    if reason == "OverlapUnsupported":
        assert "previous value stops working at the provider" in registered["message"]
    assert w.condition()["status"] == "True"


def test_a_failed_first_registration_creates_no_secret_and_keeps_the_client_id(world):
    w = named(world)
    w.answer = failing()
    decision = w.step()
    assert w.secret is None
    assert decision.secret is None
    assert decision.retry
    for type_ in ("Ready", "Registered"):
        condition = w.condition(type_)
        assert (condition["status"], condition["reason"]) == ("False", "ProviderUnreachable")
        assert "http://hydra-admin.auth:4445: connection refused" in condition["message"]
    assert w.condition("Reconciling")["status"] == "True"
    assert w.condition("Stalled") is None
    assert [e.reason for e in decision.events] == ["ProviderUnreachable"]  # no "Issued"
    assert "revision" not in w.status
    assert w.status["clientId"] == "client-001"
    again = w.step()  # still down: no second Event for the same failure
    assert again.events == ()
    assert w.secret is None

    w.answer = lambda registration: RegistrationOutcome()
    decision = w.step()  # the provider is back
    assert w.data()["client_id"] == "client-001"  # the client the provider was asked to hold
    assert w.registrations[-1].desired.secret == w.data()["client_secret"]
    assert w.condition()["status"] == "True"
    assert w.condition("Reconciling") is None
    assert w.condition("Registered")["reason"] == "Registered"
    assert w.status["revision"] == 1


def test_a_failed_rotation_leaves_the_secret_and_status_as_they_were(world):
    w = named(world, {"rotation": {"period": "24h"}})
    w.step()
    before_data, before_revision = w.data(), w.status["revision"]
    w.answer = failing(ProviderError(ProviderReason.REJECTED, "400 invalid_scope"))
    decision = w.step(advance=25 * HOUR)
    assert decision.secret is None
    assert decision.retry
    assert w.data() == before_data  # verifier first: the provider never took the new value
    assert w.status["revision"] == before_revision
    assert w.condition()["reason"] == "ProviderRejected"
    assert w.status["identityProvider"] == {
        "registered": False,
        "clientId": "client-001",
        "revision": 1,
    }
    assert "Rotated" not in [e.reason for e in decision.events]
    w.answer = lambda registration: RegistrationOutcome()
    w.step()
    assert w.data()["client_secret"] != before_data["client_secret"]
    assert w.status["revision"] == 2 == w.registrations[-1].desired.marker.revision
    assert w.condition()["status"] == "True"


def test_a_failed_resync_is_not_ready_and_recovers(world):
    w = named(world)
    w.step()
    w.answer = failing()
    decision = w.step()
    assert decision.secret is None
    assert w.condition()["status"] == "False"
    assert w.condition("Reconciling")["status"] == "True"
    w.answer = lambda registration: RegistrationOutcome()
    w.step()
    assert w.condition()["status"] == "True"
    assert w.condition("Reconciling") is None
    assert w.condition("Registered")["status"] == "True"


def test_a_failure_keeps_a_write_that_does_not_change_the_value(world):
    # Retiring the previous value: the provider (that holds two) keeps a value the Secret
    # no longer holds, which is safe; the Secret must still lose it on time.
    w = named(world, {"rotation": {"period": "24h", "overlap": "2h"}})
    w.step()
    w.step(advance=25 * HOUR)
    assert "client_secret_previous" in w.data()
    w.answer = failing()
    decision = w.step(advance=3 * HOUR)
    assert decision.secret is not None
    assert "client_secret_previous" not in w.data()
    assert w.condition()["reason"] == "ProviderUnreachable"


def test_removing_identity_provider_drops_its_status(world):
    w = named(world)
    w.step()
    w.edit_spec(lambda s: s.pop("identityProvider"))
    decision = w.step()
    assert decision.registration is None
    assert w.condition("Registered") is None
    assert "identityProvider" not in w.status
    assert w.condition()["status"] == "True"


def test_a_rotation_carries_the_client_the_secret_holds_to_put_back(world):
    # Should the Secret write be refused after the provider took the new value, the
    # runtime puts back what the Secret still holds (Hydra keeps one secret per client).
    w = named(world, {"rotation": {"period": "24h"}})
    w.step()
    assert w.registrations[-1].held is None  # a first issue: nothing held yet
    old = w.data()["client_secret"]
    w.step(advance=25 * HOUR)
    registration = w.registrations[-1]
    assert registration.changes_value
    assert registration.desired.secret == w.data()["client_secret"] != old
    assert registration.held is not None
    assert registration.held.secret == old
    assert registration.held.client_id == registration.desired.client_id
    assert registration.held.marker.revision == 1
    w.step()
    assert w.registrations[-1].held is None  # the value does not change
