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
from dataclasses import dataclass
from typing import Any

from credsmith import API_VERSION, GROUP
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.registry import DOCUMENT_FILE, DOCUMENT_KIND

REGISTRY_KIND = "Registry"  # the owner annotation's kind for registry Secrets

# Set on an ApiClient's own Secret when its credential is issued or rotated.
SECRET_HASH = f"{GROUP}/secret-hash"
PREVIOUS_SECRET_HASH = f"{GROUP}/previous-secret-hash"


@dataclass(frozen=True)
class RegistryDecision:
    secret: Mapping[str, Any] | None  # the manifest to write, or None: up to date
    create: bool
    conflict: bool  # a Secret of that name exists and is not ours
    clients: int


def registry_entry(
    client: ResourceSnapshot, secret: SecretSnapshot | None
) -> dict[str, Any] | None:
    """One client's entry, or None while it has no issued credential with a hash."""
    if secret is None:
        return None
    notes = secret.annotations
    client_id = secret.text("client_id")
    current = notes.get(SECRET_HASH)
    client_uuid = notes.get(f"{GROUP}/id")
    if not client_id or not current or not client_uuid:
        return None
    roles = [
        {k: v for k, v in (("id", role.get("id")), ("name", role.get("name"))) if v is not None}
        for role in client.spec.get("roles") or ()
    ]
    entry: dict[str, Any] = {
        "id": client_uuid,
        "clientId": client_id,
        "name": client.name,
        "displayName": client.spec.get("displayName", ""),
        "roles": roles,
        "secret": {"hash": current},
    }
    previous = notes.get(PREVIOUS_SECRET_HASH)
    expires = notes.get(f"{GROUP}/previous-expires-at")
    if previous and expires:
        entry["previousSecret"] = {"hash": previous, "expiresAt": expires}
    return entry


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
    members: Iterable[tuple[ResourceSnapshot, SecretSnapshot | None]],
    existing: SecretSnapshot | None,
) -> RegistryDecision:
    owner = f"{REGISTRY_KIND}/{name}"
    if existing is not None and (
        existing.labels.get(MANAGED_BY_LABEL) != MANAGED_BY
        or existing.annotations.get(f"{GROUP}/owner") != owner
    ):
        return RegistryDecision(None, create=False, conflict=True, clients=0)
    entries = [e for client, secret in members if (e := registry_entry(client, secret))]
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
            "annotations": {f"{GROUP}/owner": owner},
        },
        "data": {DOCUMENT_FILE: base64.b64encode(document.encode()).decode()},
    }
    if existing is not None and existing.text(DOCUMENT_FILE) == document:
        return RegistryDecision(None, create=False, conflict=False, clients=len(entries))
    if existing is not None:
        manifest["metadata"]["resourceVersion"] = existing.resource_version
    return RegistryDecision(manifest, create=existing is None, conflict=False, clients=len(entries))
