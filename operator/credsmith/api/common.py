"""The spec blocks both kinds share: client ID, secret, rotation, and the Secret written.

Defaults live here, in code, and never in the CRD schema: a schema default would be
written into the live object's spec, and GitOps tools would report drift from Git.
The effective values are reported in `status.parameters` instead.

Each CEL rule sits beside the model it governs; the pydantic validators check the same
things for objects that reached the operator without passing the current schema.
"""

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Self, TypeVar

from pydantic import ConfigDict, Field, model_validator

from credsmith import GROUP
from credsmith.api.alphabets import (
    DEFAULT_LENGTH,
    MAX_LENGTH,
    MIN_ENTROPY_BITS,
    MIN_LENGTH,
    min_length,
)
from credsmith.api.base import (
    LABEL_VALUE,
    QUALIFIED_NAME,
    ObjectName,
    WireModel,
    rule,
    validations,
)
from credsmith.api.consumers import MAX_CONSUMERS, Consumer
from credsmith.api.durations import GO_DURATION_PATTERN, parse_go_duration
from credsmith.api.enums import ClientIdFormat, CredentialType, DeletionPolicy, SecretAlphabet
from credsmith.api.extra_secrets import (
    CREDENTIAL_KEYS,
    MAX_EXTRA_SECRETS,
    ExtraSecret,
    key_collisions,
)
from credsmith.api.provider_ref import IdentityProviderRef

# Setting this annotation to a new value (any string) rotates the credential once.
ROTATE_ANNOTATION = f"{GROUP}/rotate"

DEFAULT_CLIENT_ID_FORMAT = ClientIdFormat.UUID
DEFAULT_ALPHABET = SecretAlphabet.ALPHANUMERIC
DEFAULT_DELETION_POLICY = DeletionPolicy.DELETE
# A floor on how often one object can make the operator write: a tenant must not drive
# writes per second (rotations, consumer rollouts, registry rebuilds).
MIN_ROTATION_PERIOD = "1m"

ClientIdPrefix = Annotated[
    str, Field(min_length=1, max_length=16, pattern=r"^[a-z][a-z0-9_-]{0,15}$")
]
# Visible ASCII: UUIDs, tokens, e-mail-like and URL-like IDs; no spaces or control characters.
ClientIdValue = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[!-~]+$")]
SecretLength = Annotated[int, Field(ge=MIN_LENGTH, le=MAX_LENGTH)]
SecretPrefix = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")]
GoDuration = Annotated[str, Field(min_length=1, max_length=32, pattern=GO_DURATION_PATTERN)]
LabelKey = Annotated[str, Field(min_length=1, max_length=317, pattern=QUALIFIED_NAME)]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
AnnotationValue = Annotated[str, Field(max_length=8192)]
DataKey = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
Template = Annotated[str, Field(max_length=8192)]

_VALUE_IS_VERBATIM = (
    "clientId.value is used verbatim: clientId.format and clientId.prefix apply only "
    "to generated client IDs, so they cannot be set with it"
)


class ClientIdSpec(WireModel):
    """How the client ID is made. Immutable: a client ID never changes once issued."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule("!has(self.value) || (!has(self.format) && !has(self.prefix))", _VALUE_IS_VERBATIM)
        )
    )

    format: ClientIdFormat = Field(
        DEFAULT_CLIENT_ID_FORMAT,
        description=(
            "How to generate the client ID: UUID (a random version-4 UUID, the default) "
            "or Token (a random base62 string)."
        ),
    )
    prefix: ClientIdPrefix | None = Field(
        None,
        description=(
            "Prepended verbatim to a generated client ID, e.g. `svc_`. "
            "Lowercase, starts with a letter, at most 16 characters."
        ),
    )
    value: ClientIdValue | None = Field(
        None,
        description=(
            "Bring your own client ID instead of generating one; it stays the same across "
            "delete and recreate. Visible ASCII characters, at most 253."
        ),
    )

    @model_validator(mode="after")
    def _value_is_verbatim(self) -> Self:
        if self.value is not None and (
            self.prefix is not None or "format" in self.model_fields_set
        ):
            raise ValueError(_VALUE_IS_VERBATIM)
        return self


def _entropy_rule() -> dict[str, str]:
    """The 128-bit entropy rule, with the minimum lengths taken from issuing.alphabets."""

    def table(quote: str) -> str:
        entries = (f"'{a.value}': {quote}{min_length(a)}{quote}" for a in SecretAlphabet)
        return "{" + ", ".join(entries) + "}"

    # The message's table holds strings: string(int) has no size bound, so the
    # apiserver's cost estimate for the message would exceed its budget.
    numbers, strings = table(""), table("'")
    alphabet = f"(has(self.alphabet) ? self.alphabet : '{DEFAULT_ALPHABET.value}')"
    length = f"(has(self.length) ? self.length : {DEFAULT_LENGTH})"
    minimums = ", ".join(f"{a.value} {min_length(a)}" for a in SecretAlphabet)
    return rule(
        f"{length} >= {numbers}[{alphabet}]",
        f"secret.length is too short for secret.alphabet to give {MIN_ENTROPY_BITS} bits "
        f"of entropy (minimum lengths: {minimums})",
        field_path=".length",
        message_expression=(
            f"'secret.length must be at least ' + {strings}[{alphabet}] + "
            f"' for alphabet ' + {alphabet} + ' to give {MIN_ENTROPY_BITS} bits of entropy'"
        ),
    )


class SecretSpec(WireModel):
    """The random secret: its length, alphabet and decoration."""

    model_config = ConfigDict(json_schema_extra=validations(_entropy_rule()))

    length: SecretLength = Field(
        DEFAULT_LENGTH,
        description=(
            f"Characters of random material, {MIN_LENGTH}..{MAX_LENGTH}; default "
            f"{DEFAULT_LENGTH}. Must give at least {MIN_ENTROPY_BITS} bits of entropy "
            "with the alphabet (e.g. at least 32 for Hex). The prefix and checksum come on top."
        ),
    )
    alphabet: SecretAlphabet = Field(
        DEFAULT_ALPHABET,
        description=(
            "The characters the secret is drawn from: Alphanumeric (default), URLSafe, "
            "Hex, Base64 or Printable (every visible ASCII character)."
        ),
    )
    prefix: SecretPrefix | None = Field(
        None,
        description=(
            "Prepended verbatim to the secret, API-key style, e.g. `sk_live_`. "
            "Letters, digits, `_`, `.` and `-`, at most 32 characters."
        ),
    )
    checksum: bool = Field(
        False,
        description=(
            "Append a CRC32 checksum so that secret scanners can recognise the token "
            "(like GitHub tokens). Default false."
        ),
    )

    @model_validator(mode="after")
    def _has_enough_entropy(self) -> Self:
        needed = min_length(self.alphabet)
        if self.length < needed:
            raise ValueError(
                f"secret.length must be at least {needed} for alphabet {self.alphabet.value} "
                f"to give {MIN_ENTROPY_BITS} bits of entropy"
            )
        return self


class RotationSpec(WireModel):
    """When the secret is replaced, and how long the previous one stays valid."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                f"!has(self.period) || duration(self.period) >= duration('{MIN_ROTATION_PERIOD}')",
                f"rotation.period must be at least {MIN_ROTATION_PERIOD}",
                field_path=".period",
            ),
            rule(
                "!has(self.period) || !has(self.overlap) || "
                "duration(self.overlap) < duration(self.period)",
                "rotation.overlap must be shorter than rotation.period",
                field_path=".overlap",
            ),
        )
    )

    period: GoDuration | None = Field(
        None,
        description=(
            "Rotate automatically this long after the last issue or rotation, as a Go "
            "duration, e.g. `720h` (30 days) or `1h30m`. Unset: rotate only on request "
            f"(annotation `{ROTATE_ANNOTATION}`) or when generation settings change."
        ),
    )
    overlap: GoDuration | None = Field(
        None,
        description=(
            "After a rotation, keep the previous value valid (beside the new one, with the "
            "suffix `_previous`) this long, as a Go duration, e.g. `24h`. Shorter than "
            "period. Unset: the previous value is dropped at once."
        ),
    )

    @property
    def period_duration(self) -> timedelta | None:
        return None if self.period is None else parse_go_duration(self.period)

    @property
    def overlap_duration(self) -> timedelta | None:
        return None if self.overlap is None else parse_go_duration(self.overlap)

    @model_validator(mode="after")
    def _period_and_overlap(self) -> Self:
        period, overlap = self.period_duration, self.overlap_duration
        if period is not None and period < parse_go_duration(MIN_ROTATION_PERIOD):
            raise ValueError(f"rotation.period must be at least {MIN_ROTATION_PERIOD}")
        if period is not None and overlap is not None and overlap >= period:
            raise ValueError("rotation.overlap must be shorter than rotation.period")
        return self


