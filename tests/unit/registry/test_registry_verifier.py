"""ClientRegistry: what an API server uses to check a presented client secret."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from credsmith.api.enums import HashAlgorithm
from credsmith.reconcile.credential import Generators, reconcile
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.registry import (
    reconcile_registry,
    registry_contents,
    registry_entry,
    render_document,
)
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.registry import ClientRegistry
from tests.state_key import TEST_STATE_KEY

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def client(
    name: str,
    roles: list[dict[str, str]] | None = None,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    status: dict[str, Any] | None = None,
    rotate: str | None = None,
) -> ResourceSnapshot:
    return ResourceSnapshot.from_api(
        {
            "apiVersion": "credsmith.io/v1alpha1",
            "kind": "ApiClient",
            "metadata": {
                "name": name,
                "namespace": "ns",
                "uid": f"uid-{name}",
                "generation": 1,
                "annotations": {"credsmith.io/rotate": rotate} if rotate else {},
            },
            "spec": {
                "displayName": name.title(),
                "roles": roles or [],
                "registry": {"name": "reg", "hash": algorithm.value},
                "clientId": {"value": f"id-{name}"},
                "rotation": {"period": "720h", "overlap": "5m"},
            },
            "status": status or {},
        }
    )


def value_of(text: str) -> str:
    """A value of the default shape (48 alphanumeric characters) spelled from `text`."""
    return (text.replace("-", "") + "0" * 48)[:48]


A, B = value_of("secretofa"), value_of("secretofb")
NEW, OLD = value_of("newvalue"), value_of("oldvalue")


def issued(
    name: str,
    value: str,
    algorithm: HashAlgorithm = HashAlgorithm.SHA256,
    previous: str | None = None,
    roles: list[dict[str, str]] | None = None,
) -> tuple[ResourceSnapshot, SecretSnapshot]:
    """A client and its Secret as the reconciler writes them (with `previous` still valid)."""
    values = iter([previous, value] if previous is not None else [value])
    generate = Generators(
        client_id=lambda spec: f"id-{name}",
        value=lambda spec, type_, algorithm: next(values),
        client_uuid=lambda: f"00000000-0000-4000-8000-{name.encode().hex()[:12]:0>12}",
    )
    resource = client(name, roles, algorithm)
    decision = reconcile(
        API_CLIENT,
        resource,
        None,
        NOW - timedelta(minutes=1),
        generate=generate,
        state_key=TEST_STATE_KEY,
    )
    secret = _written(decision.secret, "1")
    if previous is not None:
        resource = client(name, roles, algorithm, dict(decision.status), rotate="now")
        decision = reconcile(
            API_CLIENT, resource, secret, NOW, generate=generate, state_key=TEST_STATE_KEY
        )
        secret = _written(decision.secret, "2")
    return client(name, roles, algorithm, dict(decision.status)), secret


def _written(manifest: Any, version: str) -> SecretSnapshot:
    assert manifest is not None
    return SecretSnapshot.from_api(
        {**manifest, "metadata": {**manifest["metadata"], "resourceVersion": version}}
    )


def write_registry(path: Path, members: list[tuple[ResourceSnapshot, SecretSnapshot]]) -> None:
    entries = registry_contents(members, NOW, TEST_STATE_KEY).entries
    path.write_text(render_document(entries))


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_verify_accepts_real_secrets_and_rejects_everything_else(
    tmp_path: Path, algorithm: HashAlgorithm
) -> None:
    path = tmp_path / "clients.json"
    roles = [{"id": "reports.read", "name": "Read reports"}]
    write_registry(
        path,
        [
            issued("a", A, algorithm, roles=roles),
            issued("b", B, algorithm),
        ],
    )
    registry = ClientRegistry.load(path)
    found = registry.verify("id-a", A)
    assert found is not None
    assert found.name == "a"
    assert found.role_ids == {"reports.read"}
    assert registry.verify("id-b", B) is not None
    assert registry.verify("id-a", B) is None  # another's secret
    assert registry.verify("id-a", "wrong") is None
    assert registry.verify("id-unknown", A) is None
    assert A not in path.read_text()


def test_previous_secret_verifies_only_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    write_registry(
        path,
        [issued("a", NEW, previous=OLD)],
    )
    registry = ClientRegistry.load(path)
    assert registry.verify("id-a", NEW, now=NOW)
    assert registry.verify("id-a", OLD, now=NOW)
    later = NOW + timedelta(minutes=6)
    assert registry.verify("id-a", OLD, now=later) is None
    assert registry.verify("id-a", NEW, now=later)


def test_reloads_when_the_file_changes_and_deleted_clients_stop_verifying(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    a, b = issued("a", A), issued("b", B)
    write_registry(path, [a, b])
    registry = ClientRegistry.load(path)
    assert len(registry) == 2
    # kubelet swaps a mounted Secret by renaming a new file into place.
    replacement = tmp_path / "clients.json.new"
    write_registry(replacement, [a])
    os.replace(replacement, path)
    assert registry.verify("id-b", B) is None
    assert registry.verify("id-a", A) is not None
    assert len(registry) == 1


def test_clients_without_an_issued_hash_are_left_out_and_documents_are_stable() -> None:
    done = issued("a", A)
    pending = (client("b"), None)
    decision = reconcile_registry("ns", "reg", [pending, done], None, NOW, TEST_STATE_KEY)
    assert decision.create
    assert decision.clients == 1
    assert decision.secret is not None  # unpacked below: None would fail here as well
    written = SecretSnapshot.from_api(
        {**decision.secret, "metadata": {**decision.secret["metadata"], "resourceVersion": "7"}}
    )
    again = reconcile_registry("ns", "reg", [done, pending], written, NOW, TEST_STATE_KEY)
    assert again.secret is None  # same set, any order: no write


def test_a_foreign_registry_secret_is_a_conflict() -> None:
    foreign = SecretSnapshot.from_api({"metadata": {"name": "reg", "namespace": "ns"}, "data": {}})
    decision = reconcile_registry("ns", "reg", [issued("a", A)], foreign, NOW, TEST_STATE_KEY)
    assert decision.conflict
    assert decision.secret is None


def test_a_client_naming_anothers_secret_adds_no_entry() -> None:
    """mallory sets secretName: alice. alice's Secret is not mallory's: no entry from it
    with mallory's roles, and alice's secret is granted alice's roles only."""
    alice = issued("alice", A, roles=[{"id": "reports.read"}])
    mallory = client("mallory", [{"id": "admin"}])
    mallory_body = {
        "apiVersion": mallory.api_version,
        "kind": mallory.kind,
        "metadata": {"name": "mallory", "namespace": "ns", "uid": "uid-mallory"},
        "spec": {**mallory.spec, "secretName": "alice"},
    }
    members = [alice, (ResourceSnapshot.from_api(mallory_body), alice[1])]
    found = registry_contents(members, NOW, TEST_STATE_KEY)
    entries, duplicates = found.entries, found.duplicates
    assert [e["name"] for e in entries] == ["alice"]
    assert entries[0]["roles"] == [{"id": "reports.read"}]
    assert duplicates == {}


