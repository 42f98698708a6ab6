"""A registry pushed past the 1 MiB limit of a Secret by real ApiClients: the latest created
are Ready=False, RegistryFull; the others still verify; and the registry is not rewritten
over and over (no refused write loop)."""

from __future__ import annotations

import itertools
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from credsmith.reconcile.registry import REGISTRY_KIND
from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    load_registry,
    present,
    ready_condition,
    wait_for,
)
from tests.e2e.test_api_client import (
    PLURAL,
    all_ready,
    api_client,
    list_clients,
    registry_document,
    secrets_of,
)

# About 19 KB of clients.json each (roles of the longest id and name): some 55 fit 1 MiB.
LONG_ROLES = [{"id": f"role.{i:03}." + "x" * 119, "name": "y" * 128} for i in range(64)]
COUNT = 70


def settled(items: list[dict[str, Any]]) -> bool:
    """Every client Ready, or not Ready because the registry is full, and those are the
    latest created. (While the bulk is issued a later client can be in the registry before
    earlier ones have their Secrets, and then leave it: it takes a pass to say so.)"""
    for item in items:
        condition = ready_condition(item)
        if condition is None:
            return False
        if condition["status"] != "True" and condition.get("reason") != "RegistryFull":
            return False
    full = [i for i in creation_order(items) if present(ready_condition(i))["status"] != "True"]
    return len(items) == COUNT and bool(full) and full == creation_order(items)[-len(full) :]


def creation_order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: (i["metadata"]["creationTimestamp"], i["metadata"]["name"]))


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
    full = [i for i in order if present(ready_condition(i))["status"] != "True"]
    assert 0 < len(full) < COUNT
    # The clients left out are the latest created: a tail of the creation order.
    assert [i["metadata"]["name"] for i in order[-len(full) :]] == [
        i["metadata"]["name"] for i in full
    ]
    message = present(ready_condition(full[0]))["message"]
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
    version = present(
        core.read_namespaced_secret("full-registry", namespace).metadata
    ).resource_version
    time.sleep(20)
    after = present(
        core.read_namespaced_secret("full-registry", namespace).metadata
    ).resource_version
    assert after == version
    assert settled(list_clients(custom, namespace))


def registry_writes(operator: Operator, namespace: str, registry: str) -> list[datetime]:
    """When the operator wrote the registry Secret (its log line after each write)."""
    line = re.compile(
        rf"^(\S+ \S+) INFO .*: {REGISTRY_KIND} {re.escape(namespace)}/{re.escape(registry)}: "
    )
    found = []
    for path in operator.log_files:
        for text in path.read_text(errors="replace").splitlines():
            if match := line.match(text):
                found.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"))
    return sorted(found)


def test_a_bulk_of_clients_writes_its_registry_at_most_once_a_second(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    names = [f"bulk-{i:03d}" for i in range(200)]

    def create(name: str) -> None:
        body = api_client(name, "bulk-registry", roles=[{"id": "reports.read"}])
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, names))
    wait_for(lambda: all_ready(custom, namespace, 200), 300, interval=1, what="200 Ready")

    def listed() -> bool:
        try:
            return len(registry_document(core, namespace, "bulk-registry")["clients"]) == 200
        except client.ApiException:
            return False

    wait_for(listed, 120, interval=1, what="200 registry entries")
    writes = registry_writes(operator, namespace, "bulk-registry")
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(writes)]
    span = (writes[-1] - writes[0]).total_seconds()
    print(f"registry writes for 200 clients: {len(writes)} over {span:.1f} s")  # for bench notes
    assert writes
    assert min(gaps, default=1.0) >= 0.95  # coalesced: at most one write a second
