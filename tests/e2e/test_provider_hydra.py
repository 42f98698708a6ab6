"""HydraClient against a real Ory Hydra (tests/providers/hydra.py): no Kubernetes, no mock.

What a consumer sees is checked at Hydra's own token endpoint: a client_credentials
request with the secret (client_secret_basic), or with a client assertion signed by PyJWT
(private_key_jwt). Each test uses client IDs and a provider UID of its own, so tests
share this worker's Hydra.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from credsmith.api.enums import KeyAlgorithm
from credsmith.dev.hydra import LocalHydra
from credsmith.issuing.keypair import KeyPair, new_key_pair
from credsmith.providers.base import DesiredClient, Marker, Owner, ProviderError, ProviderReason
from credsmith.providers.cleanup import clients_to_delete, still_to_delete
from credsmith.providers.hydra import HydraClient
from tests.providers.hydra import admin_call, token_with_assertion, token_with_secret

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def marker(provider_uid: str, owner_uid: str | None = None, revision: int = 1) -> Marker:
    owner = Owner("ApiClient", "team-a", "orders", owner_uid or str(uuid.uuid4()))
    return Marker(provider_uid, owner, revision)


def with_secret(client_id: str, secret: str, found: Marker, **fields: Any) -> DesiredClient:
    return DesiredClient(client_id, found, "client_secret_basic", secret=secret, **fields)


def with_keys(client_id: str, found: Marker, *keys: KeyPair, **fields: Any) -> DesiredClient:
    jwks = tuple(key.public_jwk for key in keys)
    return DesiredClient(client_id, found, "private_key_jwt", jwks=jwks, **fields)


def run(
    hydra: LocalHydra,
    scenario: Callable[[HydraClient], Awaitable[T]],
    *,
    public: bool = True,
    admin_url: str | None = None,
    timeout: float = 10.0,
) -> T:
    """`scenario` with a HydraClient of its own, closed after it."""

    async def main() -> T:
        client = HydraClient(
            admin_url or hydra.admin_url, hydra.public_url if public else None, timeout=timeout
        )
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


def failure(hydra: LocalHydra, scenario: Callable[[HydraClient], Awaitable[Any]], **options: Any):
    with pytest.raises(ProviderError) as caught:
        run(hydra, scenario, **options)
    return caught.value


def secret_token(hydra: LocalHydra, client_id: str, secret: str) -> tuple[int, str | None]:
    status, body = token_with_secret(hydra.token_url, client_id, secret)
    return status, body.get("error")


# What Hydra answers to an assertion signed by a key the client's JWKS does not hold.
UNKNOWN_KEY = (400, "invalid_request")
OK = (200, None)


def key_token(hydra: LocalHydra, client_id: str, key: KeyPair) -> tuple[int, str | None]:
    status, body = token_with_assertion(
        hydra.token_url,
        client_id,
        key.private_key_pem,
        kid=key.key_id,
        algorithm=key.public_jwk["alg"],
    )
    return status, body.get("error")


def held(hydra: LocalHydra, client_id: str) -> dict[str, Any]:
    status, body = admin_call(hydra, "GET", f"/admin/clients/{client_id}")
    assert status == 200, body
    return dict(body)


def edit(hydra: LocalHydra, client_id: str, path: str, value: Any) -> None:
    """Someone changing the client in Hydra (JSON Patch), behind the operator's back."""
    operation = [{"op": "replace", "path": path, "value": value}]
    status, body = admin_call(hydra, "PATCH", f"/admin/clients/{client_id}", operation, patch=True)
    assert status == 200, body


def test_created_client_gets_a_token_with_its_secret_and_none_with_another(
    hydra: LocalHydra, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client_id, secret = unique("created"), uuid.uuid4().hex
    desired = with_secret(client_id, secret, marker(unique("p")), scope=("orders.read",))

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ("client",)

    assert secret_token(hydra, client_id, secret) == (200, None)
    assert secret_token(hydra, client_id, uuid.uuid4().hex) == (401, "invalid_client")
    status, body = token_with_secret(hydra.token_url, client_id, secret, scope="orders.read")
    assert (status, body.get("scope")) == (200, "orders.read")
    written = held(hydra, client_id)["updated_at"]
    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ()
    assert held(hydra, client_id)["updated_at"] == written  # in place: nothing written
    assert secret not in caplog.text
    assert secret not in repr(desired)


def test_secret_changed_in_hydra_is_put_back(hydra: LocalHydra) -> None:
    client_id, secret = unique("secret-drift"), uuid.uuid4().hex
    desired = with_secret(client_id, secret, marker(unique("p")))
    run(hydra, lambda hydra_client: hydra_client.ensure(desired))
    edit(hydra, client_id, "/client_secret", "someone-else-s-secret")
    assert secret_token(hydra, client_id, secret) == (401, "invalid_client")

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ("secret",)

    assert secret_token(hydra, client_id, secret) == (200, None)
    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ()


def test_without_the_public_url_the_secret_is_set_every_time_and_not_called_drift(
    hydra: LocalHydra,
) -> None:
    client_id, secret = unique("no-public"), uuid.uuid4().hex
    desired = with_secret(client_id, secret, marker(unique("p")))
    run(hydra, lambda hydra_client: hydra_client.ensure(desired), public=False)
    edit(hydra, client_id, "/client_secret", "someone-else-s-secret")

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired), public=False) == ()

    assert secret_token(hydra, client_id, secret) == (200, None)


