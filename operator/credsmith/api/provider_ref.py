"""spec.identityProvider of a credential: the identity provider that also holds it, as an
OAuth2 client, and what that client may do.

A credential names an IdentityProvider of its own namespace, or a ClusterIdentityProvider
whose allowedNamespaces selects its namespace (identity_provider.py). Only ClientSecret
credentials (a client secret) and KeyPair credentials (a public key in the client's JWKS,
`private_key_jwt`) can be registered; the CEL rule sits on the kinds that have a type.
"""

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from credsmith.api.base import ObjectName, WireModel

DEFAULT_GRANT_TYPES = ("client_credentials",)
MAX_GRANT_TYPES = 8
MAX_SCOPES = 64
MAX_AUDIENCES = 32

# RFC 6749 grant type names (and URNs such as urn:ietf:params:oauth:grant-type:jwt-bearer).
GrantType = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
# RFC 6749 3.3 scope-token: NQCHAR, no space, '"' or '\'.
ScopeToken = Annotated[
    str, Field(min_length=1, max_length=128, pattern=r"^[\x21\x23-\x5B\x5D-\x7E]+$")
]
# An audience: usually a URL or a name; visible ASCII, no spaces.
Audience = Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[\x21-\x7E]+$")]


class ProviderKind(StrEnum):
    IDENTITY_PROVIDER = "IdentityProvider"
    CLUSTER_IDENTITY_PROVIDER = "ClusterIdentityProvider"


class OAuthClientSpec(WireModel):
    """What the provider's client may do. Each list is compared with the provider's copy
    every resync, and put back when it differs."""

    grant_types: list[GrantType] = Field(
        default_factory=lambda: list(DEFAULT_GRANT_TYPES),
        min_length=1,
        max_length=MAX_GRANT_TYPES,
        description=(
            "The OAuth2 grant types the client may use; default [client_credentials]. "
            "The provider refuses one it does not know (Registered=False, ProviderRejected)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    scope: list[ScopeToken] = Field(
        default_factory=list,
        max_length=MAX_SCOPES,
        description=(
            f"The scopes the client may request (at most {MAX_SCOPES}); each must be known to "
            "the provider (Keycloak: a client scope of the realm)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    audience: list[Audience] = Field(
        default_factory=list,
        max_length=MAX_AUDIENCES,
        description=(
            f"The audiences the client may request tokens for (at most {MAX_AUDIENCES}; "
            "Hydra's client audience)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )


class IdentityProviderRef(WireModel):
    """The provider that also holds this credential, as an OAuth2 client."""

    kind: ProviderKind = Field(
        ProviderKind.IDENTITY_PROVIDER,
        description=(
            "IdentityProvider (default: of this namespace) or ClusterIdentityProvider (whose "
            "allowedNamespaces must select this namespace)."
        ),
    )
    name: ObjectName = Field(description="Required: the provider's name.")
    client: OAuthClientSpec = Field(
        default_factory=OAuthClientSpec,
        description="Grant types, scope and audience of the client.",
    )
