"""KeycloakClient against a real Keycloak 26.5.6 (tests/providers/keycloak.py): no
Kubernetes, no mocks. credsmith signs in as a client with only `manage-clients`; the
master admin plays the person who edits Keycloak behind our back."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from credsmith.providers import keycloak as keycloak_module
from credsmith.providers import keycloak_rep
from credsmith.providers.base import DesiredClient, Marker, Owner, ProviderError, ProviderReason
from credsmith.providers.cleanup import clients_to_delete, still_to_delete
from credsmith.providers.keycloak import AdminCredentials, KeycloakClient
from tests.providers.keycloak import (
    KeycloakRealm,
    free_port,
    token_with_assertion,
    token_with_secret,
)

T = TypeVar("T")
PROVIDER_UID = "provider-uid-1"


def run(realm: KeycloakRealm, use: Callable[[KeycloakClient], Awaitable[T]], **kw: Any) -> T:
    """`use` with a KeycloakClient signed in as credsmith's admin client of the realm."""

    async def go() -> T:
        client = KeycloakClient(
            kw.pop("url", realm.url),
            realm.realm,
            kw.pop("admin_client_id", realm.admin_client_id),
            kw.pop("admin_client_secret", realm.admin_client_secret),
        )
        try:
            return await use(client)
        finally:
            await client.close()

    return asyncio.run(go())


def ensure(realm: KeycloakRealm, desired: DesiredClient) -> tuple[str, ...]:
    return run(realm, lambda client: client.ensure(desired))


def failure(
    realm: KeycloakRealm, use: Callable[[KeycloakClient], Awaitable[Any]], **kw: Any
) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        run(realm, use, **kw)
    return caught.value


def new_id() -> str:
    return f"app-{uuid.uuid4().hex[:10]}"


def marker(owner_uid: str = "owner-uid-1", provider_uid: str = PROVIDER_UID) -> Marker:
    return Marker(provider_uid, Owner("ApiClient", "team-a", "billing", owner_uid), revision=1)


def secret_client(client_id: str, secret: str, **kw: Any) -> DesiredClient:
    return DesiredClient(
        client_id=client_id,
        marker=kw.pop("marker", marker()),
        auth_method="client_secret_basic",
        secret=secret,
        **kw,
    )


def token_status(realm: KeycloakRealm, client_id: str, secret: str) -> int:
    return token_with_secret(realm.token_url, client_id, secret)[0]


def untouched(client: dict[str, Any] | None) -> dict[str, Any]:
    """A client's representation, its lists sorted (Keycloak lists scopes in any order)."""
    assert client is not None
    return {
        key: sorted(value)
        if isinstance(value, list) and all(isinstance(v, str) for v in value)
        else value
        for key, value in client.items()
    }


def claims(token: str) -> dict[str, Any]:
    import jwt

    found: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return found


def test_secret_client_gets_a_token_and_a_second_ensure_changes_nothing(
    keycloak_realm: KeycloakRealm,
) -> None:
    client_id = new_id()
    assert ensure(keycloak_realm, secret_client(client_id, "s3cret-one")) == ("client",)
    assert token_status(keycloak_realm, client_id, "s3cret-one") == 200
    assert token_status(keycloak_realm, client_id, "wrong") == 401
    assert ensure(keycloak_realm, secret_client(client_id, "s3cret-one")) == ()
    held = keycloak_realm.client(client_id)
    assert held is not None
    assert held["attributes"]["credsmith.io/owner-uid"] == "owner-uid-1"
    assert (held["serviceAccountsEnabled"], held["standardFlowEnabled"]) == (True, False)


def test_a_secret_changed_in_keycloak_is_reported_and_put_back(
    keycloak_realm: KeycloakRealm,
) -> None:
    client_id = new_id()
    ensure(keycloak_realm, secret_client(client_id, "ours-1"))
    held = keycloak_realm.client(client_id)
    assert held is not None
    status, _ = keycloak_realm.admin("POST", f"/clients/{held['id']}/client-secret")  # regenerate
    assert status == 200
    assert token_status(keycloak_realm, client_id, "ours-1") == 401
    assert ensure(keycloak_realm, secret_client(client_id, "ours-1")) == ("secret",)
    assert token_status(keycloak_realm, client_id, "ours-1") == 200
    assert ensure(keycloak_realm, secret_client(client_id, "ours-1")) == ()


