"""ApiClient end to end: its own Secret, and the registry an API server verifies against."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    deny_policy,
    load_registry,
    manifest,
    present,
    ready_condition,
    wait_for,
)

PLURAL = "apiclients"


def api_client(
    name: str, registry: str | None = None, hash_: str | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"displayName": f"Client {name}", **spec}
    if registry is not None:
        body["registry"] = {"name": registry, **({"hash": hash_} if hash_ else {})}
    return manifest("ApiClient", name, body)


def list_clients(custom: client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )["items"]
    return items


def all_ready(custom: client.CustomObjectsApi, namespace: str, count: int) -> bool:
    items = list_clients(custom, namespace)
    ready = [i for i in items if (c := ready_condition(i)) and c["status"] == "True"]
    return len(items) == count and len(ready) == count


def registry_document(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any]:
    secret = core.read_namespaced_secret(name, namespace)
    document: dict[str, Any] = json.loads(base64.b64decode(present(secret.data)["clients.json"]))
    return document


def secrets_of(
    core: client.CoreV1Api, exposure: Exposure, namespace: str
) -> dict[str, dict[str, str]]:
    found = core.list_namespaced_secret(
        namespace, label_selector="app.kubernetes.io/managed-by=credsmith"
    )
    data = {}
    for item in found.items:
        raw = client.ApiClient().sanitize_for_serialization(item)
        data[cast(str, present(item.metadata).name)] = exposure.record_secret(raw)
    return data


def test_two_hundred_clients_in_one_registry(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    names = [f"client-{i:03d}" for i in range(200)]

    def create(name: str) -> None:
        body = api_client(name, "registry", roles=[{"id": "reports.read", "name": "Read"}])
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, names))
    wait_for(lambda: all_ready(custom, namespace, 200), 180, interval=1, what="200 Ready")

    def listed(count: int) -> bool:
        try:
            return len(registry_document(core, namespace, "registry")["clients"]) == count
        except client.ApiException:
            return False

    wait_for(lambda: listed(200), 120, interval=1, what="200 registry entries")
    secrets = secrets_of(core, exposure, namespace)
    registry = load_registry(core, namespace, "registry", tmp_path)
    for name in names:
        data = secrets[name]
        found = registry.verify(data["client_id"], data["client_secret"])
        assert found is not None
        assert found.name == name
    statuses = {i["metadata"]["name"]: i["status"] for i in list_clients(custom, namespace)}
    ids = {
        e["clientId"]: e["id"] for e in registry_document(core, namespace, "registry")["clients"]
    }
    assert all(ids[statuses[n]["clientId"]] == statuses[n]["id"] for n in names)
    assert exposure.leaks(json.dumps(registry_document(core, namespace, "registry"))) == []

    def delete(name: str) -> None:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(delete, names[:50]))
    wait_for(lambda: listed(150), 120, interval=1, what="150 registry entries")
    registry = load_registry(core, namespace, "registry", tmp_path)
    deleted = secrets[names[0]]
    assert registry.verify(deleted["client_id"], deleted["client_secret"]) is None
    kept = secrets[names[100]]
    assert registry.verify(kept["client_id"], kept["client_secret"]) is not None

    target = names[100]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, target,
        {"spec": {"roles": [{"id": "exports.create", "name": "Create exports"}]}},
    )  # fmt: skip

    def roles_updated() -> bool:
        entries = registry_document(core, namespace, "registry")["clients"]
        entry = next(e for e in entries if e["name"] == target)
        return bool(entry["roles"] == [{"id": "exports.create", "name": "Create exports"}])

    wait_for(roles_updated, 60, what="the new roles in the registry")
    after = secrets_of(core, exposure, namespace)[target]
    assert after["client_secret"] == kept["client_secret"]
    assert len(registry_document(core, namespace, "registry")["clients"]) == 150


@pytest.mark.parametrize("hash_", ["SHA256", "Argon2id", "PBKDF2SHA256"])
def test_each_hash_scheme_verifies(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
    hash_: str,
) -> None:
    for name in ("one", "two", "gone"):
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, api_client(name, "verifiers", hash_)
        )
    wait_for(lambda: all_ready(custom, namespace, 3), 120, what="3 Ready")

    def listed(count: int) -> bool:
        try:
            return len(registry_document(core, namespace, "verifiers")["clients"]) == count
        except client.ApiException:
            return False

    wait_for(lambda: listed(3), 60, what="3 entries")
    secrets = secrets_of(core, exposure, namespace)
    document = registry_document(core, namespace, "verifiers")
    prefix = {"SHA256": "{SHA256}", "Argon2id": "$argon2id$", "PBKDF2SHA256": "$pbkdf2-sha256$i="}[
        hash_
    ]
    assert all(e["secret"]["hash"].startswith(prefix) for e in document["clients"])

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "gone")
    wait_for(lambda: listed(2), 60, what="2 entries")
    registry = load_registry(core, namespace, "verifiers", tmp_path)
    for name in ("one", "two"):
        assert registry.verify(secrets[name]["client_id"], secrets[name]["client_secret"])
        assert (
            registry.verify(secrets[name]["client_id"], secrets[name]["client_secret"] + "x")
            is None
        )
    assert registry.verify(secrets["one"]["client_id"], secrets["two"]["client_secret"]) is None
    assert registry.verify("no-such-client", secrets["one"]["client_secret"]) is None
    assert registry.verify(secrets["gone"]["client_id"], secrets["gone"]["client_secret"]) is None

    # The same live document checked in Go with golang.org/x/crypto (tests/verify-go).
    path = tmp_path / "clients-for-go.json"
    path.write_text(json.dumps(registry_document(core, namespace, "verifiers")))

    def go_verify(presented: dict[str, str]) -> dict[str, bool]:
        result = subprocess.run(
            [str(cluster.bin_dir / "verify-go"), "registry", str(path)],
            input=json.dumps(presented),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        verdicts: dict[str, bool] = json.loads(result.stdout)
        return verdicts

    ids = {name: secrets[name]["client_id"] for name in ("one", "two", "gone")}
    right = {ids[name]: secrets[name]["client_secret"] for name in ids}
    assert go_verify(right) == {ids["one"]: True, ids["two"]: True, ids["gone"]: False}
    wrong = {ids[name]: secrets[name]["client_secret"] + "x" for name in ("one", "two")}
    assert go_verify(wrong) == {ids["one"]: False, ids["two"]: False}
    swapped = {ids["one"]: secrets["two"]["client_secret"]}
    assert go_verify(swapped) == {ids["one"]: False}

    registry_secret = core.read_namespaced_secret("verifiers", namespace)
    assert exposure.leaks(json.dumps(registry_secret.data)) == []


def test_kubectl_lists_filters_and_sorts_api_clients(
    cluster: Cluster, custom: client.CustomObjectsApi, operator: Operator, namespace: str
) -> None:
    for name, team in (("zeta", "x"), ("alpha", "y"), ("mid", "x")):
        body = api_client(name, roles=[{"id": "a"}, {"id": "b"}])
        body["metadata"]["labels"] = {"team": team}
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
        time.sleep(1.1)  # creationTimestamp has whole seconds
    wait_for(lambda: all_ready(custom, namespace, 3), 60, what="3 Ready")
    listing = cluster.kubectl(
        "get", "apiclients", "-n", namespace, "-l", "team=x",
        "--sort-by=.metadata.creationTimestamp", "-o", "wide",
    ).stdout  # fmt: skip
    rows = listing.splitlines()
    header = rows[0].split()
    assert header[:3] == ["NAME", "DISPLAY", "NAME"]
    assert "READY" in header
    assert [row.split()[0] for row in rows[1:]] == ["zeta", "mid"]
    assert all("True" in row for row in rows[1:])
    start = rows[0].index("ROLES")  # columns are aligned; some cells are empty
    assert [row[start:].split()[0] for row in rows[1:]] == ["2", "2"], listing


def test_field_selector_on_display_name(
    cluster: Cluster, custom: client.CustomObjectsApi, operator: Operator, namespace: str
) -> None:
    for name in ("one", "two"):
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(api_client(name)))
    found = cluster.kubectl(
        "get", "apiclients", "-n", namespace, "--field-selector=spec.displayName=Client two",
        "-o", "jsonpath={.items[*].metadata.name}",
    ).stdout  # fmt: skip
    assert found == "two"


def test_a_registry_name_taken_by_a_foreign_secret_makes_every_member_not_ready(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    """No server can verify a client of a registry the operator cannot write: every member
    says so (Ready=False, RegistryConflict), and is Ready again once the Secret goes."""
    foreign = core.create_namespaced_secret(
        namespace,
        cast(
            client.V1Secret,
            {"metadata": {"name": "taken-registry"}, "stringData": {"clients.json": "not ours"}},
        ),
    )
    names = ("one", "two")
    for name in names:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, api_client(name, "taken-registry")
        )

    def reasons() -> dict[str, str | None]:
        found = {}
        for item in list_clients(custom, namespace):
            condition = ready_condition(item)
            found[item["metadata"]["name"]] = condition["reason"] if condition else None
        return found

    wait_for(
        lambda: reasons() == dict.fromkeys(names, "RegistryConflict"),
        90,
        what="every member Ready=False, RegistryConflict",
    )
    for item in list_clients(custom, namespace):
        condition = ready_condition(item)
        assert condition is not None
        assert condition["status"] == "False"
        assert "taken-registry" in condition["message"]
    after = core.read_namespaced_secret("taken-registry", namespace)
    # Untouched:
    assert present(after.metadata).resource_version == present(foreign.metadata).resource_version

    core.delete_namespaced_secret("taken-registry", namespace)
    wait_for(lambda: all_ready(custom, namespace, 2), 120, what="both Ready again")
    secrets = secrets_of(core, exposure, namespace)
    registry = load_registry(core, namespace, "taken-registry", tmp_path)
    for name in names:
        assert registry.verify(secrets[name]["client_id"], secrets[name]["client_secret"])


def test_a_refused_registry_write_makes_its_members_not_ready_until_it_passes(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    """An admission policy refuses writes of the registry Secret (and only of it): the
    member's own Secret is issued, but it is Ready=False with the refusal's reason, and
    Ready once the policy goes."""
    policy = f"deny-registry-{namespace}"[:63]
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["secrets"],
    }
    denied = deny_policy(
        policy, namespace, rule, "no registry here",
        expression="object.metadata.name != 'denied-registry'",
    )  # fmt: skip
    cluster.kubectl("apply", "-f", "-", stdin=denied)
    try:

        def refused() -> bool:
            probe = {"metadata": {"name": "denied-registry"}, "stringData": {"a": "b"}}
            try:
                core.create_namespaced_secret(
                    namespace, cast(client.V1Secret, probe), dry_run="All"
                )
            except client.ApiException:
                return True
            return False

        wait_for(refused, 30, what="the policy in force")
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, api_client("member", "denied-registry")
        )

        def reason() -> str | None:
            obj = cast(
                dict[str, Any],
                custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "member"),
            )
            condition = ready_condition(obj)
            return condition["reason"] if condition else None

        wait_for(lambda: reason() == "SecretWriteDenied", 60, what="SecretWriteDenied")
        obj = cast(
            dict[str, Any],
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "member"),
        )
        condition = ready_condition(obj)
        assert condition is not None
        assert condition["status"] == "False"
        assert "registry Secret denied-registry" in condition["message"]
        assert "no registry here" in condition["message"]
        assert core.read_namespaced_secret("member", namespace).data  # its own was written
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                        policy, "--ignore-not-found")  # fmt: skip
    wait_for(lambda: all_ready(custom, namespace, 1), 120, what="Ready once the policy goes")
    data = secrets_of(core, exposure, namespace)["member"]
    registry = load_registry(core, namespace, "denied-registry", tmp_path)
    assert registry.verify(data["client_id"], data["client_secret"])
