"""Identity providers and a Secret name taken by someone else (behaviour 2, SecretConflict):
the name is not watched (we watch only our own Secrets), so every look again at the conflict
is a pass that believes there is no Secret and, verifier first, registers a client before it
tries to create one. Those passes must register one client, not one more each time: the
clean-up never deletes a living credential's clients while its status records no client ID.
"""

from __future__ import annotations

import time

from kubernetes import client

from credsmith.dev.hydra import LocalHydra
from tests.e2e.cluster import Cluster, Exposure, Operator
from tests.e2e.test_identity_providers import (
    SACREDS,
    apply,
    get,
    hydra_provider,
    sacred,
    secret_data,
    wait_condition,
)
from tests.providers.hydra import clients_owned_by, token_with_secret


def test_a_secret_conflict_looked_at_again_registers_one_client_not_one_per_look(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    exposure: Exposure,
    hydra: LocalHydra,
) -> None:
    foreign = client.V1Secret(
        metadata=client.V1ObjectMeta(name="orders"), string_data={"client_id": "someone-else"}
    )
    core.create_namespaced_secret(namespace, foreign)
    apply(cluster, namespace, hydra_provider("hydra", hydra))
    apply(cluster, namespace, sacred("orders", "hydra"))
    uid = get(custom, namespace, SACREDS, "orders")["metadata"]["uid"]

    def ours() -> list[str]:
        return clients_owned_by(hydra, uid)

    wait_condition(custom, namespace, SACREDS, "orders", "Ready", "False", reason="SecretConflict")
    # The conflict is looked at again 30 s after it began, then every half of its age:
    # by 75 s, at least twice more.
    time.sleep(75)
    assert len(ours()) <= 1
    core.delete_namespaced_secret("orders", namespace)
    wait_condition(custom, namespace, SACREDS, "orders", "Ready", "True", timeout=180)
    data = secret_data(core, exposure, namespace, "orders")
    assert ours() == [data["client_id"]]
    status, body = token_with_secret(hydra.token_url, data["client_id"], data["client_secret"])
    assert status == 200, body
