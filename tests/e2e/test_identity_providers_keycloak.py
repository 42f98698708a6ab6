"""Keycloak through the operator, beyond tests/e2e/test_identity_providers.py's token,
rotation and deletion: a key pair's signed assertions across a rotation (the previous key
held through the overlap), and drift in Keycloak put back within `resync`. One Keycloak per
run (tests/providers/keycloak.py), in the realm a credsmith operator would set up, reached
with a client that has only realm-management's `manage-clients`.
"""

from __future__ import annotations

import time
from typing import cast

import pytest
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, wait_for
from tests.e2e.faults import Toxiproxy, toxiproxy
from tests.e2e.test_identity_providers import (
    DRIFT_TIMEOUT,
    IDPS,
    SACREDS,
    assert_key_pair_gets_tokens_across_a_rotation,
    assert_no_value_shown,
    changed_secret,
    condition,
    get,
    keycloak_provider,
    keycloak_registered,
    request_rotation,
    secret_data,
    wait_condition,
)
from tests.providers import keycloak as kc
from tests.providers.keycloak import (
    KeycloakRealm,
)

pytestmark = pytest.mark.xdist_group("keycloak")
__all__ = ["toxiproxy"]  # fixture


def test_keycloak_key_pair_across_a_rotation(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    exposure: Exposure,
    keycloak_realm: KeycloakRealm,
) -> None:
    realm = keycloak_realm
    keycloak_provider(cluster, core, namespace, realm, exposure)
    keycloak_registered(
        cluster,
        custom,
        core,
        exposure,
        namespace,
        "signer",
        type="KeyPair",
        keyPair={"algorithm": "ECDSA-P256"},
        rotation={"period": "720h", "overlap": "1h"},
    )
    assert_key_pair_gets_tokens_across_a_rotation(
        cluster, core, exposure, namespace, realm.token_url
    )
    assert exposure.leaks(operator.logs()) == []


def test_drift_in_keycloak_is_put_back_within_resync(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    exposure: Exposure,
    keycloak_realm: KeycloakRealm,
) -> None:
    realm = keycloak_realm
    keycloak_provider(cluster, core, namespace, realm, exposure)
    data = keycloak_registered(cluster, custom, core, exposure, namespace)
    client_id, secret = data["client_id"], data["client_secret"]

    def works() -> bool:
        return kc.token_with_secret(realm.token_url, client_id, secret)[0] == 200

    def drift_events() -> list[str]:
        events = core.list_namespaced_event(namespace).items
        return [cast(str, e.message) for e in events if e.reason == "ProviderDrift"]

    assert works()
    # Someone regenerates the client's secret in Keycloak's console.
    held = realm.client(client_id)
    assert held is not None
    status, _ = realm.admin("POST", f"/clients/{held['id']}/client-secret")
    assert status == 200
    assert not works()
    wait_for(works, DRIFT_TIMEOUT, interval=1, what="the secret put back")
    wait_for(lambda: any("secret" in m for m in drift_events()), 30, what="a ProviderDrift Event")

    # Someone deletes the client.
    held = realm.client(client_id)
    assert held is not None
    assert realm.admin("DELETE", f"/clients/{held['id']}")[0] == 204
    assert not works()
    wait_for(works, DRIFT_TIMEOUT, interval=1, what="the client created again")
    # The consumer's value never changed, and nothing showed it.
    assert secret_data(core, exposure, namespace, "orders") == data
    assert_no_value_shown(cluster, namespace, exposure, operator)


