"""The JWK Set of a namespace's key pairs (keyPair.jwks.name): a ConfigMap with `jwks.json`
(RFC 7517) holding the public key of every KeyPair credential naming it, and its previous
key during a rotation overlap. Pure.

Each key is bound to its client: it carries a `client_id` member (the credential's client
ID), and beside `jwks.json` the ConfigMap holds `<clientId>.jwks.json`, that client's keys
alone (what a server configures as the client's `jwks_uri`). A client ID that cannot be a
ConfigMap key ([-._a-zA-Z0-9]+, with the suffix at most 253 characters, not starting with
"..": every generated one can) has no document of its own; its keys are in `jwks.json`,
bound by `client_id`. One client ID, one credential: the earliest (creationTimestamp, then
name) keeps it, later ones are left out and reported as duplicates, so no credential can
publish a key for another's client by choosing its clientId.value.

What a server verifying `private_key_jwt` client assertions (RFC 7523) or signed requests
reads. Rebuilt from the whole set every time (level-based), like the registry, so no update
is lost; public material only, and only from credentials that own their Secret and pass
every check of trust.py (the keys are derived from the checked private key, not copied
from the Secret's public keys).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from credsmith.api.enums import DeletionPolicy
from credsmith.issuing.keypair import key_pair_from_private_pem
from credsmith.reconcile.credential import checked_credential
from credsmith.reconcile.document_size import DATA_LIMIT, SizeBudget
from credsmith.reconcile.kinds import SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.secret_state import OWNER, is_ours
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey

JWKS_KIND = "JWKS"  # the owner annotation's kind for JWK Set ConfigMaps
JWKS_FILE = "jwks.json"
CLIENT_JWKS_SUFFIX = ".jwks.json"  # <clientId>.jwks.json: one client's keys
CLIENT_ID_MEMBER = "client_id"  # the JWK member naming the key's client
_CONFIG_MAP_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


@dataclass(frozen=True)
class ConfigMapSnapshot:
    namespace: str
    name: str
    data: Mapping[str, str]
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    resource_version: str

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> ConfigMapSnapshot:
        meta = obj.get("metadata") or {}
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            data=dict(obj.get("data") or {}),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            resource_version=str(meta.get("resourceVersion", "")),
        )


@dataclass(frozen=True)
class JwksDecision:
    config_map: Mapping[str, Any] | None  # the manifest to write, or None: up to date
    create: bool
    conflict: bool  # a ConfigMap of that name exists and is not ours
    keys: int
    # Credentials left out because an earlier one has their client ID: name -> that one's.
    duplicates: Mapping[str, str] = field(default_factory=dict)
    # Credentials left out because the ConfigMap would pass its size limit with them.
    full: tuple[str, ...] = ()


def client_jwks_file(client_id: str) -> str | None:
    """The ConfigMap key of one client's JWK Set, or None if its ID cannot be part of one.
    The API server also refuses a key that starts with ".." (kubelet's own names in a
    mounted ConfigMap), and the whole ConfigMap with it: every client's keys."""
    key = client_id + CLIENT_JWKS_SUFFIX
    return key if _CONFIG_MAP_KEY.fullmatch(key) and not key.startswith("..") else None


def public_keys(
    resource: ResourceSnapshot, secret: SecretSnapshot | None, now: datetime, state_key: StateKey
) -> list[dict[str, str]]:
    """The public JWKs one credential contributes, each naming its client: current, and
    previous until it expires."""
    checked = checked_credential(
        SERVICE_ACCOUNT_CREDENTIAL, resource, secret, now, state_key=state_key
    )
    if checked is None or secret is None:
        return []
    spec, credential = checked
    key_pair = getattr(spec, "key_pair", None)
    if key_pair is None or key_pair.jwks is None:
        return []
    if spec.deletion_policy is DeletionPolicy.DELETE and not any(
        ref.get("uid") == resource.uid for ref in secret.owner_references
    ):
        return []
    keys = [key_pair_from_private_pem(credential.value).public_jwk]
    # The previous key is published exactly as long as the Secret holds the previous value
    # (which may be past previousExpiresAt for a moment, or longer while consumers lag).
    if credential.previous is not None:
        keys.append(key_pair_from_private_pem(credential.previous).public_jwk)
    return [{**key, CLIENT_ID_MEMBER: credential.client_id} for key in keys]


