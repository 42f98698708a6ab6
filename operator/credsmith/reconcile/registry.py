"""The registry Secret of a namespace: derived from its ApiClients and their Secrets. Pure.

The document is recomputed from the whole set every time (level-based), so a
created, changed or deleted ApiClient needs no finalizer and concurrent changes
cannot lose each other. It holds hashes made when the credential was issued
(stored on each client's Secret); never a secret value.

Its formats are the registry's, not a client's: the union of what its clients ask
(`clients.json` always), and every client is listed in each. A client that cannot be in the
htpasswd file another client turned on (a secret past bcrypt's 72 bytes, a ':' in its client
ID) is left out of it and reported, so it is not Ready.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from credsmith import API_VERSION
from credsmith.api.api_client import ApiClientSpec
from credsmith.api.enums import DeletionPolicy, RegistryFormat
from credsmith.api.status import Reason, format_timestamp
from credsmith.issuing.htpasswd import htpasswd_line, render_htpasswd
from credsmith.reconcile.credential import checked_credential
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.published import Unpublished
from credsmith.reconcile.secret_state import BCRYPT, OWNER, is_ours
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey
from credsmith.reconcile.trust import hash_is_trusted
from credsmith.registry import DOCUMENT_FILE, DOCUMENT_KIND

REGISTRY_KIND = "Registry"  # the owner annotation's kind for registry Secrets
HTPASSWD_FILE = "auth"  # the key ingress-nginx's auth-secret (auth-type basic) reads
HTPASSWD_USERS = "users"  # the same lines, under the key Traefik's basicAuth secret reads

Member = tuple[ResourceSnapshot, SecretSnapshot | None]


@dataclass(frozen=True)
class RegistryDecision:
    secret: Mapping[str, Any] | None  # the manifest to write, or None: up to date
    create: bool
    conflict: bool  # a Secret of that name exists and is not ours
    clients: int
    # Clients left out because an earlier one has their client ID: name -> that one's name.
    duplicates: Mapping[str, str] = field(default_factory=dict)
    # Clients left out of a format the registry holds (htpasswd) -> why.
    left_out: Mapping[str, Unpublished] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryContents:
    entries: list[dict[str, Any]]  # clients.json
    htpasswd: list[str]  # the `auth` lines of the clients, when any client asks for Htpasswd
    duplicates: dict[str, str]  # left out for an earlier client's client ID -> that client
    wants_htpasswd: bool
    left_out: dict[str, Unpublished] = field(default_factory=dict)  # of `auth`: why


def registry_entry(
    client: ResourceSnapshot, secret: SecretSnapshot | None, now: datetime, state_key: StateKey
) -> dict[str, Any] | None:
    """One client's clients.json entry (see `_record`)."""
    return _record(client, secret, now, state_key, htpasswd=False)[0]


def registry_formats(clients: Iterable[ResourceSnapshot]) -> frozenset[RegistryFormat]:
    """The formats a registry holds: what any of its clients asks, and clients.json."""
    formats = {RegistryFormat.CLIENTS_JSON}
    for client in clients:
        registry = client.spec.get("registry")
        asked = registry.get("formats") if isinstance(registry, Mapping) else None
        for name in asked if isinstance(asked, list) else ():
            if name in RegistryFormat._value2member_map_:
                formats.add(RegistryFormat(name))
    return frozenset(formats)


def fits_htpasswd(client: ResourceSnapshot) -> bool:
    """Whether the client's (valid) spec can have an htpasswd line."""
    try:
        spec = ApiClientSpec.model_validate(client.spec)
    except ValidationError:
        return False
    return spec.fits_htpasswd()


