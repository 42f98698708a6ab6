"""What an Ory Hydra OAuth2 client must look like for a credential, and how the one Hydra
holds differs from it: pure, so that the comparison is unit-tested without a Hydra
(providers/hydra.py does the calls, tests/e2e/test_provider_hydra.py proves both against a
real one).

Hydra's JSON names (its admin API, /admin/clients) are used as they are; the names of what
differed are base.py's ("grantTypes", "scope", ...).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from credsmith.providers.base import DesiredClient, Marker, Owner

# The key of our marker in the client's `metadata` (free JSON that Hydra keeps as given).
MARKER_KEY = "credsmith"
SECRET_AUTH_METHOD = "client_secret_basic"
KEY_AUTH_METHOD = "private_key_jwt"
# What Hydra stores when a client is given no scope (it never keeps an empty one): a
# credential asking for none is in place when Hydra holds exactly these.
HYDRA_DEFAULT_SCOPE = frozenset({"offline_access", "offline", "openid"})
# Hydra's default `token_endpoint_auth_signing_alg` for private_key_jwt.
HYDRA_DEFAULT_SIGNING_ALG = "RS256"
# A public JWK's members (RFC 7517/7518/8037): only these are ever sent, so a private
# member handed over by mistake never leaves the operator.
_PUBLIC_JWK_MEMBERS = ("kty", "kid", "use", "alg", "crv", "x", "y", "n", "e")


def marker_metadata(marker: Marker) -> dict[str, Any]:
    return {
        "providerUID": marker.provider_uid,
        "owner": {
            "kind": marker.owner.kind,
            "namespace": marker.owner.namespace,
            "name": marker.owner.name,
            "uid": marker.owner.uid,
        },
        "revision": marker.revision,
    }


def marker_of(client: Mapping[str, Any]) -> Marker | None:
    """Our marker on a client Hydra holds, or None when it has none (or not one we wrote)."""
    metadata = client.get("metadata")
    found = metadata.get(MARKER_KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(found, Mapping):
        return None
    owner = found.get("owner")
    if not isinstance(owner, Mapping):
        return None
    texts = [found.get("providerUID"), *(owner.get(k) for k in ("kind", "namespace", "name"))]
    uid, revision = owner.get("uid"), found.get("revision", 0)
    if not all(isinstance(text, str) for text in texts) or not isinstance(uid, str) or not uid:
        return None
    if not isinstance(revision, int) or isinstance(revision, bool):
        return None
    provider_uid, kind, namespace, name = (str(text) for text in texts)
    if not provider_uid:
        return None
    return Marker(provider_uid, Owner(kind, namespace, name, uid), revision)


def is_ours(client: Mapping[str, Any], desired: Marker) -> bool:
    """Registered by credsmith for this owner: the owner's UID decides (names are reused;
    only the operator writes markers, and a UID is never reused). The provider resource's
    UID does not: one deleted and recreated (or restored from a backup) has a new UID, and
    its credentials' clients are adopted (their marker put back) rather than refused for
    good. Any other client of that ID is never changed."""
    found = marker_of(client)
    return found is not None and found.owner.uid == desired.owner.uid


def public_jwk(key: Mapping[str, Any]) -> dict[str, Any]:
    return {name: key[name] for name in _PUBLIC_JWK_MEMBERS if name in key}


def signing_alg(desired: DesiredClient) -> str:
    """The client assertion algorithm Hydra must expect: the current key's (Hydra allows
    one per client; RS*, PS* and ES*, not EdDSA, which it rejects)."""
    if desired.jwks and isinstance(desired.jwks[0].get("alg"), str):
        return str(desired.jwks[0]["alg"])
    return HYDRA_DEFAULT_SIGNING_ALG


def managed_fields(desired: DesiredClient) -> dict[str, Any]:
    """Every field of a Hydra client that we decide (the secret apart)."""
    fields: dict[str, Any] = {
        "client_id": desired.client_id,
        "grant_types": list(desired.grant_types),
        "scope": " ".join(desired.scope),
        "audience": list(desired.audience),
        "token_endpoint_auth_method": desired.auth_method,
    }
    if desired.auth_method == KEY_AUTH_METHOD:
        fields["jwks"] = {"keys": [public_jwk(key) for key in desired.jwks]}
        fields["token_endpoint_auth_signing_alg"] = signing_alg(desired)
    return fields


def new_client(desired: DesiredClient) -> dict[str, Any]:
    """The body of the POST that creates the client."""
    body = managed_fields(desired)
    body["metadata"] = {MARKER_KEY: marker_metadata(desired.marker)}
    if desired.auth_method == SECRET_AUTH_METHOD:
        body["client_secret"] = required_secret(desired)
    return body


def put_back(current: Mapping[str, Any], desired: DesiredClient) -> dict[str, Any]:
    """The body of the PUT that puts our fields back: what Hydra holds (so fields we do not
    manage stay as they are), ours over it. Without `client_secret`, Hydra keeps the
    secret it has; the caller adds it when it must be set."""
    body = {**current, **managed_fields(desired)}
    metadata = current.get("metadata")
    body["metadata"] = {
        **(metadata if isinstance(metadata, Mapping) else {}),
        MARKER_KEY: marker_metadata(desired.marker),
    }
    body.pop("client_secret", None)
    return body


def required_secret(desired: DesiredClient) -> str:
    if not desired.secret:
        raise ValueError(f"client {desired.client_id}: {SECRET_AUTH_METHOD} needs a secret")
    return desired.secret


def differences(current: Mapping[str, Any], desired: DesiredClient) -> tuple[str, ...]:
    """What Hydra holds that differs from `desired`, by base.py's field names (the secret
    apart: Hydra keeps only a hash of it). Orders that carry no meaning are ignored."""
    found: list[str] = []
    if _texts(current.get("grant_types")) != frozenset(desired.grant_types):
        found.append("grantTypes")
    scope = frozenset(str(current.get("scope") or "").split())
    if scope != (frozenset(desired.scope) or HYDRA_DEFAULT_SCOPE):
        found.append("scope")
    if _texts(current.get("audience")) != frozenset(desired.audience):
        found.append("audience")
    if current.get("token_endpoint_auth_method") != desired.auth_method or (
        desired.auth_method == KEY_AUTH_METHOD
        and current.get("token_endpoint_auth_signing_alg") != signing_alg(desired)
    ):
        found.append("authMethod")
    if desired.auth_method == KEY_AUTH_METHOD and _keys(current) != [
        public_jwk(key) for key in desired.jwks
    ]:
        found.append("jwks")
    metadata = current.get("metadata")
    ours = metadata.get(MARKER_KEY) if isinstance(metadata, Mapping) else None
    if ours != marker_metadata(desired.marker):
        found.append("marker")
    return tuple(found)


def _texts(value: Any) -> frozenset[str]:
    return frozenset(str(item) for item in value) if isinstance(value, list) else frozenset()


def _keys(current: Mapping[str, Any]) -> list[dict[str, Any]]:
    jwks = current.get("jwks")
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        return []
    return [public_jwk(key) if isinstance(key, Mapping) else {} for key in keys]


class SecretVerdict(enum.Enum):
    """What a token request with our secret says about the secret Hydra holds."""

    SAME = "same"
    DIFFERS = "differs"
    UNKNOWN = "unknown"


# Errors Hydra gives only after the client authenticated (RFC 6749 5.2): the grant type
# not allowed for it (a client without client_credentials), the probe's scope not allowed.
_AFTER_AUTHENTICATION = frozenset({"unauthorized_client", "invalid_scope"})


def secret_verdict(status: int, error: str | None) -> SecretVerdict:
    """Only 401 invalid_client says the secret is wrong; a token, or an error that comes
    after authentication, says it is right; anything else (a 5xx, a proxy's page, an
    unexpected 400) says nothing, and the caller sets the secret without calling it drift."""
    if status == 401 and error == "invalid_client":
        return SecretVerdict.DIFFERS
    if status == 200 or (status == 400 and error in _AFTER_AUTHENTICATION):
        return SecretVerdict.SAME
    return SecretVerdict.UNKNOWN
