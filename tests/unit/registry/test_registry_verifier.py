"""ClientRegistry: what an API server uses to check a presented client secret."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from credsmith.api.enums import HashAlgorithm
from credsmith.issuing.hashing import hash_secret
from credsmith.reconcile.registry import (
    PREVIOUS_SECRET_HASH,
    SECRET_HASH,
    reconcile_registry,
    registry_entry,
    render_document,
)
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.registry import ClientRegistry

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def client(name: str, roles: list[dict[str, str]] | None = None) -> ResourceSnapshot:
    return ResourceSnapshot.from_api(
        {
            "apiVersion": "credsmith.io/v1alpha1",
            "kind": "ApiClient",
            "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "generation": 1},
            "spec": {
                "displayName": name.title(),
                "roles": roles or [],
                "registry": {"name": "reg"},
            },
        }
    )


def client_secret(
    name: str, value: str, algorithm: HashAlgorithm, previous: str | None = None
) -> SecretSnapshot:
    notes = {
        "credsmith.io/id": f"00000000-0000-4000-8000-{name.encode().hex()[:12]:0>12}",
        SECRET_HASH: hash_secret(value, algorithm),
    }
    if previous is not None:
        notes[PREVIOUS_SECRET_HASH] = hash_secret(previous, algorithm)
        notes["credsmith.io/previous-expires-at"] = (NOW + timedelta(minutes=5)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    return SecretSnapshot.from_api(
        {
            "metadata": {"name": name, "namespace": "ns", "annotations": notes},
            "data": {
                "client_id": base64.b64encode(f"id-{name}".encode()).decode(),
                "client_secret": base64.b64encode(value.encode()).decode(),
            },
        }
    )


def write_registry(path: Path, members: list[tuple[ResourceSnapshot, SecretSnapshot]]) -> None:
    entries = [e for c, s in members if (e := registry_entry(c, s))]
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
            (client("a", roles), client_secret("a", "secret-of-a-0123456789abcdef", algorithm)),
            (client("b"), client_secret("b", "secret-of-b-0123456789abcdef", algorithm)),
        ],
    )
    registry = ClientRegistry.load(path)
    found = registry.verify("id-a", "secret-of-a-0123456789abcdef")
    assert found is not None
    assert found.name == "a"
    assert found.role_ids == {"reports.read"}
    assert registry.verify("id-b", "secret-of-b-0123456789abcdef") is not None
    assert registry.verify("id-a", "secret-of-b-0123456789abcdef") is None  # another's secret
    assert registry.verify("id-a", "wrong") is None
    assert registry.verify("id-unknown", "secret-of-a-0123456789abcdef") is None
    assert "secret-of-a" not in path.read_text()


def test_previous_secret_verifies_only_until_it_expires(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    write_registry(
        path,
        [
            (
                client("a"),
                client_secret(
                    "a",
                    "new-0123456789abcdefghij",
                    HashAlgorithm.SHA256,
                    "old-0123456789abcdefghij",
                ),
            )
        ],
    )
    registry = ClientRegistry.load(path)
    assert registry.verify("id-a", "new-0123456789abcdefghij", now=NOW)
    assert registry.verify("id-a", "old-0123456789abcdefghij", now=NOW)
    later = NOW + timedelta(minutes=6)
    assert registry.verify("id-a", "old-0123456789abcdefghij", now=later) is None
    assert registry.verify("id-a", "new-0123456789abcdefghij", now=later)


def test_reloads_when_the_file_changes_and_deleted_clients_stop_verifying(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    a = (client("a"), client_secret("a", "secret-a-0123456789abcdef", HashAlgorithm.SHA256))
    b = (client("b"), client_secret("b", "secret-b-0123456789abcdef", HashAlgorithm.SHA256))
    write_registry(path, [a, b])
    registry = ClientRegistry.load(path)
    assert len(registry) == 2
    # kubelet swaps a mounted Secret by renaming a new file into place.
    replacement = tmp_path / "clients.json.new"
    write_registry(replacement, [a])
    os.replace(replacement, path)
    assert registry.verify("id-b", "secret-b-0123456789abcdef") is None
    assert registry.verify("id-a", "secret-a-0123456789abcdef") is not None
    assert len(registry) == 1


def test_clients_without_an_issued_hash_are_left_out_and_documents_are_stable() -> None:
    issued = (client("a"), client_secret("a", "s-0123456789abcdefghijkl", HashAlgorithm.SHA256))
    pending = (client("b"), None)
    decision = reconcile_registry("ns", "reg", [pending, issued], None)
    assert decision.create
    assert decision.clients == 1
    written = SecretSnapshot.from_api(
        {**decision.secret, "metadata": {**decision.secret["metadata"], "resourceVersion": "7"}}
    )  # type: ignore[dict-item]
    again = reconcile_registry("ns", "reg", [issued, pending], written)
    assert again.secret is None  # same set, any order: no write


def test_a_foreign_registry_secret_is_a_conflict() -> None:
    foreign = SecretSnapshot.from_api({"metadata": {"name": "reg", "namespace": "ns"}, "data": {}})
    issued = (client("a"), client_secret("a", "s-0123456789abcdefghijkl", HashAlgorithm.SHA256))
    decision = reconcile_registry("ns", "reg", [issued], foreign)
    assert decision.conflict
    assert decision.secret is None
