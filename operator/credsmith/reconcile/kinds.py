"""The two kinds that issue credentials, and what differs between them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credsmith.api import api_client, service_account_credential
from credsmith.api.api_client import ApiClientSpec
from credsmith.api.enums import CredentialType, HashAlgorithm, RegistryFormat
from credsmith.api.service_account_credential import DEFAULT_TYPE, ServiceAccountCredentialSpec
from credsmith.reconcile.credential import KindRules
from credsmith.reconcile.snapshots import ResourceSnapshot

SERVICE_ACCOUNT_CREDENTIAL = KindRules(
    kind=service_account_credential.KIND,
    spec_model=ServiceAccountCredentialSpec,
    credential_type=lambda spec: spec.type,
    key_algorithm=lambda spec: spec.key_algorithm,
)

API_CLIENT = KindRules(
    kind=api_client.KIND,
    spec_model=ApiClientSpec,
    credential_type=lambda spec: CredentialType.CLIENT_SECRET,
    key_algorithm=lambda spec: None,
    has_client_uuid=True,
    verifier_hash=lambda spec: spec.registry.hash if spec.registry else None,
    htpasswd=lambda spec: bool(
        spec.registry and RegistryFormat.HTPASSWD in spec.registry.effective_formats
    ),
    extra_status=lambda spec: {"roleCount": len(spec.roles)},
)

PLURALS = {
    SERVICE_ACCOUNT_CREDENTIAL.kind: "serviceaccountcredentials",
    API_CLIENT.kind: "apiclients",
}


def secret_name_of(resource: ResourceSnapshot) -> str:
    """The Secret a resource writes, read without validating the rest of its spec."""
    name: Any = resource.spec.get("secretName")
    return name if isinstance(name, str) and name else resource.name


def registry_name_of(body: Mapping[str, Any]) -> str | None:
    """The registry Secret an ApiClient body names, if any."""
    registry = (body.get("spec") or {}).get("registry") or {}
    name = registry.get("name") if isinstance(registry, Mapping) else None
    return name if isinstance(name, str) and name else None


def jwks_name_of(body: Mapping[str, Any]) -> str | None:
    """The JWK Set ConfigMap a KeyPair credential body names, if any."""
    spec = body.get("spec") or {}
    key_pair = spec.get("keyPair") if isinstance(spec, Mapping) else None
    jwks = key_pair.get("jwks") if isinstance(key_pair, Mapping) else None
    name = jwks.get("name") if isinstance(jwks, Mapping) else None
    return name if isinstance(name, str) and name else None


# Types whose values are random strings: made, read and checked in microseconds.
_LIGHT_TYPES = frozenset(t.value for t in CredentialType if t is not CredentialType.KEY_PAIR)


def is_light(resource: ResourceSnapshot, registry_htpasswd: bool = False) -> bool:
    """Whether a pass over `resource` can do nothing slow, so the runtime may run it on the
    event loop rather than hand it to a thread: no key pair to make or read (RSA-4096 takes
    seconds) and no slow hash to make or verify (Argon2id, PBKDF2, bcrypt; a hash of another
    algorithm found on the Secret is not verified, trust.hash_is_trusted). Read from the raw
    spec, conservatively: what is not plainly light (a KeyPair or unknown type, a registry
    hashing with anything but SHA256 or writing Htpasswd) is not. `registry_htpasswd`: the
    registry holds Htpasswd for another client, so this one keeps a bcrypt hash too."""
    spec = resource.spec
    if registry_htpasswd or spec.get("keyPair") is not None:
        return False
    if spec.get("type", DEFAULT_TYPE.value) not in _LIGHT_TYPES:
        return False
    registry = spec.get("registry")
    if registry is None:
        return True
    if not isinstance(registry, Mapping):
        return False
    formats = registry.get("formats") or [RegistryFormat.CLIENTS_JSON.value]
    hash_ = registry.get("hash", api_client.DEFAULT_HASH.value)
    return hash_ == HashAlgorithm.SHA256.value and (
        isinstance(formats, list) and all(f == RegistryFormat.CLIENTS_JSON.value for f in formats)
    )