class SecretTemplate(WireModel):
    """Extra metadata and keys for the Secret the operator writes."""

    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Labels copied onto the Secret (at most 64).",
    )
    annotations: dict[LabelKey, AnnotationValue] = Field(
        default_factory=dict,
        max_length=64,
        description="Annotations copied onto the Secret (at most 64).",
    )
    data: dict[DataKey, Template] = Field(
        default_factory=dict,
        max_length=64,
        description=(
            "Extra Secret keys rendered from templates (at most 64, each at most 8192 "
            "characters), e.g. `url: https://{{ clientId }}:{{ clientSecret }}@api`. "
            "Templates run sandboxed; one that fails to render sets Ready=False with reason "
            "InvalidTemplate and leaves the Secret as it was."
        ),
    )


class CredentialParameters(WireModel):
    """The generation settings in force, defaults applied: those the current credential
    was issued with."""

    client_id_format: ClientIdFormat | None = Field(
        None, description="clientId.format in force; absent when clientId.value is given."
    )
    client_id_prefix: ClientIdPrefix | None = Field(None, description="clientId.prefix.")
    secret_length: SecretLength = Field(description="secret.length in force.")
    secret_alphabet: SecretAlphabet = Field(description="secret.alphabet in force.")
    secret_prefix: SecretPrefix | None = Field(None, description="secret.prefix.")
    secret_checksum: bool = Field(description="secret.checksum in force.")
    rotation_period: GoDuration | None = Field(None, description="rotation.period.")
    rotation_overlap: GoDuration | None = Field(None, description="rotation.overlap.")
    deletion_policy: DeletionPolicy = Field(description="deletionPolicy in force.")


P = TypeVar("P", bound=CredentialParameters)


def _effective(side: str, block: str, field: str, default: str) -> str:
    """CEL for a field of a spec block as the operator sees it: its default when unset."""
    return (
        f"(has({side}.{block}) && has({side}.{block}.{field}) ? {side}.{block}.{field} : {default})"
    )


# Transition rule (spec level: the block itself may be added or removed, and the rule
# must still see both sides). Compares effective values, so writing a default out
# explicitly is no change.
CLIENT_ID_IMMUTABLE = rule(
    " && ".join(
        f"{_effective('self', 'clientId', f, d)} == {_effective('oldSelf', 'clientId', f, d)}"
        for f, d in (
            ("format", f"'{DEFAULT_CLIENT_ID_FORMAT.value}'"),
            ("prefix", "''"),
            ("value", "''"),
        )
    ),
    "spec.clientId is immutable: its format, prefix and value cannot change once set "
    "(create a new resource for a new client ID)",
    field_path=".clientId",
)

# Root level, because the default is metadata.name, which only the root can see.
SECRET_NAME_IMMUTABLE = rule(
    "(has(self.spec.secretName) ? self.spec.secretName : self.metadata.name) == "
    "(has(oldSelf.spec.secretName) ? oldSelf.spec.secretName : oldSelf.metadata.name)",
    "spec.secretName is immutable: the Secret cannot be renamed once issued "
    "(unset means metadata.name)",
    field_path=".spec.secretName",
)


