"""Keycloak's client representation for a DesiredClient, and what differs from it (pure).

Checked against Keycloak 26.5.6 (tests/e2e/test_provider_keycloak.py):

- A client's `attributes` are strings; a PUT keeps attributes it does not name, and an
  empty string removes one. So putting back always names every attribute we manage.
- No previous secret (holds_two_secrets is False). Keycloak 26.5.6 does accept a "rotated
  secret" beside the current one: the attributes `client.secret.rotated`,
  `client.secret.rotated.creation.time` (without it the rotated one is ignored) and
  `client.secret.rotated.expiration.time` (refused after it, and without it), honoured
  with no client policy when the client is created with them (POST). But every update of
  the client (PUT, and the secret's regeneration) removes them unless a realm client
  policy's `secret-rotation` executor applies to the client, and that executor then
  generates secrets of its own when ours "expire" (and needs manage-realm to set up). So
  credsmith, which changes an existing client's secret with a PUT, cannot keep the
  previous one valid: it stops being accepted the moment the new one is set.
- `private_key_jwt` is `clientAuthenticatorType: client-jwt` with the JWKS inline
  (`use.jwks.string`, `jwks.string`); every key of it authenticates, and with no
  `token.endpoint.auth.signing.alg` any algorithm its keys fit is accepted (RSA and EC).
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from credsmith.providers.base import DesiredClient, Marker, Owner, ProviderError, ProviderReason

# Our marker, as client attributes (Keycloak keeps any attribute name).
PROVIDER_UID = "credsmith.io/provider-uid"
OWNER_KIND = "credsmith.io/owner-kind"
OWNER_NAMESPACE = "credsmith.io/owner-namespace"
OWNER_NAME = "credsmith.io/owner-name"
OWNER_UID = "credsmith.io/owner-uid"
REVISION = "credsmith.io/revision"
REVISION_TEXT = re.compile(r"[0-9]{1,10}")
# The client scopes we added (space-separated), so that one no longer wanted is removed
# while the realm's defaults that Keycloak gave the client stay.
SCOPES = "credsmith.io/scopes"

AUDIENCE_MAPPER = "oidc-audience-mapper"
AUDIENCE_MAPPER_PREFIX = "credsmith audience "

AUTHENTICATORS = {"client_secret_basic": "client-secret", "private_key_jwt": "client-jwt"}

# Grant types Keycloak can switch on for a client without redirect URIs, as the client
# representation's switches: a top-level boolean or an attribute ("true"/"false").
GRANT_SWITCHES: dict[str, tuple[str, str | None]] = {
    "client_credentials": ("serviceAccountsEnabled", None),
    "password": ("directAccessGrantsEnabled", None),
    # A refresh token beside client_credentials tokens.
    "refresh_token": ("attributes", "client_credentials.use_refresh_token"),
    "urn:ietf:params:oauth:grant-type:token-exchange": (
        "attributes",
        "standard.token.exchange.enabled",
    ),
    "urn:ietf:params:oauth:grant-type:device_code": (
        "attributes",
        "oauth2.device.authorization.grant.enabled",
    ),
}


def check_supported(desired: DesiredClient) -> None:
    """REJECTED for what Keycloak cannot hold as we would register it."""
    if desired.auth_method not in AUTHENTICATORS:
        raise ProviderError(
            ProviderReason.REJECTED,
            f"Keycloak: authentication method {desired.auth_method!r} is not supported "
            f"(supported: {', '.join(AUTHENTICATORS)})",
        )
    unknown = [grant for grant in desired.grant_types if grant not in GRANT_SWITCHES]
    if unknown:
        raise ProviderError(
            ProviderReason.REJECTED,
            f"Keycloak: grant type {', '.join(unknown)} not supported for a credsmith client "
            f"(authorization_code and implicit need redirect URIs); supported: "
            f"{', '.join(GRANT_SWITCHES)}",
        )
    if desired.auth_method == "client_secret_basic" and not desired.secret:
        raise ProviderError(ProviderReason.REJECTED, "Keycloak: client_secret_basic needs a secret")
    if desired.auth_method == "private_key_jwt" and not desired.jwks:
        raise ProviderError(ProviderReason.REJECTED, "Keycloak: private_key_jwt needs a JWKS")


def marker_attributes(marker: Marker) -> dict[str, str]:
    owner = marker.owner
    return {
        PROVIDER_UID: marker.provider_uid,
        OWNER_KIND: owner.kind,
        OWNER_NAMESPACE: owner.namespace,
        OWNER_NAME: owner.name,
        OWNER_UID: owner.uid,
        REVISION: str(marker.revision),
    }


def marker_of(rep: Mapping[str, Any]) -> Marker | None:
    """Our marker on a client representation, or None when it carries none (or not one we
    wrote: anyone with the realm's admin can write attributes, and a value that is not our
    shape must not raise in the worker)."""
    attributes = rep.get("attributes")
    if not isinstance(attributes, Mapping):
        return None
    keys = (PROVIDER_UID, OWNER_KIND, OWNER_NAMESPACE, OWNER_NAME, OWNER_UID)
    provider_uid, kind, namespace, name, uid = (attributes.get(key, "") for key in keys)
    texts = (provider_uid, kind, namespace, name, uid)
    if not all(isinstance(text, str) for text in texts) or not provider_uid or not uid:
        return None
    revision = attributes.get(REVISION) or "0"
    # ASCII digits only: str.isdigit() takes "²", which int() refuses.
    if not isinstance(revision, str) or not REVISION_TEXT.fullmatch(revision):
        return None
    owner = Owner(kind=kind, namespace=namespace, name=name, uid=uid)
    return Marker(provider_uid=provider_uid, owner=owner, revision=int(revision))


def is_ours(rep: Mapping[str, Any], marker: Marker) -> bool:
    """Ours to change: our marker for this owner (by UID). A client marked by another
    provider resource for the same owner is adopted (hydra_body.is_ours says why)."""
    found = marker_of(rep)
    return found is not None and found.owner.uid == marker.owner.uid


def _attributes(rep: Mapping[str, Any]) -> Mapping[str, Any]:
    attributes = rep.get("attributes")
    return attributes if isinstance(attributes, Mapping) else {}


def _canonical_jwks(keys: Any) -> list[str]:
    return sorted(json.dumps(key, sort_keys=True) for key in keys)


def _held_jwks(text: Any) -> list[str] | None:
    """The keys of a client's `jwks.string`, canonical; None when it is not a JWK Set (a
    realm admin may have written anything there)."""
    if not isinstance(text, str):
        return None if text else []
    try:
        keys = json.loads(text or "{}").get("keys", [])
        if not isinstance(keys, list) or not all(isinstance(key, Mapping) for key in keys):
            return None
        return _canonical_jwks(keys)
    except (ValueError, AttributeError, RecursionError):
        return None


def _same_secret(held: Any, wanted: str | None) -> bool:
    """Constant-time, and never a secret in a message: only whether they are equal."""
    if wanted is None:
        return not held
    if not isinstance(held, str):
        return False
    # JSON can carry a lone surrogate, which strict UTF-8 refuses to encode.
    return hmac.compare_digest(_bytes(held), _bytes(wanted))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def desired_fields(desired: DesiredClient) -> dict[str, Any]:
    """What we set on the client (top-level fields, `attributes` of ours), for a POST or
    merged into what Keycloak holds for a PUT."""
    attributes = marker_attributes(desired.marker)
    attributes[SCOPES] = " ".join(desired.scope)
    fields: dict[str, Any] = {
        "clientId": desired.client_id,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "bearerOnly": False,
        "standardFlowEnabled": False,
        "implicitFlowEnabled": False,
        "clientAuthenticatorType": AUTHENTICATORS[desired.auth_method],
    }
    for grant, (where, name) in GRANT_SWITCHES.items():
        enabled = grant in desired.grant_types
        if name is None:
            fields[where] = enabled
        else:
            attributes[name] = "true" if enabled else "false"
    if desired.auth_method == "client_secret_basic":
        fields["secret"] = desired.secret
    else:
        attributes["use.jwks.url"] = "false"
        attributes["use.jwks.string"] = "true"
        attributes["jwks.string"] = json.dumps({"keys": [dict(key) for key in desired.jwks]})
    fields["attributes"] = attributes
    return fields


def differences(desired: DesiredClient, rep: Mapping[str, Any]) -> list[str]:
    """The names (base.py's) of what the client representation `rep` holds otherwise."""
    attributes = _attributes(rep)
    found: list[str] = []
    if rep.get("clientAuthenticatorType") != AUTHENTICATORS[desired.auth_method]:
        found.append("authMethod")
    if desired.auth_method == "client_secret_basic":
        if not _same_secret(rep.get("secret"), desired.secret):
            found.append("secret")
    else:
        held = _held_jwks(attributes.get("jwks.string"))
        if (
            attributes.get("use.jwks.string") != "true"
            or held is None
            or held != _canonical_jwks(desired.jwks)
        ):
            found.append("jwks")
    if _grants_differ(desired, rep) or rep.get("standardFlowEnabled") or rep.get("publicClient"):
        found.append("grantTypes")
    if rep.get("implicitFlowEnabled") or rep.get("bearerOnly") or rep.get("enabled") is False:
        found.append("grantTypes")
    if any(
        attributes.get(key) != value for key, value in marker_attributes(desired.marker).items()
    ):
        found.append("marker")
    return list(dict.fromkeys(found))


def _grants_differ(desired: DesiredClient, rep: Mapping[str, Any]) -> bool:
    attributes = _attributes(rep)
    for grant, (where, name) in GRANT_SWITCHES.items():
        enabled = grant in desired.grant_types
        held = bool(rep.get(where)) if name is None else attributes.get(name) == "true"
        if held != enabled:
            return True
    return False


def merged(rep: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """What Keycloak holds with our fields put back (attributes merged, ours win)."""
    result = {key: value for key, value in rep.items() if key != "attributes"}
    result.update({key: value for key, value in fields.items() if key != "attributes"})
    result["attributes"] = {**_attributes(rep), **fields["attributes"]}
    return result


def recorded_scopes(rep: Mapping[str, Any]) -> set[str]:
    recorded = _attributes(rep).get(SCOPES)
    return set(recorded.split()) if isinstance(recorded, str) else set()


def audience_mappers(rep: Mapping[str, Any]) -> dict[str, str]:
    """Our audience mappers on the client: audience -> mapper id."""
    found: dict[str, str] = {}
    mappers = rep.get("protocolMappers")
    for mapper in mappers if isinstance(mappers, list) else ():
        if not isinstance(mapper, Mapping) or mapper.get("protocolMapper") != AUDIENCE_MAPPER:
            continue
        name, mapper_id, config = mapper.get("name"), mapper.get("id"), mapper.get("config")
        if not (isinstance(name, str) and name.startswith(AUDIENCE_MAPPER_PREFIX)):
            continue
        audience = config.get("included.custom.audience") if isinstance(config, Mapping) else None
        if isinstance(audience, str) and isinstance(mapper_id, str):
            found[audience] = mapper_id
    return found


def audience_mapper(audience: str) -> dict[str, Any]:
    return {
        # Names are unique per client; Keycloak caps them at 255 characters.
        "name": (AUDIENCE_MAPPER_PREFIX + audience)[:255],
        "protocol": "openid-connect",
        "protocolMapper": AUDIENCE_MAPPER,
        "config": {
            "included.custom.audience": audience,
            "access.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }
