"""IdentityProvider (namespaced) and ClusterIdentityProvider (cluster-scoped): an Ory Hydra
or a Keycloak realm where credentials that name it are also registered as OAuth2 clients.

Only credentials of its own namespace may name an IdentityProvider; a ClusterIdentityProvider
serves the namespaces its allowedNamespaces selects (absent: none; `{}`: every one, as a
Kubernetes LabelSelector means it). The operator writes only their status.
"""

import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from credsmith.api.base import ObjectName, WireModel, cel_string, rule, validations
from credsmith.api.common import GoDuration
from credsmith.api.consumers import (
    MAX_PREFIX,
    PREFIX_LENGTH,
    SelectorKey,
    SelectorRequirement,
    SelectorValue,
)
from credsmith.api.durations import parse_go_duration
from credsmith.api.status import Condition, Generation

IDENTITY_PROVIDER = "IdentityProvider"
CLUSTER_IDENTITY_PROVIDER = "ClusterIdentityProvider"
DEFAULT_RESYNC = "10m"
# A floor on how often the operator reads every client of a provider.
MIN_RESYNC = "1m"

# An http(s) URL with a host and no user information (credentials belong in
# credentialsSecretRef, never in a URL that status and logs may show), no query or fragment.
URL_PATTERN = r"^https?://[^/?#@\s]+(/[^?#\s]*)?$"
_URL_SHAPE = "must be an http or https URL with a host, no user information, query or fragment"
_URL_RE = re.compile(URL_PATTERN)


def _url_rule(name: str) -> dict[str, str]:
    return rule(f"self.matches({cel_string(URL_PATTERN)})", f"{name} {_URL_SHAPE}")


def _check_url(value: str) -> str:
    if not _URL_RE.fullmatch(value):
        raise ValueError(_URL_SHAPE)
    return value


def _url_field(name: str) -> Any:
    return Field(min_length=1, max_length=2048, json_schema_extra=validations(_url_rule(name)))


AdminURL = Annotated[str, _url_field("hydra.adminURL"), AfterValidator(_check_url)]
PublicURL = Annotated[str, _url_field("hydra.publicURL"), AfterValidator(_check_url)]
KeycloakURL = Annotated[str, _url_field("keycloak.url"), AfterValidator(_check_url)]
# A Keycloak realm name: what its admin API takes in a path segment.
RealmName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.-]+$")]
SecretKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]


class ProviderType(StrEnum):
    """Which provider a resource names (status.type, the Type column)."""

    HYDRA = "Hydra"
    KEYCLOAK = "Keycloak"


class HydraSpec(WireModel):
    """An Ory Hydra (v2): its admin API holds the OAuth2 clients."""

    admin_url: AdminURL = Field(
        alias="adminURL",
        description="Required: Hydra's admin API, e.g. http://hydra-admin.auth:4445.",
    )
    public_url: PublicURL | None = Field(
        None,
        alias="publicURL",
        description=(
            "Hydra's public API, e.g. https://hydra.auth:4444: with it, every resync also "
            "checks the client secret by a token request (Hydra never shows a secret back)."
        ),
    )


class CredentialsSecretRef(WireModel):
    """A Secret holding the admin client's credentials."""

    name: ObjectName = Field(
        description=(
            "Required: the Secret, in the provider's namespace (the operator's namespace for "
            "a ClusterIdentityProvider)."
        )
    )
    client_id_key: SecretKey = Field(description="Required: the key holding the client ID.")
    client_secret_key: SecretKey = Field(description="Required: the key holding the client secret.")


class KeycloakSpec(WireModel):
    """A Keycloak realm, through its admin REST API."""

    url: KeycloakURL = Field(
        description="Required: Keycloak's base URL, e.g. https://keycloak.auth:8443."
    )
    realm: RealmName = Field(description="Required: the realm the clients live in.")
    credentials_secret_ref: CredentialsSecretRef = Field(
        description=(
            "Required: a confidential client of the realm with realm-management's "
            "manage-clients role (the admin login); never logged."
        )
    )