def test_scope_and_audience_edited_in_hydra_are_put_back(hydra: LocalHydra) -> None:
    client_id, secret = unique("scope-drift"), uuid.uuid4().hex
    desired = with_secret(
        client_id,
        secret,
        marker(unique("p")),
        scope=("orders.read", "orders.write"),
        audience=("https://orders.example",),
    )
    run(hydra, lambda hydra_client: hydra_client.ensure(desired))
    edit(hydra, client_id, "/scope", "orders.read admin")
    edit(hydra, client_id, "/audience", [])

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ("scope", "audience")

    found = held(hydra, client_id)
    assert set(found["scope"].split()) == {"orders.read", "orders.write"}
    assert found["audience"] == ["https://orders.example"]
    assert token_with_secret(hydra.token_url, client_id, secret, scope="admin")[0] == 400


def test_grant_types_without_client_credentials_are_put_back_and_not_taken_for_a_secret(
    hydra: LocalHydra,
) -> None:
    """With client_credentials gone, the right secret gets 400 unauthorized_client from the
    token endpoint: that is drift of the grant types, not of the secret."""
    client_id, secret = unique("grant-drift"), uuid.uuid4().hex
    desired = with_secret(client_id, secret, marker(unique("p")))
    run(hydra, lambda hydra_client: hydra_client.ensure(desired))
    edit(hydra, client_id, "/grant_types", ["refresh_token"])
    assert secret_token(hydra, client_id, secret) == (400, "unauthorized_client")

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ("grantTypes",)

    assert secret_token(hydra, client_id, secret) == (200, None)


def test_client_deleted_in_hydra_is_created_again(hydra: LocalHydra) -> None:
    client_id, secret = unique("deleted"), uuid.uuid4().hex
    desired = with_secret(client_id, secret, marker(unique("p")))
    run(hydra, lambda hydra_client: hydra_client.ensure(desired))
    assert admin_call(hydra, "DELETE", f"/admin/clients/{client_id}")[0] == 204

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ("client",)

    assert secret_token(hydra, client_id, secret) == (200, None)


def test_key_pair_client_takes_assertions_of_the_keys_in_its_jwks(hydra: LocalHydra) -> None:
    client_id, found = unique("keys"), marker(unique("p"))
    first, second = new_key_pair(KeyAlgorithm.ECDSA_P256), new_key_pair(KeyAlgorithm.ECDSA_P256)

    assert run(hydra, lambda hydra_client: hydra_client.ensure(with_keys(client_id, found, first)))
    assert key_token(hydra, client_id, first) == OK
    assert key_token(hydra, client_id, second) == UNKNOWN_KEY

    # A rotation: the new key first, the previous one kept through the overlap.
    overlap = with_keys(client_id, found, second, first)
    assert run(hydra, lambda hydra_client: hydra_client.ensure(overlap)) == ("jwks",)
    assert (key_token(hydra, client_id, second), key_token(hydra, client_id, first)) == (OK, OK)

    after = with_keys(client_id, found, second)
    assert run(hydra, lambda hydra_client: hydra_client.ensure(after)) == ("jwks",)
    assert (key_token(hydra, client_id, second), key_token(hydra, client_id, first)) == (
        OK,
        UNKNOWN_KEY,
    )
    assert run(hydra, lambda hydra_client: hydra_client.ensure(after)) == ()


def test_rsa_key_pair_client_and_a_key_removed_in_hydra_is_put_back(hydra: LocalHydra) -> None:
    client_id, found = unique("rsa"), marker(unique("p"))
    key = new_key_pair(KeyAlgorithm.RSA_2048)
    desired = with_keys(client_id, found, key)
    run(hydra, lambda hydra_client: hydra_client.ensure(desired))
    edit(hydra, client_id, "/jwks", {"keys": []})
    assert key_token(hydra, client_id, key) == UNKNOWN_KEY

    assert run(hydra, lambda hydra_client: hydra_client.ensure(desired)) == ("jwks",)

    assert key_token(hydra, client_id, key) == OK


