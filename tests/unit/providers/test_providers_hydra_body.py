"""The pure half of the Hydra client: the body we send, how a client Hydra holds is
compared with ours, whose it is, and what a token request says about the secret.
(tests/e2e/test_provider_hydra.py proves the client against a real Hydra.)"""

from __future__ import annotations

from typing import Any

import pytest

from credsmith.providers.base import DesiredClient, Marker, Owner, ProviderReason
from credsmith.providers.hydra import reason_of
from credsmith.providers.hydra_body import (
    SecretVerdict,
    differences,
    is_ours,
    marker_of,
    new_client,
    put_back,
    secret_verdict,
)

MARKER = Marker("provider-uid", Owner("ApiClient", "team-a", "orders", "owner-uid"), 3)
EC_KEY = {"kty": "EC", "crv": "P-256", "x": "xx", "y": "yy", "kid": "k1", "alg": "ES256"}


def secret_client(**fields: Any) -> DesiredClient:
    return DesiredClient("orders", MARKER, "client_secret_basic", secret="s3cret-value", **fields)


def key_client(*keys: dict[str, str]) -> DesiredClient:
    return DesiredClient("orders", MARKER, "private_key_jwt", jwks=keys)


def as_held(desired: DesiredClient) -> dict[str, Any]:
    """What Hydra answers for a client created from `desired` (plus fields of its own)."""
    body = new_client(desired)
    body.pop("client_secret", None)
    scope = body["scope"] or "offline_access offline openid"  # Hydra's default for none
    return {**body, "scope": scope, "owner": "", "created_at": "2026-12-06T00:00:00Z"}


def test_in_place_client_has_no_differences_whatever_the_order() -> None:
    desired = secret_client(grant_types=("client_credentials", "refresh_token"), scope=("a", "b"))
    held = as_held(desired)
    held.update(grant_types=["refresh_token", "client_credentials"], scope="b a")
    assert differences(held, desired) == ()


def test_each_field_that_differs_is_named() -> None:
    desired = secret_client(scope=("a",), audience=("https://api.example",))
    held = as_held(desired)
    held.update(
        grant_types=["authorization_code"],
        scope="a admin",
        audience=[],
        token_endpoint_auth_method="client_secret_post",
    )
    held["metadata"]["credsmith"]["revision"] = 2
    assert differences(held, desired) == ("grantTypes", "scope", "audience", "authMethod", "marker")


def test_no_scope_is_hydras_default_scope() -> None:
    """Hydra never keeps an empty scope: it stores its default instead."""
    held = as_held(secret_client())
    held["scope"] = "offline_access offline openid"
    assert differences(held, secret_client()) == ()
    held["scope"] = "admin"
    assert differences(held, secret_client()) == ("scope",)


def test_key_pair_jwks_and_signing_algorithm_are_compared() -> None:
    other = {**EC_KEY, "x": "other", "kid": "k2"}
    desired = key_client(EC_KEY, other)
    held = as_held(desired)
    assert held["token_endpoint_auth_signing_alg"] == "ES256"
    assert differences(held, desired) == ()
    assert differences(held, key_client(EC_KEY)) == ("jwks",)
    held["token_endpoint_auth_signing_alg"] = "RS256"
    assert differences(held, desired) == ("authMethod",)


def test_private_jwk_members_are_never_sent() -> None:
    body = new_client(key_client({**EC_KEY, "d": "private-part"}))
    assert body["jwks"] == {"keys": [EC_KEY]}
    assert "client_secret" not in body


def test_secret_is_sent_on_creation_only_for_a_secret_client() -> None:
    assert new_client(secret_client())["client_secret"] == "s3cret-value"
    with pytest.raises(ValueError, match="needs a secret"):
        new_client(DesiredClient("orders", MARKER, "client_secret_basic"))


def test_put_back_keeps_what_we_do_not_manage_and_never_sends_the_secret_unasked() -> None:
    held = as_held(secret_client())
    held.update(client_secret="hash?", client_name="Orders", scope="admin")
    held["metadata"]["team"] = "a"
    body = put_back(held, secret_client(scope=("a",)))
    assert body["client_name"] == "Orders"
    assert body["scope"] == "a"
    assert body["metadata"]["team"] == "a"
    assert marker_of(body) == MARKER
    assert "client_secret" not in body


def test_marker_round_trip_and_whose_client_it_is() -> None:
    held = as_held(secret_client())
    assert marker_of(held) == MARKER
    assert is_ours(held, MARKER)
    # A provider resource recreated (new UID) adopts its credentials' clients.
    assert is_ours(held, Marker("another-provider", MARKER.owner))
    other_owner = Owner("ApiClient", "team-a", "orders", "another-uid")  # same name, new UID
    assert not is_ours(held, Marker(MARKER.provider_uid, other_owner))


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        "credsmith",
        {},
        {"credsmith": "yes"},
        {"credsmith": {"providerUID": "provider-uid"}},
        {"credsmith": {"providerUID": "", "owner": {"kind": "", "namespace": "", "name": "",
                                                    "uid": "u"}}},
        {"credsmith": {"providerUID": "p", "owner": {"kind": "", "namespace": "", "name": "",
                                                     "uid": ""}}},
        {"credsmith": {"providerUID": "p", "revision": True,
                       "owner": {"kind": "", "namespace": "", "name": "", "uid": "u"}}},
    ],
)  # fmt: skip
def test_a_marker_we_did_not_write_is_no_marker(metadata: object) -> None:
    assert marker_of({"client_id": "orders", "metadata": metadata}) is None
    assert not is_ours({"client_id": "orders", "metadata": metadata}, MARKER)


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        (200, None, SecretVerdict.SAME),
        (400, "invalid_scope", SecretVerdict.SAME),  # the probe's scope: authenticated first
        (400, "unauthorized_client", SecretVerdict.SAME),  # no client_credentials: likewise
        (401, "invalid_client", SecretVerdict.DIFFERS),
        (401, None, SecretVerdict.UNKNOWN),  # a proxy's login page, not Hydra's answer
        (400, "invalid_request", SecretVerdict.UNKNOWN),
        (500, "server_error", SecretVerdict.UNKNOWN),
        (503, None, SecretVerdict.UNKNOWN),
    ],
)
def test_what_a_token_request_says_about_the_secret(
    status: int, error: str | None, verdict: SecretVerdict
) -> None:
    assert secret_verdict(status, error) is verdict


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, ProviderReason.REJECTED),
        (422, ProviderReason.REJECTED),
        (401, ProviderReason.LOGIN_REFUSED),
        (403, ProviderReason.FORBIDDEN),
        (409, ProviderReason.CONFLICT),
        (404, ProviderReason.ERROR),
        (500, ProviderReason.ERROR),
        (502, ProviderReason.ERROR),
    ],
)
def test_http_status_to_reason(status: int, reason: ProviderReason) -> None:
    assert reason_of(status) is reason
