"""Keycloak's client representation and what differs from it (pure; the HTTP side is
proven against a real Keycloak in tests/e2e/test_provider_keycloak.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from credsmith.providers import keycloak_rep as rep_
from credsmith.providers.base import DesiredClient, Marker, Owner, ProviderError, ProviderReason

MARKER = Marker("prov-uid", Owner("ApiClient", "team-a", "billing", "owner-uid"), revision=3)
JWK = {"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "k1"}


def secret_client(**kw: Any) -> DesiredClient:
    return DesiredClient("billing", MARKER, "client_secret_basic", secret="s3cret", **kw)


def held(desired: DesiredClient) -> dict[str, Any]:
    """What Keycloak holds after creating the client from our fields (plus its own)."""
    fields = rep_.desired_fields(desired)
    return rep_.merged({"id": "uuid-1", "attributes": {"realm_client": "false"}}, fields)


def test_a_client_made_from_our_fields_differs_in_nothing() -> None:
    desired = secret_client(grant_types=("client_credentials", "password"), scope=("read",))
    assert rep_.differences(desired, held(desired)) == []
    keypair = DesiredClient("billing", MARKER, "private_key_jwt", jwks=(JWK,))
    assert rep_.differences(keypair, held(keypair)) == []


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda rep: rep.update(secret="other"), "secret"),
        (lambda rep: rep.pop("secret"), "secret"),
        (lambda rep: rep.update(clientAuthenticatorType="client-jwt"), "authMethod"),
        (lambda rep: rep.update(serviceAccountsEnabled=False), "grantTypes"),
        (lambda rep: rep.update(standardFlowEnabled=True), "grantTypes"),
        (
            lambda rep: rep["attributes"].update({"client_credentials.use_refresh_token": "true"}),
            "grantTypes",
        ),
        (lambda rep: rep["attributes"].update({rep_.REVISION: "2"}), "marker"),
    ],
)
def test_each_edit_is_named(edit: Any, named: str) -> None:
    desired = secret_client()
    rep = held(desired)
    edit(rep)
    assert rep_.differences(desired, rep) == [named]


def test_jwks_compared_as_a_set_of_keys() -> None:
    other = {**JWK, "kid": "k2", "x": "zzz"}
    desired = DesiredClient("billing", MARKER, "private_key_jwt", jwks=(JWK, other))
    rep = held(desired)
    rep["attributes"]["jwks.string"] = json.dumps({"keys": [other, JWK]})  # order is no change
    assert rep_.differences(desired, rep) == []
    rep["attributes"]["jwks.string"] = json.dumps({"keys": [JWK]})
    assert rep_.differences(desired, rep) == ["jwks"]
    rep["attributes"]["jwks.string"] = "not json"
    assert rep_.differences(desired, rep) == ["jwks"]


def test_merged_keeps_keycloaks_own_attributes_and_ours_win() -> None:
    desired = secret_client()
    rep = {
        "id": "uuid-1",
        "name": "kept",
        "secret": "old",
        "attributes": {"theirs": "1", rep_.OWNER_UID: "x"},
    }
    merged = rep_.merged(rep, rep_.desired_fields(desired))
    assert merged["name"] == "kept"
    assert merged["secret"] == "s3cret"
    assert merged["attributes"]["theirs"] == "1"
    assert merged["attributes"][rep_.OWNER_UID] == "owner-uid"


def test_ours_only_with_this_provider_and_this_owner() -> None:
    rep = held(secret_client())
    assert rep_.marker_of(rep) == MARKER
    assert rep_.is_ours(rep, MARKER)
    # A provider resource recreated (new UID) adopts its credentials' clients.
    assert rep_.is_ours(rep, Marker("other-provider", MARKER.owner))
    assert not rep_.is_ours(
        rep, Marker("prov-uid", Owner("ApiClient", "team-a", "billing", "new-uid"))
    )
    assert rep_.marker_of({"attributes": {"something": "else"}}) is None
    assert not rep_.is_ours({"clientId": "billing"}, MARKER)


def test_scopes_we_added_are_recorded() -> None:
    assert rep_.recorded_scopes(held(secret_client(scope=("read", "write")))) == {"read", "write"}
    assert rep_.recorded_scopes({"attributes": {}}) == set()


def test_audience_mappers_of_ours_only() -> None:
    ours = {**rep_.audience_mapper("orders"), "id": "m1"}
    theirs = {**rep_.audience_mapper("x"), "id": "m2", "name": "someone's"}
    assert rep_.audience_mappers({"protocolMappers": [ours, theirs]}) == {"orders": "m1"}


@pytest.mark.parametrize(
    ("desired", "named"),
    [
        (DesiredClient("b", MARKER, "tls_client_auth", secret="s"), "tls_client_auth"),
        (secret_client(grant_types=("authorization_code",)), "authorization_code"),
        (DesiredClient("b", MARKER, "client_secret_basic"), "secret"),
        (DesiredClient("b", MARKER, "private_key_jwt"), "JWKS"),
    ],
)
def test_what_keycloak_cannot_hold_is_rejected_by_name(desired: DesiredClient, named: str) -> None:
    with pytest.raises(ProviderError) as caught:
        rep_.check_supported(desired)
    assert caught.value.reason is ProviderReason.REJECTED
    assert named in caught.value.message


# ---- what a realm admin may have written on a client of ours ------------------------------


@pytest.mark.parametrize(
    "jwks_string",
    ['{"keys": 5}', '{"keys": true}', '{"keys": ["k"]}', "[1]", "{", "[" * 5000, 7, ["k"]],
)
def test_a_jwks_string_that_is_no_jwk_set_differs(jwks_string: Any) -> None:
    desired = DesiredClient("billing", MARKER, "private_key_jwt", jwks=(JWK,))
    rep = held(desired)
    rep["attributes"]["jwks.string"] = jwks_string
    assert rep_.differences(desired, rep) == ["jwks"]


@pytest.mark.parametrize("secret", ["\ud800", 5, None, ["s3cret"]])
def test_a_held_secret_that_is_not_our_text_differs(secret: Any) -> None:
    desired = secret_client()
    rep = {**held(desired), "secret": secret}
    assert rep_.differences(desired, rep) == ["secret"]


@pytest.mark.parametrize("recorded", [5, ["read"], None, {"read": 1}])
def test_recorded_scopes_that_are_not_text_are_none(recorded: Any) -> None:
    assert rep_.recorded_scopes({"attributes": {rep_.SCOPES: recorded}}) == set()
    assert rep_.recorded_scopes({"attributes": "read"}) == set()


def test_audience_mappers_not_of_keycloaks_shape_are_skipped() -> None:
    ours = rep_.audience_mapper("orders") | {"id": "m1"}
    forged = [
        "mapper",
        ours | {"config": ["included.custom.audience"]},
        ours | {"config": {"included.custom.audience": 5}},
        ours | {"id": 7},
        ours | {"name": None},
    ]
    assert rep_.audience_mappers({"protocolMappers": [*forged, ours]}) == {"orders": "m1"}
    assert rep_.audience_mappers({"protocolMappers": {"m1": ours}}) == {}