def _record(
    client: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    state_key: StateKey,
    htpasswd: bool,
) -> tuple[dict[str, Any] | None, str | None]:
    """One client's entry and htpasswd line, or Nones unless its spec is valid, its Secret is
    its own (owner annotation, and ownerReference UID where it is owned), its credential
    passes every check of trust.py (its state authenticated by the operator's MAC, or vouched
    for by status) and each hash is bound to that very value."""
    checked = checked_credential(API_CLIENT, client, secret, now, state_key=state_key)
    if checked is None or secret is None:
        return None, None
    spec, credential = checked
    assert isinstance(spec, ApiClientSpec)
    if spec.registry is None or not _owned_by(secret, client, spec):
        return None, None
    algorithm, state = spec.registry.hash, credential.state
    if state.hash is None or state.client_uuid is None:
        return None, None
    if not hash_is_trusted(state.hash, credential.value, algorithm):
        return None, None
    line = None
    if (
        htpasswd
        and state.htpasswd is not None
        and hash_is_trusted(state.htpasswd, credential.value, BCRYPT)
        and ":" not in credential.client_id
    ):
        line = htpasswd_line(credential.client_id, state.htpasswd.hash)
    entry: dict[str, Any] = {
        "id": state.client_uuid,
        "clientId": credential.client_id,
        "name": client.name,
        "displayName": spec.display_name,
        "roles": [role.to_wire() for role in spec.roles],
        "secret": {"hash": state.hash.hash},
    }
    # Listed exactly as long as the Secret holds the previous value (expiresAt tells a
    # verifier when to stop accepting it, whatever the operator is doing then).
    expires = state.previous_expires_at
    if (
        credential.previous is not None
        and state.previous_hash is not None
        and expires is not None
        and hash_is_trusted(state.previous_hash, credential.previous, algorithm)
    ):
        entry["previousSecret"] = {
            "hash": state.previous_hash.hash,
            "expiresAt": format_timestamp(expires),
        }
    return entry, line


def _owned_by(secret: SecretSnapshot, client: ResourceSnapshot, spec: ApiClientSpec) -> bool:
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return True
    return any(ref.get("uid") == client.uid for ref in secret.owner_references)


def registry_contents(
    members: Iterable[Member], now: datetime, state_key: StateKey
) -> RegistryContents:
    """One entry per client ID: the earliest client (creationTimestamp, then name) keeps
    it; later ones are left out and reported. Every client in each format the registry
    holds: one that cannot have an htpasswd line is reported."""
    ordered = sorted(members, key=lambda m: (m[0].creation_timestamp, m[0].name))
    wants_htpasswd = RegistryFormat.HTPASSWD in registry_formats(c for c, _ in ordered)
    kept: dict[str, tuple[ResourceSnapshot, dict[str, Any], str | None]] = {}
    duplicates: dict[str, str] = {}
    left_out: dict[str, Unpublished] = {}
    for client, secret in ordered:
        entry, line = _record(client, secret, now, state_key, wants_htpasswd)
        if entry is None:
            continue
        if (first := kept.get(entry["clientId"])) is not None:
            duplicates[client.name] = first[0].name
            continue
        kept[entry["clientId"]] = (client, entry, line)
        if wants_htpasswd and line is None and not fits_htpasswd(client):
            left_out[client.name] = Unpublished(Reason.INVALID_SPEC, _UNFIT)
    return RegistryContents(
        entries=[entry for _, entry, _ in kept.values()],
        htpasswd=[line for _, _, line in kept.values() if line is not None],
        duplicates=duplicates,
        wants_htpasswd=wants_htpasswd,
        left_out=left_out,
    )


_UNFIT = (
    "another client of the registry asks for registry.formats Htpasswd, which lists every "
    "client, and this one cannot be in it: its secret (secret.prefix, secret.length and a "
    "checksum) must fit bcrypt's 72 bytes, and a clientId.value must not contain ':'"
)


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
    state_key: StateKey,
) -> RegistryDecision:
    owner = f"{REGISTRY_KIND}/{name}"
    if existing is not None and not is_ours(existing.labels, existing.annotations, owner):
        return RegistryDecision(None, create=False, conflict=True, clients=0)
    contents = registry_contents(members, now, state_key)
    entries, duplicates = contents.entries, contents.duplicates
    document = render_document(entries)
    data = {DOCUMENT_FILE: document}
    if contents.wants_htpasswd:
        data[HTPASSWD_FILE] = data[HTPASSWD_USERS] = render_htpasswd(contents.htpasswd)
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
        "data": {key: base64.b64encode(text.encode()).decode() for key, text in data.items()},
    }
    left_out = contents.left_out
    if existing is not None and dict(existing.data) == {k: v.encode() for k, v in data.items()}:
        return RegistryDecision(None, False, False, len(entries), duplicates, left_out)
    if existing is not None:
        manifest["metadata"]["resourceVersion"] = existing.resource_version
    return RegistryDecision(manifest, existing is None, False, len(entries), duplicates, left_out)