def test_keycloak_stopped_then_back_without_an_operator_restart(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    exposure: Exposure,
    keycloak_realm: KeycloakRealm,
    toxiproxy: Toxiproxy,
) -> None:
    """The run's one Keycloak is not stopped (slow to start, its realms in memory): the
    operator reaches it through a real toxiproxy, and a disabled proxy refuses connections
    as a stopped Keycloak would."""
    realm = keycloak_realm
    proxy = toxiproxy.proxy("keycloak", realm.url.removeprefix("http://"))
    address = f"127.0.0.1:{proxy.port}"
    keycloak_provider(cluster, core, namespace, realm, exposure, url=f"http://{address}")
    data = keycloak_registered(cluster, custom, core, exposure, namespace)
    starts = operator.starts

    proxy.enable(False)
    # A rotation needs the provider now (verifier first): the new value cannot be registered.
    request_rotation(cluster, namespace, "orders", "down-1")
    obj = wait_condition(
        custom, namespace, SACREDS, "orders", "Registered", "False", timeout=DRIFT_TIMEOUT
    )
    message = condition(obj, "Registered")["message"]
    assert address in message, message
    assert condition(obj, "Registered")["reason"] == "ProviderUnreachable", obj
    provider = wait_condition(
        custom, namespace, IDPS, "keycloak", "Ready", "False", timeout=DRIFT_TIMEOUT
    )
    assert address in condition(provider, "Ready")["message"], provider
    # Verifier first: the Secret keeps the value Keycloak holds while it cannot be reached.
    assert secret_data(core, exposure, namespace, "orders") == data

    proxy.enable(True)
    wait_condition(custom, namespace, SACREDS, "orders", "Registered", "True", timeout=120)
    wait_condition(custom, namespace, IDPS, "keycloak", "Ready", "True", timeout=120)
    after = changed_secret(
        core,
        exposure,
        namespace,
        "orders",
        data,
        "client_secret",
        120,
        interval=0.2,
        what="the rotation done once Keycloak is back",
    )
    status, body = kc.token_with_secret(realm.token_url, after["client_id"], after["client_secret"])
    assert status == 200, body
    assert operator.starts == starts
    assert operator.process is not None
    assert operator.process.poll() is None
    assert_no_value_shown(cluster, namespace, exposure, operator)


def test_keycloak_admin_secret_rotated_is_used_without_a_restart(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    exposure: Exposure,
    keycloak_realm: KeycloakRealm,
) -> None:
    """An operator of credsmith rotates the admin client's secret: in Keycloak, then in the
    Secret the IdentityProvider names. The next registration signs in with the new one: no
    restart, no ProviderLoginRefused on the way (a refused login reads the Secret again)."""
    realm = keycloak_realm
    admin_id = f"credsmith-{namespace}"[:40]
    old = realm.add_admin_client(admin_id, ("manage-clients",))
    # Its admin tokens short-lived, so that the operator's cached one is renewed (signed in
    # again) before the next registration; the resync far off, so that the provider's own
    # check does not read the Secret first.
    held = realm.client(admin_id)
    assert held is not None
    held["attributes"] = {**held.get("attributes", {}), "access.token.lifespan": "10"}
    assert realm.admin("PUT", f"/clients/{held['id']}", held)[0] == 204
    keycloak_provider(cluster, core, namespace, realm, exposure, admin=(admin_id, old), resync="1h")
    keycloak_registered(cluster, custom, core, exposure, namespace, "first")
    starts = operator.starts

    status, body = realm.admin("POST", f"/clients/{held['id']}/client-secret")
    assert status == 200, status
    new = str(body["value"])
    exposure.values.add(new)
    core.patch_namespaced_secret(
        "keycloak-admin", namespace, {"stringData": {"client-secret": new}}
    )
    time.sleep(6)  # the token cached with the old secret expires (10s lifespan, renewed at 5s)

    data = keycloak_registered(cluster, custom, core, exposure, namespace, "second")
    status, token = kc.token_with_secret(realm.token_url, data["client_id"], data["client_secret"])
    assert status == 200, token
    refused = [
        e.message
        for e in core.list_namespaced_event(namespace).items
        if e.reason == "ProviderLoginRefused"
    ]
    assert refused == []
    provider = get(custom, namespace, IDPS, "keycloak")
    assert condition(provider, "Ready")["status"] == "True", provider
    assert operator.starts == starts
    assert_no_value_shown(cluster, namespace, exposure, operator)