def test_client_of_that_id_without_our_marker_is_refused_and_left_alone(
    hydra: LocalHydra,
) -> None:
    client_id, theirs = unique("not-ours"), uuid.uuid4().hex
    status, _ = admin_call(
        hydra,
        "POST",
        "/admin/clients",
        {"client_id": client_id, "client_secret": theirs, "grant_types": ["client_credentials"]},
    )
    assert status == 201
    before = held(hydra, client_id)
    desired = with_secret(client_id, uuid.uuid4().hex, marker(unique("p")), scope=("x",))

    error = failure(hydra, lambda hydra_client: hydra_client.ensure(desired))

    assert error.reason is ProviderReason.CONFLICT
    assert client_id in error.message
    assert "no credsmith marker" in error.message
    after = held(hydra, client_id)
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    assert secret_token(hydra, client_id, theirs) == (200, None)


def test_client_of_another_owner_is_refused(hydra: LocalHydra) -> None:
    client_id, provider_uid = unique("other-owner"), unique("p")
    ours = with_secret(client_id, uuid.uuid4().hex, marker(provider_uid))
    run(hydra, lambda hydra_client: hydra_client.ensure(ours))
    other = with_secret(client_id, uuid.uuid4().hex, marker(provider_uid))  # another UID

    error = failure(hydra, lambda hydra_client: hydra_client.ensure(other))

    assert error.reason is ProviderReason.CONFLICT
    assert secret_token(hydra, client_id, ours.secret or "") == (200, None)


def test_list_marked_pages_through_and_finds_only_this_providers_clients(
    hydra: LocalHydra,
) -> None:
    provider_uid, other_uid = unique("p"), unique("p")
    ours = [with_secret(unique("mine"), uuid.uuid4().hex, marker(provider_uid)) for _ in range(5)]
    others = [with_secret(unique("theirs"), uuid.uuid4().hex, marker(other_uid))]
    plain = unique("plain")
    admin_call(hydra, "POST", "/admin/clients", {"client_id": plain, "client_secret": "x" * 10})

    async def scenario(hydra_client: HydraClient) -> list[Any]:
        for desired in ours + others:
            await hydra_client.ensure(desired)
        return await hydra_client.list_marked(provider_uid)

    async def paged(hydra_client: HydraClient) -> list[Any]:
        small = HydraClient(hydra.admin_url, page_size=2)  # several pages of this Hydra
        try:
            return await small.list_marked(provider_uid)
        finally:
            await small.close()

    found = run(hydra, scenario)
    assert sorted(marked.client_id for marked in found) == sorted(d.client_id for d in ours)
    assert {marked.marker for marked in found} == {desired.marker for desired in ours}
    assert sorted(marked.client_id for marked in run(hydra, paged)) == sorted(
        d.client_id for d in ours
    )
    assert len(admin_call(hydra, "GET", "/admin/clients?page_size=500")[1]) > 4  # 3+ pages


def test_list_marked_of_a_hydra_without_clients_ends_at_once(fresh_hydra: LocalHydra) -> None:
    # This Hydra answers an empty list with a `next` link, page after page: a listing that
    # trusted it asked 10,000 pages and failed ("clients never end"), the provider's lock
    # held all along, so its credentials waited (a minute and more under load).
    status, _ = admin_call(fresh_hydra, "GET", "/admin/clients?page_size=1")
    assert status == 200
    assert run(fresh_hydra, lambda hydra_client: hydra_client.list_marked(unique("p"))) == []


def test_delete_removes_the_client_and_gone_is_fine(hydra: LocalHydra) -> None:
    client_id = unique("delete")
    desired = with_secret(client_id, uuid.uuid4().hex, marker(unique("p")))
    run(hydra, lambda hydra_client: hydra_client.ensure(desired))

    run(hydra, lambda hydra_client: hydra_client.delete(client_id))

    assert admin_call(hydra, "GET", f"/admin/clients/{client_id}")[0] == 404
    run(hydra, lambda hydra_client: hydra_client.delete(client_id))  # no error


