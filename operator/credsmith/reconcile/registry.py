"""The registry Secret of a namespace: derived from its ApiClients and their Secrets. Pure.

The document is recomputed from the whole set every time (level-based), so a
created, changed or deleted ApiClient needs no finalizer and concurrent changes
cannot lose each other. It holds hashes made when the credential was issued
(stored on each client's Secret); never a secret value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credsmith import API_VERSION
from credsmith.api.api_client import ApiClientSpec
from credsmith.api.enums import DeletionPolicy
from credsmith.api.status import format_timestamp
from credsmith.reconcile.credential import checked_credential
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.secret_state import OWNER, is_ours
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.trust import hash_is_trusted
from credsmith.registry import DOCUMENT_FILE, DOCUMENT_KIND

REGISTRY_KIND = "Registry"  # the owner annotation's kind for registry Secrets

Member = tuple[ResourceSnapshot, SecretSnapshot | None]


@dataclass(frozen=True)
class RegistryDecision:
    secret: Mapping[str, Any] | None  # the manifest to write, or None: up to date
    create: bool
    conflict: bool  # a Secret of that name exists and is not ours
    clients: int
    # Clients left out because an earlier one has their client ID: name -> that one's name.
    duplicates: Mapping[str, str] = field(default_factory=dict)


def registry_entry(
    client: ResourceSnapshot, secret: SecretSnapshot | None, now: datetime
) -> dict[str, Any] | None:
    """One client's entry, or None unless its spec is valid, its Secret is its own (owner
    annotation, and ownerReference UID where it is owned), its credential passes every
    check of trust.py and its hash is bound to that very value."""
    checked = checked_credential(API_CLIENT, client, secret, now)
    if checked is None or secret is None:
        return None
    spec, credential = checked
    assert isinstance(spec, ApiClientSpec)
    if spec.registry is None or not _owned_by(secret, client, spec):
        return None
    algorithm, state = spec.registry.hash, credential.state
    if state.hash is None or state.client_uuid is None:
        return None
    if not hash_is_trusted(state.hash, credential.value, algorithm):
        return None
    entry: dict[str, Any] = {
        "id": state.client_uuid,
        "clientId": credential.client_id,
        "name": client.name,
        "displayName": spec.display_name,
        "roles": [role.to_wire() for role in spec.roles],
        "secret": {"hash": state.hash.hash},
    }
    expires = state.previous_expires_at
    if (
        credential.previous is not None
        and state.previous_hash is not None
        and expires is not None
        and expires > now
        and hash_is_trusted(state.previous_hash, credential.previous, algorithm)
    ):
        entry["previousSecret"] = {
            "hash": state.previous_hash.hash,
            "expiresAt": format_timestamp(expires),
        }
    return entry


def _owned_by(secret: SecretSnapshot, client: ResourceSnapshot, spec: ApiClientSpec) -> bool:
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return True
    return any(ref.get("uid") == client.uid for ref in secret.owner_references)


def entries_and_duplicates(
    members: Iterable[Member], now: datetime
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One entry per client ID: the earliest client (creationTimestamp, then name) keeps
    it; later ones are left out and reported."""
    kept: dict[str, tuple[ResourceSnapshot, dict[str, Any]]] = {}
    duplicates: dict[str, str] = {}
    ordered = sorted(members, key=lambda m: (m[0].creation_timestamp, m[0].name))
    for client, secret in ordered:
        entry = registry_entry(client, secret, now)
        if entry is None:
            continue
        if (first := kept.get(entry["clientId"])) is not None:
            duplicates[client.name] = first[0].name
            continue
        kept[entry["clientId"]] = (client, entry)
    return [entry for _, entry in kept.values()], duplicates


def render_document(entries: Iterable[Mapping[str, Any]]) -> str:
    """clients.json: stable (sorted, fixed formatting), so an unchanged set is no write."""
    document = {
        "apiVersion": API_VERSION,
        "kind": DOCUMENT_KIND,
        "clients": sorted(entries, key=lambda e: (e["clientId"], e["id"])),
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def reconcile_registry(
    namespace: str,
    name: str,
    members: Iterable[Member],
    existing: SecretSnapshot | None,
    now: datetime,
) -> RegistryDecision:
    owner = f"{REGISTRY_KIND}/{name}"
    if existing is not None and not is_ours(existing.labels, existing.annotations, owner):
        return RegistryDecision(None, create=False, conflict=True, clients=0)
    entries, duplicates = entries_and_duplicates(members, now)
    document = render_document(entries)
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            # Shared by many ApiClients, so owned by none: it outlives each of them.
            "annotations": {OWNER: owner},
        },
        "data": {DOCUMENT_FILE: base64.b64encode(document.encode()).decode()},
    }
    if existing is not None and existing.text(DOCUMENT_FILE) == document:
        return RegistryDecision(None, False, False, len(entries), duplicates)
    if existing is not None:
        manifest["metadata"]["resourceVersion"] = existing.resource_version
    return RegistryDecision(manifest, existing is None, False, len(entries), duplicates)
