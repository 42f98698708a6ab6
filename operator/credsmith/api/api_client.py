"""ApiClient: a client of an API that you serve, with a display name and roles, and
optionally a registry Secret that gives the API server verifiers instead of plaintext."""

from typing import Annotated, ClassVar, Self

from pydantic import ConfigDict, Field, model_validator

from credsmith.api.alphabets import CHECKSUM_LENGTH, DEFAULT_LENGTH
from credsmith.api.base import NO_CONTROL_CHARS, ObjectName, WireModel, rule, validations
from credsmith.api.common import (
    CLIENT_ID_IMMUTABLE,
    CredentialParameters,
    CredentialSpec,
)
from credsmith.api.enums import CredentialType, HashAlgorithm, RegistryFormat
from credsmith.api.extra_secrets import CREDENTIAL_KEYS, cel_key_list, extra_keys_rules
from credsmith.api.status import CredentialStatus

KIND = "ApiClient"
DEFAULT_HASH = HashAlgorithm.SHA256
MAX_ROLES = 64

DisplayName = Annotated[str, Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARS)]
Description = Annotated[str, Field(max_length=300, pattern=NO_CONTROL_CHARS)]
RoleId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]{1,128}$")]
RoleName = Annotated[str, Field(max_length=128, pattern=NO_CONTROL_CHARS)]

_REGISTRY_CLASH = (
    "spec.registry.name must name a different Secret than the client's own "
    "(spec.secretName, by default metadata.name)"
)
REGISTRY_NOT_OWN_SECRET = rule(
    "!has(self.spec.registry) || self.spec.registry.name != "
    "(has(self.spec.secretName) ? self.spec.secretName : self.metadata.name)",
    _REGISTRY_CLASH,
    field_path=".spec.registry.name",
)


# bcrypt reads at most 72 bytes of a password: a longer secret would be cut silently.
BCRYPT_MAX_BYTES = 72
_HTPASSWD_FITS = (
    "spec.secret: with registry.formats Htpasswd, the secret (secret.prefix, secret.length "
    f"and a checksum of {CHECKSUM_LENGTH}) must fit bcrypt's {BCRYPT_MAX_BYTES} bytes, and a "
    "clientId.value must not contain ':'"
)
_HTPASSWD = (
    "has(self.registry) && has(self.registry.formats) && 'Htpasswd' in self.registry.formats"
)
HTPASSWD_FITS = rule(
    f"!({_HTPASSWD}) || ("
    f"(has(self.secret) && has(self.secret.length) ? self.secret.length : {DEFAULT_LENGTH}) + "
    "(has(self.secret) && has(self.secret.prefix) ? size(self.secret.prefix) : 0) + "
    "(has(self.secret) && has(self.secret.checksum) && self.secret.checksum ? "
    f"{CHECKSUM_LENGTH} : 0)"
    f" <= {BCRYPT_MAX_BYTES} && "
    "!(has(self.clientId) && has(self.clientId.value) && self.clientId.value.contains(':')))",
    _HTPASSWD_FITS,
    field_path=".secret",
)


class Role(WireModel):
    """A role the client holds; the API server reads it from the registry."""

    id: RoleId = Field(
        description=(
            "Required, unique in the list: letters, digits, `.`, `_`, `:` and `-`, "
            "at most 128 characters."
        )
    )
    name: RoleName | None = Field(None, description="A name for people, at most 128 characters.")


