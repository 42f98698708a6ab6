"""A registry pushed past the 1 MiB limit of a Secret by real ApiClients: the latest created
are Ready=False, RegistryFull; the others still verify; and the registry is not rewritten
over and over (no refused write loop)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    load_registry,
    ready_condition,
    wait_for,
)
from tests.e2e.test_api_client import PLURAL, api_client, list_clients, secrets_of

# About 19 KB of clients.json each (roles of the longest id and name): some 55 fit 1 MiB.
LONG_ROLES = [{"id": f"role.{i:03}." + "x" * 119, "name": "y" * 128} for i in range(64)]
COUNT = 70


def settled(items: list[dict[str, Any]]) -> bool:
    """Every client Ready, or not Ready because the registry is full."""
    for item in items:
        condition = ready_condition(item)
        if condition is None:
            return False
        if condition["status"] != "True" and condition.get("reason") != "RegistryFull":
            return False
    return len(items) == COUNT


def test_a_registry_past_the_secret_limit_leaves_out_the_latest_clients(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    names = [f"big-{i:03d}" for i in range(COUNT)]

    def create(name: str) -> None:
        body = api_client(name, "full-registry", roles=LONG_ROLES)
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, names))
    wait_for(lambda: settled(list_clients(custom, namespace)), 300, interval=2, what="settled")

    items = list_clients(custom, namespace)
    order = sorted(items, key=lambda i: (i["metadata"]["creationTimestamp"], i["metadata"]["name"]))
    full = [i for i in order if ready_condition(i)["status"] != "True"]
    assert 0 < len(full) < COUNT
    # The clients left out are the latest created: a tail of the creation order.
    assert [i["metadata"]["name"] for i in order[-len(full) :]] == [
        i["metadata"]["name"] for i in full
    ]
    message = ready_condition(full[0])["message"]
    assert "full-registry would pass the 1 MiB limit of a Secret" in message
    assert "spec.registry.name" in message

    secrets = secrets_of(core, exposure, namespace)
    registry = load_registry(core, namespace, "full-registry", tmp_path)
    left_out = {i["metadata"]["name"] for i in full}
    for name in names:
        data = secrets[name]  # every client has its own Secret, full or not
        found = registry.verify(data["client_id"], data["client_secret"])
        if name in left_out:
            assert found is None
        else:
            assert found is not None
            assert found.name == name

    # Settled: the registry Secret is not written again (a refused write would be retried,
    # a left-out client re-added and removed would change it).
    version = core.read_namespaced_secret("full-registry", namespace).metadata.resource_version
    time.sleep(20)
    after = core.read_namespaced_secret("full-registry", namespace).metadata.resource_version
    assert after == version
    assert settled(list_clients(custom, namespace))