def test_scope_and_audience_edited_in_keycloak_are_put_back(keycloak_realm: KeycloakRealm) -> None:
    scope = f"read-{uuid.uuid4().hex[:6]}"
    status, _ = keycloak_realm.admin(
        "POST", "/client-scopes", {"name": scope, "protocol": "openid-connect"}
    )
    assert status == 201
    client_id = new_id()
    desired = secret_client(client_id, "s", scope=(scope,), audience=("orders-api",))
    assert ensure(keycloak_realm, desired) == ("client",)
    status, body = token_with_secret(keycloak_realm.token_url, client_id, "s")
    assert status == 200
    assert scope in body["scope"].split()
    assert "orders-api" in claims(body["access_token"])["aud"]

    held = keycloak_realm.client(client_id)
    assert held is not None
    _, scopes = keycloak_realm.admin("GET", f"/clients/{held['id']}/default-client-scopes")
    scope_id = next(s["id"] for s in scopes if s["name"] == scope)
    keycloak_realm.admin("DELETE", f"/clients/{held['id']}/default-client-scopes/{scope_id}")
    mapper = next(
        m for m in held["protocolMappers"] if m["protocolMapper"] == "oidc-audience-mapper"
    )
    keycloak_realm.admin("DELETE", f"/clients/{held['id']}/protocol-mappers/models/{mapper['id']}")
    status, body = token_with_secret(keycloak_realm.token_url, client_id, "s")
    assert scope not in body["scope"].split()

    assert ensure(keycloak_realm, desired) == ("scope", "audience")
    status, body = token_with_secret(keycloak_realm.token_url, client_id, "s")
    assert scope in body["scope"].split()
    assert "orders-api" in claims(body["access_token"])["aud"]
    assert ensure(keycloak_realm, desired) == ()
    # A scope no longer wanted is removed; the realm's defaults stay.
    assert ensure(keycloak_realm, secret_client(client_id, "s")) == ("scope", "audience")
    status, body = token_with_secret(keycloak_realm.token_url, client_id, "s")
    assert scope not in body["scope"].split()
    assert "profile" in body["scope"].split()


def test_every_supported_grant_type_is_held_and_compared(keycloak_realm: KeycloakRealm) -> None:
    client_id = new_id()
    grants = tuple(keycloak_rep.GRANT_SWITCHES)
    assert ensure(keycloak_realm, secret_client(client_id, "s", grant_types=grants)) == ("client",)
    assert ensure(keycloak_realm, secret_client(client_id, "s", grant_types=grants)) == ()
    held = keycloak_realm.client(client_id)
    assert held is not None
    assert held["directAccessGrantsEnabled"] is True
    assert held["attributes"]["standard.token.exchange.enabled"] == "true"
    assert held["attributes"]["oauth2.device.authorization.grant.enabled"] == "true"
    assert held["attributes"]["client_credentials.use_refresh_token"] == "true"
    assert "refresh_token" in token_with_secret(keycloak_realm.token_url, client_id, "s")[1]
    narrowed = secret_client(client_id, "s")
    assert ensure(keycloak_realm, narrowed) == ("grantTypes",)
    held = keycloak_realm.client(client_id)
    assert held is not None
    assert held["directAccessGrantsEnabled"] is False
    assert "refresh_token" not in token_with_secret(keycloak_realm.token_url, client_id, "s")[1]


def test_a_client_deleted_in_keycloak_is_created_again(keycloak_realm: KeycloakRealm) -> None:
    client_id = new_id()
    ensure(keycloak_realm, secret_client(client_id, "s"))
    held = keycloak_realm.client(client_id)
    assert held is not None
    assert keycloak_realm.admin("DELETE", f"/clients/{held['id']}")[0] == 204
    assert ensure(keycloak_realm, secret_client(client_id, "s")) == ("client",)
    assert token_status(keycloak_realm, client_id, "s") == 200