class CredentialSpec(WireModel):
    """The spec fields both kinds share."""

    # CEL rules for the resource root (they need metadata.name); crd.py places them.
    root_validations: ClassVar[tuple[dict[str, str], ...]] = (SECRET_NAME_IMMUTABLE,)

    client_id: ClientIdSpec = Field(
        default_factory=ClientIdSpec,
        description="How the client ID is made. Immutable once set.",
    )
    secret: SecretSpec = Field(
        default_factory=SecretSpec,
        description="The random secret. Changing it rotates the credential.",
    )
    rotation: RotationSpec = Field(
        default_factory=RotationSpec,
        description=(
            "Scheduled rotation, and the overlap during which the previous value stays valid."
        ),
    )
    secret_name: ObjectName | None = Field(
        None,
        description=(
            "The Secret to write, in the same namespace; default metadata.name. Immutable. "
            "If a Secret of that name exists and is not owned by this resource, nothing is "
            "touched and Ready=False with reason SecretConflict."
        ),
    )
    secret_template: SecretTemplate = Field(
        default_factory=SecretTemplate,
        description="Labels, annotations and extra templated keys for the Secret.",
    )
    extra_secrets: list[ExtraSecret] = Field(
        default_factory=list,
        max_length=MAX_EXTRA_SECRETS,
        description=(
            f"Up to {MAX_EXTRA_SECRETS} more random values, each under its own Secret key, "
            "generated beside the credential and rotated with it (`<key>_previous` during an "
            "overlap). Adding a key issues just that value; removing one removes it; changing "
            "one's settings regenerates just it. Templates reach them as `extra.<key>` or "
            "`extra['<key>']`."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"]},
    )
    consumers: list[Consumer] = Field(
        default_factory=list,
        max_length=MAX_CONSUMERS,
        description=(
            f"Up to {MAX_CONSUMERS} workloads that read the credential, each "
            "`{kind, name}` or `{kind, selector}` in this namespace. On every new value "
            "(rotation or re-issue), once the Secret holds it, each is rolled out once (a "
            "pod-template annotation, as `kubectl rollout restart` does), and the previous value "
            "stays valid past previousExpiresAt while one has not finished, at most until twice "
            "rotation.overlap after the rotation. Needs the operator's permission to get, list "
            "and patch these workloads (Helm value consumers.enabled)."
        ),
    )
    deletion_policy: DeletionPolicy = Field(
        DEFAULT_DELETION_POLICY,
        description=(
            "What happens to the Secret when this resource is deleted: Delete (default: "
            "the Secret is owned and garbage-collected) or Orphan (no ownerReference; the "
            "Secret survives)."
        ),
    )
    identity_provider: IdentityProviderRef | None = Field(
        None,
        description=(
            "Also register the credential as an OAuth2 client of this identity provider "
            "(ClientSecret and KeyPair only): its client ID, its secret or public key "
            "(private_key_jwt), grant types, scope and audience. The provider accepts a new "
            "value before the Secret holds it; drift in the provider is put back every resync; "
            "the client is deleted with the credential. Condition Registered says how it went."
        ),
    )

    @property
    def own_type(self) -> CredentialType:
        """The credential type, whose keys no extra secret may take."""
        return CredentialType.CLIENT_SECRET

    @model_validator(mode="after")
    def _extra_keys_are_free(self) -> Self:
        problems = key_collisions(
            self.extra_secrets, CREDENTIAL_KEYS[self.own_type], self.secret_template.data
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def effective_secret_name(self, metadata_name: str) -> str:
        """The name of the Secret to write: secretName, or the resource's own name."""
        return self.secret_name or metadata_name

    def object_errors(self, metadata_name: str) -> list[str]:
        """Problems only visible with the resource's name (the root-level CEL rules)."""
        del metadata_name
        return []

    def _parameters(self, cls: type[P], **extra: Any) -> P:
        """The effective settings of the shared blocks, plus a kind's own."""
        generated = self.client_id.value is None
        return cls(
            client_id_format=self.client_id.format if generated else None,
            client_id_prefix=self.client_id.prefix,
            secret_length=self.secret.length,
            secret_alphabet=self.secret.alphabet,
            secret_prefix=self.secret.prefix,
            secret_checksum=self.secret.checksum,
            rotation_period=self.rotation.period,
            rotation_overlap=self.rotation.overlap,
            deletion_policy=self.deletion_policy,
            **extra,
        )
