"""The JWK Set of a namespace's key pairs (keyPair.jwks.name): a ConfigMap with `jwks.json`
(RFC 7517) holding the public key of every KeyPair credential naming it, and its previous
key during a rotation overlap. Pure.

What a server verifying `private_key_jwt` client assertions (RFC 7523) or signed requests
reads. Rebuilt from the whole set every time (level-based), like the registry, so no update
is lost; public material only, and only from credentials that own their Secret and pass
every check of trust.py (the keys are derived from the checked private key, not copied
from the Secret's public keys).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credsmith.api.enums import DeletionPolicy
from credsmith.issuing.keypair import key_pair_from_private_pem
from credsmith.reconcile.credential import checked_credential
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


def public_keys(
    resource: ResourceSnapshot, secret: SecretSnapshot | None, now: datetime, state_key: StateKey
) -> list[dict[str, str]]:
    """The public JWKs one credential contributes: current, and previous until it expires;
    only from a checked credential (trust.py: authenticated state, or vouched for by status)."""
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
    return [dict(key) for key in keys]


def render_jwks(keys: Iterable[Mapping[str, str]]) -> str:
    """Stable (sorted by kid, fixed formatting), so an unchanged set is no write."""
    unique = {key["kid"]: dict(key) for key in keys}
    return json.dumps({"keys": [unique[kid] for kid in sorted(unique)]}, sort_keys=True) + "\n"


def reconcile_jwks(
    namespace: str,
    name: str,
    members: Iterable[tuple[ResourceSnapshot, SecretSnapshot | None]],
    existing: ConfigMapSnapshot | None,
    now: datetime,
    state_key: StateKey,
) -> JwksDecision:
    owner = f"{JWKS_KIND}/{name}"
    if existing is not None and not is_ours(existing.labels, existing.annotations, owner):
        return JwksDecision(None, create=False, conflict=True, keys=0)
    keys = [
        key for resource, secret in members for key in public_keys(resource, secret, now, state_key)
    ]
    document = render_jwks(keys)
    count = json.loads(document)["keys"]
    if existing is not None and existing.data.get(JWKS_FILE) == document:
        return JwksDecision(None, create=False, conflict=False, keys=len(count))
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
        # Shared by many credentials, so owned by none: it outlives each of them.
        "annotations": {OWNER: owner},
    }
    if existing is not None:
        metadata["resourceVersion"] = existing.resource_version
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    manifest["data"] = {JWKS_FILE: document}
    return JwksDecision(manifest, create=existing is None, conflict=False, keys=len(count))