def render_jwks(keys: Iterable[Mapping[str, str]]) -> str:
    """Stable (sorted by kid, fixed formatting), so an unchanged set is no write."""
    unique = {key["kid"]: dict(key) for key in keys}
    return json.dumps({"keys": [unique[kid] for kid in sorted(unique)]}, sort_keys=True) + "\n"


def keys_by_client(
    members: Iterable[tuple[ResourceSnapshot, SecretSnapshot | None]],
    now: datetime,
    state_key: StateKey,
    limit: int = DATA_LIMIT,
) -> tuple[dict[str, list[dict[str, str]]], dict[str, str], tuple[str, ...]]:
    """Public keys by client ID, one credential per client ID (the earliest); the later
    credentials left out for an earlier one's client ID -> that credential's name; and the
    credentials left out because the ConfigMap's data would pass `limit` with their keys
    (the earliest created that fit are kept)."""
    kept: dict[str, tuple[str, list[dict[str, str]]]] = {}
    duplicates: dict[str, str] = {}
    full: list[str] = []
    # jwks.json's keys are separated by ", ": one less than there are keys.
    budget = SizeBudget(len(render_jwks([])) - len(", "), limit)
    for resource, secret in sorted(members, key=lambda m: (m[0].creation_timestamp, m[0].name)):
        keys = public_keys(resource, secret, now, state_key)
        if not keys:
            continue
        client_id = keys[0][CLIENT_ID_MEMBER]
        if (first := kept.get(client_id)) is not None:
            duplicates[resource.name] = first[0]
            continue
        if not budget.admit(jwks_cost(client_id, keys)):
            full.append(resource.name)
            keys = []  # keeps its client ID (a later duplicate is still one), no keys
        kept[client_id] = (resource.name, keys)
    by_client = {client_id: keys for client_id, (_, keys) in kept.items() if keys}
    return by_client, duplicates, tuple(full)


def jwks_cost(client_id: str, keys: Iterable[Mapping[str, str]]) -> int:
    """What one client's keys add to the ConfigMap's data (render_jwks's format, ASCII):
    each key and a ", " in `jwks.json`, and its own `<clientId>.jwks.json`. Exact unless
    two keys share a kid (then rendered once: less)."""
    texts = [len(json.dumps(key, sort_keys=True)) + len(", ") for key in keys]
    own = len(render_jwks([])) + sum(texts) - len(", ") if client_jwks_file(client_id) else 0
    return sum(texts) + own


def reconcile_jwks(
    namespace: str,
    name: str,
    members: Iterable[tuple[ResourceSnapshot, SecretSnapshot | None]],
    existing: ConfigMapSnapshot | None,
    now: datetime,
    state_key: StateKey,
    limit: int = DATA_LIMIT,
) -> JwksDecision:
    owner = f"{JWKS_KIND}/{name}"
    if existing is not None and not is_ours(existing.labels, existing.annotations, owner):
        return JwksDecision(None, create=False, conflict=True, keys=0)
    by_client, duplicates, full = keys_by_client(members, now, state_key, limit)
    document = render_jwks(key for keys in by_client.values() for key in keys)
    data = {JWKS_FILE: document}
    for client_id, keys in by_client.items():
        if (file := client_jwks_file(client_id)) is not None:
            data[file] = render_jwks(keys)
    count = len(json.loads(document)["keys"])
    if existing is not None and dict(existing.data) == data:
        return JwksDecision(None, False, False, count, duplicates, full)
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        # Shared by many credentials, so owned by none: it outlives each of them.
        "annotations": {OWNER: owner},
    }
    if existing is not None:
        metadata["resourceVersion"] = existing.resource_version
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
    return JwksDecision(manifest, existing is None, False, count, duplicates, full)