def test_no_overlap_the_previous_secret_stops_when_the_secret_changes(
    keycloak_realm: KeycloakRealm,
) -> None:
    assert KeycloakClient.holds_two_secrets is False
    client_id = new_id()
    ensure(keycloak_realm, secret_client(client_id, "first"))
    assert ensure(keycloak_realm, secret_client(client_id, "second")) == ("secret",)
    assert token_status(keycloak_realm, client_id, "second") == 200
    assert token_status(keycloak_realm, client_id, "first") == 401


def test_keycloak_drops_a_rotated_secret_set_by_a_client_update(
    keycloak_realm: KeycloakRealm,
) -> None:
    """Why holds_two_secrets is False: Keycloak honours a rotated secret the client was
    created with, and removes it on any update (PUT) without a secret-rotation policy."""
    now = int(time.time())
    rotated = {
        "client.secret.rotated": "previous",
        "client.secret.rotated.creation.time": str(now),
        "client.secret.rotated.expiration.time": str(now + 600),
    }
    client_id = new_id()
    status, _ = keycloak_realm.admin(
        "POST",
        "/clients",
        {
            "clientId": client_id,
            "secret": "current",
            "serviceAccountsEnabled": True,
            "attributes": rotated,
        },
    )
    assert status == 201
    assert token_status(keycloak_realm, client_id, "previous") == 200  # honoured once created
    held = keycloak_realm.client(client_id)
    assert held is not None
    held["attributes"].update(rotated)
    assert keycloak_realm.admin("PUT", f"/clients/{held['id']}", held)[0] == 204
    assert token_status(keycloak_realm, client_id, "previous") == 401
    held = keycloak_realm.client(client_id)
    assert held is not None
    assert "client.secret.rotated" not in held["attributes"]


def _rsa() -> tuple[str, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="rsa-1", use="sig", alg="RS256")
    return _pem(key), jwk


def _ec() -> tuple[str, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="ec-2", use="sig", alg="ES256")
    return _pem(key), jwk


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_keypair_current_and_previous_keys_both_sign_in(keycloak_realm: KeycloakRealm) -> None:
    (old_pem, old_jwk), (new_pem, new_jwk) = _rsa(), _ec()
    client_id = new_id()

    def keypair(*jwks: dict[str, Any]) -> DesiredClient:
        return DesiredClient(client_id, marker(), "private_key_jwt", jwks=jwks)

    def status(pem: str, kid: str, alg: str) -> int:
        return token_with_assertion(
            keycloak_realm.token_url, client_id, pem, kid=kid, algorithm=alg
        )[0]

    assert ensure(keycloak_realm, keypair(old_jwk)) == ("client",)
    assert status(old_pem, "rsa-1", "RS256") == 200
    assert status(new_pem, "ec-2", "ES256") in (400, 401)
    assert ensure(keycloak_realm, keypair(new_jwk, old_jwk)) == ("jwks",)
    assert status(new_pem, "ec-2", "ES256") == 200
    assert status(old_pem, "rsa-1", "RS256") == 200
    assert ensure(keycloak_realm, keypair(new_jwk, old_jwk)) == ()
    assert ensure(keycloak_realm, keypair(new_jwk)) == ("jwks",)
    assert status(new_pem, "ec-2", "ES256") == 200
    assert status(old_pem, "rsa-1", "RS256") in (400, 401)


def test_a_client_that_is_not_ours_is_a_conflict_and_left_untouched(
    keycloak_realm: KeycloakRealm,
) -> None:
    client_id = new_id()
    status, _ = keycloak_realm.admin(
        "POST",
        "/clients",
        {"clientId": client_id, "secret": "theirs", "serviceAccountsEnabled": True},
    )
    assert status == 201
    before = untouched(keycloak_realm.client(client_id))
    error = failure(keycloak_realm, lambda client: client.ensure(secret_client(client_id, "ours")))
    assert error.reason is ProviderReason.CONFLICT
    assert client_id in error.message
    assert "ours" not in error.message
    assert "theirs" not in error.message
    error = failure(keycloak_realm, lambda client: client.delete(client_id))
    assert error.reason is ProviderReason.CONFLICT
    assert untouched(keycloak_realm.client(client_id)) == before
    assert token_status(keycloak_realm, client_id, "theirs") == 200

    # Another owner's client (same provider, another UID) is not taken over either.
    mine = new_id()
    ensure(keycloak_realm, secret_client(mine, "a", marker=marker("owner-uid-A")))
    error = failure(
        keycloak_realm,
        lambda client: client.ensure(secret_client(mine, "b", marker=marker("owner-uid-B"))),
    )
    assert error.reason is ProviderReason.CONFLICT
    assert token_status(keycloak_realm, mine, "a") == 200


