"""ServiceAccountCredential: a credential for a machine identity (service user,
machine user, service account)."""

from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from credsmith.api.base import NO_CONTROL_CHARS, ObjectName, WireModel, rule, validations
from credsmith.api.common import CLIENT_ID_IMMUTABLE, CredentialParameters, CredentialSpec
from credsmith.api.enums import CredentialType, KeyAlgorithm
from credsmith.api.extra_secrets import CREDENTIAL_KEYS, cel_key_list, extra_keys_rules
from credsmith.api.status import CredentialStatus

KIND = "ServiceAccountCredential"
DEFAULT_TYPE = CredentialType.CLIENT_SECRET
DEFAULT_KEY_ALGORITHM = KeyAlgorithm.ED25519

ServiceAccountName = Annotated[str, Field(min_length=1, max_length=253, pattern=NO_CONTROL_CHARS)]
Title = Annotated[str, Field(max_length=128, pattern=NO_CONTROL_CHARS)]
Description = Annotated[str, Field(min_length=1, max_length=300, pattern=NO_CONTROL_CHARS)]
# RFC 7638 JWK thumbprints are 43 base64url characters; room for other key IDs.
KeyId = Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z0-9_=.:-]+$")]

TYPE_IMMUTABLE = rule(
    f"(has(self.type) ? self.type : '{DEFAULT_TYPE.value}') == "
    f"(has(oldSelf.type) ? oldSelf.type : '{DEFAULT_TYPE.value}')",
    f"spec.type is immutable (unset means {DEFAULT_TYPE.value})",
    field_path=".type",
)
_KEY_PAIR_ONLY = "spec.keyPair is allowed only when spec.type is KeyPair"
KEY_PAIR_ONLY_FOR_KEY_PAIR = rule(
    "!has(self.keyPair) || (has(self.type) && self.type == 'KeyPair')",
    _KEY_PAIR_ONLY,
    field_path=".keyPair",
)

# The types an identity provider can hold: a client secret, or a public key in the client's
# JWKS (private_key_jwt). An API key or a basic-auth password is no OAuth2 client credential.
PROVIDER_TYPES = (CredentialType.CLIENT_SECRET, CredentialType.KEY_PAIR)
_PROVIDER_TYPES_ONLY = "spec.identityProvider is allowed only when spec.type is " + " or ".join(
    t.value for t in PROVIDER_TYPES
)
IDENTITY_PROVIDER_ONLY_FOR_CLIENTS = rule(
    f"!has(self.identityProvider) || (has(self.type) ? self.type : '{DEFAULT_TYPE.value}') in "
    f"[{', '.join(repr(t.value) for t in PROVIDER_TYPES)}]",
    _PROVIDER_TYPES_ONLY,
    field_path=".identityProvider",
)


class JwksSpec(WireModel):
    """Where to publish the public key for verifiers."""

    name: ObjectName = Field(
        description=(
            "Required: a ConfigMap in the same namespace, maintained by the operator, whose "
            "key jwks.json (an RFC 7517 JWK Set) holds the public key of every KeyPair "
            "credential naming it (kid = key_id, use sig, alg), and the previous key during "
            "a rotation overlap."
        )
    )


class KeyPairSpec(WireModel):
    """The asymmetric key pair issued for type KeyPair."""

    algorithm: KeyAlgorithm = Field(
        DEFAULT_KEY_ALGORITHM,
        description=(
            "Ed25519 (default), ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072 or RSA-4096. "
            "Changing it rotates the key pair."
        ),
    )
    jwks: JwksSpec | None = Field(
        None, description="Optional: publish the public key in a JWK Set ConfigMap."
    )


class ServiceAccountCredentialParameters(CredentialParameters):
    """The settings in force for a ServiceAccountCredential, defaults applied."""

    type: CredentialType = Field(description="spec.type in force.")
    key_algorithm: KeyAlgorithm | None = Field(
        None, description="keyPair.algorithm in force; only for type KeyPair."
    )


class ServiceAccountCredentialSpec(CredentialSpec):
    """A credential for a machine identity. The operator issues it into a Secret."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            CLIENT_ID_IMMUTABLE,
            TYPE_IMMUTABLE,
            KEY_PAIR_ONLY_FOR_KEY_PAIR,
            IDENTITY_PROVIDER_ONLY_FOR_CLIENTS,
            *extra_keys_rules(
                "{"
                + ", ".join(f"'{t.value}': {cel_key_list(k)}" for t, k in CREDENTIAL_KEYS.items())
                + f"}}[has(self.type) ? self.type : '{DEFAULT_TYPE.value}']"
            ),
        )
    )

    service_account: ServiceAccountName = Field(
        description=(
            "Required: the identity this credential belongs to, e.g. the service user's "
            "ID or name. At most 253 characters, no control characters."
        )
    )
    title: Title | None = Field(
        None, description="A short title for people, at most 128 characters."
    )
    description: Description | None = Field(
        None, description="What the credential is for, 1..300 characters."
    )
    type: CredentialType = Field(
        DEFAULT_TYPE,
        description=(
            "What to issue; immutable. ClientSecret (default; keys client_id, "
            "client_secret), APIKey (key_id, api_key), KeyPair (client_id, key_id, "
            "private_key.pem, public_key.pem, public_jwk.json) or BasicAuth (a Secret of "
            "type kubernetes.io/basic-auth: username, password)."
        ),
    )
    key_pair: KeyPairSpec | None = Field(
        None, description="For type KeyPair only: the key algorithm."
    )

    @model_validator(mode="after")
    def _key_pair_only_for_key_pair(self) -> Self:
        if self.key_pair is not None and self.type != CredentialType.KEY_PAIR:
            raise ValueError(_KEY_PAIR_ONLY)
        return self

    @model_validator(mode="after")
    def _identity_provider_only_for_clients(self) -> Self:
        if self.identity_provider is not None and self.type not in PROVIDER_TYPES:
            raise ValueError(_PROVIDER_TYPES_ONLY)
        return self

    @property
    def own_type(self) -> CredentialType:
        return self.type

    @property
    def key_algorithm(self) -> KeyAlgorithm | None:
        """The key algorithm in force for type KeyPair; None for other types."""
        if self.type != CredentialType.KEY_PAIR:
            return None
        return (self.key_pair or KeyPairSpec()).algorithm

    def parameters(self) -> ServiceAccountCredentialParameters:
        """The settings in force, for status.parameters."""
        return self._parameters(
            ServiceAccountCredentialParameters, type=self.type, key_algorithm=self.key_algorithm
        )


class ServiceAccountCredentialStatus(CredentialStatus):
    """The observed state of a ServiceAccountCredential."""

    key_id: KeyId | None = Field(
        None, description="For type KeyPair: the RFC 7638 JWK thumbprint of the public key."
    )
    parameters: ServiceAccountCredentialParameters | None = Field(
        None, description="The settings in force, defaults applied."
    )