def test_clean_up_reads_each_client_again_and_deletes_only_what_is_still_orphaned(
    hydra: LocalHydra,
) -> None:
    """Between the list and the delete a client may be re-marked (its owner's new provider
    resource) or taken over (our marker removed): delete_if reads it again and keeps it."""
    provider = unique("p")
    ids = {name: unique(f"cleanup-{name}") for name in ("orphan", "adopted", "taken")}
    for client_id in ids.values():
        desired = with_secret(client_id, uuid.uuid4().hex, marker(provider))
        run(hydra, lambda hydra_client, d=desired: hydra_client.ensure(d))  # type: ignore[misc]
    listed = run(hydra, lambda hydra_client: hydra_client.list_marked(provider))
    doomed = clients_to_delete(listed, provider, {}, lambda namespace: True)
    assert sorted(doomed) == sorted(ids.values())  # all three, as listed

    edit(hydra, ids["adopted"], "/metadata/credsmith/providerUID", unique("new-provider"))
    edit(hydra, ids["taken"], "/metadata", {"team": "payments"})

    def decide(client_id: str) -> Callable[[Marker | None], bool]:
        return lambda found: still_to_delete(client_id, found, provider, {}, lambda ns: True)

    def delete_if(client_id: str) -> Callable[[HydraClient], Awaitable[bool]]:
        return lambda hydra_client: hydra_client.delete_if(client_id, decide(client_id))

    deleted = {client_id: run(hydra, delete_if(client_id)) for client_id in doomed}
    assert deleted == {ids["orphan"]: True, ids["adopted"]: False, ids["taken"]: False}
    assert admin_call(hydra, "GET", f"/admin/clients/{ids['orphan']}")[0] == 404
    assert held(hydra, ids["adopted"])["client_id"] == ids["adopted"]
    assert held(hydra, ids["taken"])["metadata"] == {"team": "payments"}
    # Gone meanwhile: nothing to delete, and no error.
    assert (
        run(
            hydra, lambda hydra_client: hydra_client.delete_if(ids["orphan"], decide(ids["orphan"]))
        )
        is False
    )


def test_stopped_hydra_is_unreachable_with_its_address_and_recovers(
    fresh_hydra: LocalHydra,
) -> None:
    client_id, secret = unique("outage"), uuid.uuid4().hex
    desired = with_secret(client_id, secret, marker(unique("p")))
    fresh_hydra.stop()

    async def outage_then_back(hydra_client: HydraClient) -> tuple[list[ProviderError], Any]:
        errors = []
        for call in (hydra_client.check, lambda: hydra_client.ensure(desired)):
            try:
                await call()
            except ProviderError as error:
                errors.append(error)
        await asyncio.to_thread(fresh_hydra.start)  # the same client object, no restart
        return errors, await hydra_client.ensure(desired)

    errors, after = run(fresh_hydra, outage_then_back)

    assert [error.reason for error in errors] == [ProviderReason.UNREACHABLE] * 2
    assert all(f"127.0.0.1:{fresh_hydra.admin_port}" in error.message for error in errors)
    assert after == ("client",)
    assert secret_token(fresh_hydra, client_id, secret) == (200, None)


def test_check_passes_on_a_running_hydra(hydra: LocalHydra) -> None:
    run(hydra, lambda hydra_client: hydra_client.check())


def test_plain_http_answering_tls_is_a_tls_error(hydra: LocalHydra) -> None:
    https = hydra.admin_url.replace("http://", "https://")

    error = failure(hydra, lambda hydra_client: hydra_client.check(), admin_url=https)

    assert error.reason is ProviderReason.TLS_ERROR
    assert https in error.message


def test_a_provider_that_never_answers_times_out_as_unreachable(hydra: LocalHydra) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"

        error = failure(hydra, lambda client: client.check(), admin_url=url, timeout=1.0)

    assert error.reason is ProviderReason.UNREACHABLE
    assert url in error.message
    assert "timed out" in error.message


@pytest.mark.parametrize(
    ("desired_of", "hydra_says"),
    [
        (  # Hydra takes RS*, PS* and ES* client assertions, not EdDSA (Ed25519 keys)
            lambda client_id, found: with_keys(
                client_id, found, new_key_pair(KeyAlgorithm.ED25519)
            ),
            "Only RS256",
        ),
        (
            lambda client_id, found: DesiredClient(
                client_id, found, "private_key_jwt", jwks=({"kty": "RSA", "n": "AQAB"},)
            ),
            "invalid RSA key",
        ),
        (
            lambda client_id, found: with_secret(client_id, "short", found),
            "at least 6 characters",
        ),
    ],
    ids=["eddsa", "bad-jwk", "short-secret"],
)
def test_a_field_hydra_rejects_is_rejected_with_its_text(
    hydra: LocalHydra, desired_of: Callable[[str, Marker], DesiredClient], hydra_says: str
) -> None:
    client_id = unique("rejected")
    desired = desired_of(client_id, marker(unique("p")))

    error = failure(hydra, lambda hydra_client: hydra_client.ensure(desired))

    assert error.reason is ProviderReason.REJECTED
    assert "400" in error.message
    assert hydra_says in error.message
    assert len(error.message) <= ProviderError.MAX_MESSAGE
    assert admin_call(hydra, "GET", f"/admin/clients/{client_id}")[0] == 404