_ONE_PROVIDER = "exactly one of spec.hydra and spec.keycloak must be set"
_RESYNC_FLOOR = f"spec.resync must be at least {MIN_RESYNC}"


class IdentityProviderSpec(WireModel):
    """Where credentials naming this provider are registered, and how often checked."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule("has(self.hydra) != has(self.keycloak)", _ONE_PROVIDER),
            rule(
                f"!has(self.resync) || duration(self.resync) >= duration('{MIN_RESYNC}')",
                _RESYNC_FLOOR,
                field_path=".resync",
            ),
        )
    )

    hydra: HydraSpec | None = Field(None, description="An Ory Hydra (v2) admin API.")
    keycloak: KeycloakSpec | None = Field(None, description="A Keycloak realm.")
    resync: GoDuration = Field(
        DEFAULT_RESYNC,
        description=(
            f"How often the provider's copy of each client is compared with ours and put back "
            f"where it drifted, and clients of deleted credentials removed, as a Go duration; "
            f"default {DEFAULT_RESYNC}, at least {MIN_RESYNC}."
        ),
    )

    @model_validator(mode="after")
    def _one_provider(self) -> Self:
        if (self.hydra is None) == (self.keycloak is None):
            raise ValueError(_ONE_PROVIDER)
        if parse_go_duration(self.resync) < parse_go_duration(MIN_RESYNC):
            raise ValueError(_RESYNC_FLOOR)
        return self

    @property
    def type(self) -> ProviderType:
        return ProviderType.HYDRA if self.hydra is not None else ProviderType.KEYCLOAK

    @property
    def urls(self) -> tuple[str, ...]:
        """Every URL the operator would call (for the allow-list)."""
        if self.hydra is not None:
            return tuple(u for u in (self.hydra.admin_url, self.hydra.public_url) if u)
        assert self.keycloak is not None
        return (self.keycloak.url,)


class NamespaceSelector(WireModel):
    """A metav1.LabelSelector of namespaces. Unlike a consumer's, it may be empty: `{}`
    selects every namespace, as Kubernetes means it."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                f"!has(self.matchLabels) || self.matchLabels.all(k, k.matches('{PREFIX_LENGTH}'))",
                f"allowedNamespaces.matchLabels: every key's prefix (before '/') must be a DNS "
                f"subdomain of at most {MAX_PREFIX} characters",
                field_path=".matchLabels",
            ),
        )
    )

    match_labels: dict[SelectorKey, SelectorValue] = Field(
        default_factory=dict, max_length=16, description="Labels the namespace must have."
    )
    match_expressions: list[SelectorRequirement] = Field(
        default_factory=list,
        max_length=16,
        description="Requirements on the namespace's labels.",
    )


class ClusterIdentityProviderSpec(IdentityProviderSpec):
    """A provider for the namespaces allowedNamespaces selects."""

    allowed_namespaces: NamespaceSelector | None = Field(
        None,
        description=(
            "The namespaces whose credentials may name this provider, by their labels (a "
            "LabelSelector). Absent: no namespace; `{}`: every namespace. Credentials of "
            "another namespace are Registered=False with reason ProviderNotAllowed."
        ),
    )


class IdentityProviderStatus(WireModel):
    """Whether the provider is reached and authenticated, and how many clients it holds."""

    observed_generation: Generation | None = Field(
        None, description="The metadata.generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=8,
        description=(
            "Ready (reached and authenticated, or why not: ProviderUnreachable, "
            "ProviderTLSError, ProviderLoginRefused, ProviderForbidden, URLNotAllowed...)."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    type: ProviderType | None = Field(None, description="Hydra or Keycloak.")
    clients: Annotated[int, Field(ge=0)] | None = Field(
        None, description="How many clients the provider holds for credentials (our marker)."
    )