def test_a_secret_owned_by_another_uid_is_not_listed() -> None:
    """deletionPolicy Delete: the Secret must also name this very client as its owner."""
    resource, secret = issued("a", A)
    recreated = ResourceSnapshot.from_api(
        {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": {"name": "a", "namespace": "ns", "uid": "uid-of-a-newer-a"},
            "spec": dict(resource.spec),
            "status": dict(resource.status),
        }
    )
    assert registry_entry(resource, secret, NOW, TEST_STATE_KEY) is not None
    assert registry_entry(recreated, secret, NOW, TEST_STATE_KEY) is None


def test_one_entry_per_client_id_the_earlier_client_keeps_it() -> None:
    first, second = issued("first", A), issued("second", B)
    clashing = []
    for (resource, secret), created in (
        (first, "2026-01-01T00:00:00Z"),
        (second, "2025-12-31T00:00:00Z"),
    ):
        body = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": {"name": resource.name, "namespace": "ns", "uid": resource.uid,
                         "creationTimestamp": created},
            "spec": {**resource.spec, "clientId": {"value": "shared"}},
            "status": {**resource.status, "clientId": "shared"},
        }  # fmt: skip
        data = {**{k: base64.b64encode(v).decode() for k, v in secret.data.items()},
                "client_id": base64.b64encode(b"shared").decode()}  # fmt: skip
        shared = SecretSnapshot.from_api(
            {"metadata": {"name": secret.name, "namespace": "ns", "labels": dict(secret.labels),
                          "annotations": dict(secret.annotations),
                          "ownerReferences": [dict(r) for r in secret.owner_references]},
             "data": data}
        )  # fmt: skip
        clashing.append((ResourceSnapshot.from_api(body), shared))
    found = registry_contents(clashing, NOW, TEST_STATE_KEY)
    entries, duplicates = found.entries, found.duplicates
    assert [e["name"] for e in entries] == ["second"]  # created first
    assert duplicates == {"first": "second"}