def test_list_marked_pages_through_clients_and_delete_removes_one(
    keycloak_realm: KeycloakRealm, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = f"provider-{uuid.uuid4().hex[:6]}"
    ours = [new_id(), new_id(), new_id()]
    for index, client_id in enumerate(ours):
        ensure(
            keycloak_realm, secret_client(client_id, "s", marker=marker(f"uid-{index}", provider))
        )
    ensure(keycloak_realm, secret_client(new_id(), "s", marker=marker("uid-x", "another-provider")))
    monkeypatch.setattr(keycloak_module, "PAGE", 2)  # several pages even in a small realm

    listed = run(keycloak_realm, lambda client: client.list_marked(provider))
    assert sorted(m.client_id for m in listed) == sorted(ours)
    first = next(m for m in listed if m.client_id == ours[0])
    assert first.marker == marker("uid-0", provider)

    run(keycloak_realm, lambda client: client.delete(ours[0]))
    run(keycloak_realm, lambda client: client.delete(ours[0]))  # gone already: fine
    assert keycloak_realm.client(ours[0]) is None
    listed = run(keycloak_realm, lambda client: client.list_marked(provider))
    assert sorted(m.client_id for m in listed) == sorted(ours[1:])


def test_clean_up_reads_each_client_again_and_deletes_only_what_is_still_orphaned(
    keycloak_realm: KeycloakRealm,
) -> None:
    """Between the list and the delete a client may be re-marked (its owner's new provider
    resource) or taken over (our marker removed): delete_if reads it again and keeps it."""
    realm = keycloak_realm
    provider = f"provider-{uuid.uuid4().hex[:6]}"
    ids = {name: new_id() for name in ("orphan", "adopted", "taken")}
    for client_id in ids.values():
        ensure(realm, secret_client(client_id, "s", marker=marker("dead-owner", provider)))
    listed = run(realm, lambda client: client.list_marked(provider))
    doomed = clients_to_delete(listed, provider, {}, lambda namespace: True)
    assert sorted(doomed) == sorted(ids.values())  # all three, as listed

    def re_mark(client_id: str, attributes: dict[str, str]) -> None:
        """Someone editing the client's attributes in Keycloak (an update keeps attributes
        it is not sent: one is cleared by sending it empty)."""
        rep = realm.client(client_id)
        assert rep is not None
        rep["attributes"] = {**rep.get("attributes", {}), **attributes}
        assert realm.admin("PUT", f"/clients/{rep['id']}", rep)[0] == 204

    re_mark(ids["adopted"], {keycloak_rep.PROVIDER_UID: "another-provider"})
    re_mark(ids["taken"], {keycloak_rep.PROVIDER_UID: "", keycloak_rep.OWNER_UID: ""})

    def decide(client_id: str) -> Callable[[Marker | None], bool]:
        return lambda found: still_to_delete(client_id, found, provider, {}, lambda ns: True)

    deleted = {
        client_id: run(realm, lambda client, c=client_id: client.delete_if(c, decide(c)))  # type: ignore[misc]
        for client_id in doomed
    }
    assert deleted == {ids["orphan"]: True, ids["adopted"]: False, ids["taken"]: False}
    assert realm.client(ids["orphan"]) is None
    assert realm.client(ids["adopted"]) is not None
    taken = realm.client(ids["taken"])
    assert taken is not None
    assert keycloak_rep.marker_of(taken) is None
    assert (
        run(realm, lambda client: client.delete_if(ids["orphan"], decide(ids["orphan"]))) is False
    )


def regenerate_secret(realm: KeycloakRealm, client_id: str) -> str:
    """What a person rotating a client's secret in Keycloak's console does; the new one."""
    held = realm.client(client_id)
    assert held is not None
    status, body = realm.admin("POST", f"/clients/{held['id']}/client-secret")
    assert status == 200, status
    return str(body["value"])


def test_a_refused_admin_login_reads_the_admin_credentials_again_once(
    keycloak_realm: KeycloakRealm,
) -> None:
    """The admin client's secret rotated in Keycloak (and in the Secret the provider names):
    the admin token's renewal is refused with the old one, the credentials are read again,
    and the call goes through with the new one; read again once, not in a loop."""
    realm = keycloak_realm
    admin_id = f"credsmith-rotated-{uuid.uuid4().hex[:6]}"
    old = realm.add_admin_client(admin_id, ("manage-clients",))
    held = {"secret": old}
    reads: list[str] = []

    async def reload() -> AdminCredentials:
        reads.append(admin_id)
        return AdminCredentials(admin_id, held["secret"], taken=lambda: None)

    now = [time.time()]

    async def scenario() -> None:
        client = KeycloakClient(
            realm.url, realm.realm, admin_id, old, reload_credentials=reload, clock=lambda: now[0]
        )
        try:
            await client.check()
            held["secret"] = regenerate_secret(realm, admin_id)
            now[0] += 3600  # the cached admin token is renewed at the next call
            await client.check()  # refused with the old secret, then signed in with the new
            assert reads == [admin_id]
            await client.check()  # the new one cached: nothing read again
            assert reads == [admin_id]

            regenerate_secret(realm, admin_id)  # the Secret not updated this time
            now[0] += 3600
            with pytest.raises(ProviderError) as caught:
                await client.check()
            assert caught.value.reason is ProviderReason.LOGIN_REFUSED
            assert reads == [admin_id, admin_id]  # once, then reported
        finally:
            await client.close()

    asyncio.run(scenario())


def test_check_passes_with_manage_clients(keycloak_realm: KeycloakRealm) -> None:
    run(keycloak_realm, lambda client: client.check())


def test_nothing_listening_is_unreachable_with_the_address(keycloak_realm: KeycloakRealm) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    error = failure(keycloak_realm, lambda client: client.check(), url=url)
    assert error.reason is ProviderReason.UNREACHABLE
    assert url in error.message


def test_tls_to_a_plain_http_port_is_a_tls_error(keycloak_realm: KeycloakRealm) -> None:
    url = keycloak_realm.url.replace("http://", "https://")
    error = failure(keycloak_realm, lambda client: client.check(), url=url)
    assert error.reason is ProviderReason.TLS_ERROR
    assert url in error.message


def test_a_wrong_admin_secret_is_login_refused(keycloak_realm: KeycloakRealm) -> None:
    error = failure(keycloak_realm, lambda client: client.check(), admin_client_secret="not-it")
    assert error.reason is ProviderReason.LOGIN_REFUSED
    assert keycloak_realm.admin_client_id in error.message
    assert "not-it" not in error.message
    assert keycloak_realm.admin_client_secret not in repr(
        KeycloakClient(
            keycloak_realm.url, keycloak_realm.realm, "x", keycloak_realm.admin_client_secret
        )
    )


def test_an_admin_client_without_manage_clients_is_forbidden(keycloak_realm: KeycloakRealm) -> None:
    viewer = f"viewer-{uuid.uuid4().hex[:6]}"
    secret = keycloak_realm.add_admin_client(viewer, ("view-clients",))
    run(
        keycloak_realm,
        lambda client: client.check(),
        admin_client_id=viewer,
        admin_client_secret=secret,
    )
    client_id = new_id()
    error = failure(
        keycloak_realm,
        lambda client: client.ensure(secret_client(client_id, "s")),
        admin_client_id=viewer,
        admin_client_secret=secret,
    )
    assert error.reason is ProviderReason.FORBIDDEN
    assert "403" in error.message
    assert keycloak_realm.client(client_id) is None


def test_an_unknown_scope_is_rejected_by_name_and_nothing_is_created(
    keycloak_realm: KeycloakRealm,
) -> None:
    client_id = new_id()
    error = failure(
        keycloak_realm,
        lambda client: client.ensure(secret_client(client_id, "s", scope=("no-such-scope",))),
    )
    assert error.reason is ProviderReason.REJECTED
    assert "no-such-scope" in error.message
    assert keycloak_realm.client(client_id) is None