class RegistrySpec(WireModel):
    """The registry Secret the operator maintains for the API server."""

    name: ObjectName = Field(
        description=(
            "Required: the Secret, in the same namespace, whose key clients.json lists every "
            "ApiClient naming it (id, clientId, displayName, roles and secret hashes)."
        )
    )
    hash: HashAlgorithm = Field(
        DEFAULT_HASH,
        description=(
            "How secrets are hashed in the registry: SHA256 (default; right for "
            "high-entropy random secrets), Argon2id or PBKDF2SHA256."
        ),
    )

    formats: list[RegistryFormat] | None = Field(
        None,
        min_length=1,
        max_length=2,
        description=(
            "What the registry Secret holds: ClientsJSON (by default; key clients.json, for "
            "the credsmith verifier) and/or Htpasswd (key auth: one `clientId:bcrypt` line per "
            "client, what ingress-nginx, Traefik, oauth2-proxy, nginx and Apache read; the "
            "secret must then fit bcrypt's 72 bytes). With Htpasswd, only the current secret "
            "is listed: gateways check only a user's first line, so the previous one cannot "
            "stay valid there during an overlap."
        ),
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @property
    def effective_formats(self) -> frozenset[RegistryFormat]:
        return frozenset(self.formats or (RegistryFormat.CLIENTS_JSON,))


class ApiClientParameters(CredentialParameters):
    """The settings in force for an ApiClient, defaults applied."""

    registry_hash: HashAlgorithm | None = Field(
        None, description="registry.hash in force; absent without a registry."
    )


class ApiClientSpec(CredentialSpec):
    """A client of an API that you serve. The operator issues its credential into a Secret."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            CLIENT_ID_IMMUTABLE,
            HTPASSWD_FITS,
            *extra_keys_rules(cel_key_list(CREDENTIAL_KEYS[CredentialType.CLIENT_SECRET])),
        )
    )
    root_validations: ClassVar[tuple[dict[str, str], ...]] = (
        *CredentialSpec.root_validations,
        REGISTRY_NOT_OWN_SECRET,
    )

    display_name: DisplayName = Field(
        description="Required: the client's name for people, at most 128 characters."
    )
    description: Description | None = Field(
        None, description="What the client is for, at most 300 characters."
    )
    roles: list[Role] = Field(
        default_factory=list,
        max_length=MAX_ROLES,
        description=f"The roles the client holds, keyed by id, at most {MAX_ROLES}.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"]},
    )
    registry: RegistrySpec | None = Field(
        None,
        description=(
            "Optional: a Secret the operator maintains for the API server, with verifiers "
            "(hashes) of the secrets of every ApiClient naming it, never the plaintext."
        ),
    )

    @model_validator(mode="after")
    def _role_ids_unique(self) -> Self:
        ids = [role.id for role in self.roles]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"spec.roles: duplicate id {', '.join(duplicates)}")
        return self

    @model_validator(mode="after")
    def _htpasswd_fits(self) -> Self:
        if self.registry is None or RegistryFormat.HTPASSWD not in self.registry.effective_formats:
            return self
        if not self.fits_htpasswd():
            raise ValueError(_HTPASSWD_FITS)
        return self

    def fits_htpasswd(self) -> bool:
        """Whether an htpasswd line can hold this client: a secret within bcrypt's bytes,
        a client ID without ':' (asked for by this client or another of its registry)."""
        size = (
            len(self.secret.prefix or "")
            + self.secret.length
            + (CHECKSUM_LENGTH if self.secret.checksum else 0)
        )
        return size <= BCRYPT_MAX_BYTES and ":" not in (self.client_id.value or "")

    def object_errors(self, metadata_name: str) -> list[str]:
        if self.registry and self.registry.name == self.effective_secret_name(metadata_name):
            return [_REGISTRY_CLASH]
        return []

    def parameters(self) -> ApiClientParameters:
        """The settings in force, for status.parameters."""
        return self._parameters(
            ApiClientParameters, registry_hash=self.registry.hash if self.registry else None
        )


class ApiClientStatus(CredentialStatus):
    """The observed state of an ApiClient."""

    id: Annotated[str, Field(max_length=36, json_schema_extra={"format": "uuid"})] | None = Field(
        None, description="The client's unique ID (a UUID), as listed in the registry."
    )
    parameters: ApiClientParameters | None = Field(
        None, description="The settings in force, defaults applied."
    )
    role_count: Annotated[int, Field(ge=0, le=MAX_ROLES)] | None = Field(
        None, description="How many roles the client has (shown by kubectl get)."
    )
