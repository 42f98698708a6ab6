"""`spec.extraSecrets` (seed 003's secrets map): named random values generated beside the
credential in the same Secret, rotated with it, never written in a manifest.

Keys must be valid Secret keys and must not collide, now or during a rotation overlap, with
the credential's own keys, the `secretTemplate.data` keys or each other's `_previous` forms.
The CEL rules check that at apply time; `key_collisions` checks the same in code, for objects
that reached the operator without the current schema.
"""

from collections.abc import Iterable, Mapping
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from credsmith.api.alphabets import (
    DEFAULT_LENGTH,
    MAX_LENGTH,
    MIN_ENTROPY_BITS,
    MIN_LENGTH,
    min_length,
)
from credsmith.api.base import WireModel, rule, validations
from credsmith.api.enums import CredentialType, SecretAlphabet

MAX_EXTRA_SECRETS = 16

# The Secret keys each credential type writes, with their `_previous` forms (reconcile/
# layout.py writes them; a unit test keeps the two in step).
CREDENTIAL_KEYS: Mapping[CredentialType, tuple[str, ...]] = {
    CredentialType.CLIENT_SECRET: ("client_id", "client_secret", "client_secret_previous"),
    CredentialType.API_KEY: ("key_id", "api_key", "api_key_previous"),
    CredentialType.BASIC_AUTH: ("username", "password", "password_previous"),
    CredentialType.KEY_PAIR: (
        "client_id",
        "private_key.pem",
        "private_key_previous.pem",
        "key_id",
        "key_id_previous",
        "public_key.pem",
        "public_key_previous.pem",
        "public_jwk.json",
        "public_jwk_previous.json",
    ),
}

ExtraSecretKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[-._a-zA-Z0-9]+$")]


def previous_key(key: str) -> str:
    """The key of a value's previous form during an overlap: `_previous` before the first
    dot, so that a mounted file keeps its extension (`tls.key` -> `tls_previous.key`)."""
    stem, dot, extension = key.partition(".")
    return f"{stem}_previous{dot}{extension}"


def _entropy_rule() -> dict[str, str]:
    table = "{" + ", ".join(f"'{a.value}': {min_length(a)}" for a in SecretAlphabet) + "}"
    minimums = ", ".join(f"{a.value} {min_length(a)}" for a in SecretAlphabet)
    return rule(
        f"(has(self.length) ? self.length : {DEFAULT_LENGTH}) >= "
        f"{table}[has(self.alphabet) ? self.alphabet : '{SecretAlphabet.ALPHANUMERIC.value}']",
        f"extraSecrets.length is too short for its alphabet to give {MIN_ENTROPY_BITS} bits "
        f"of entropy (minimum lengths: {minimums})",
        field_path=".length",
    )


def _cel_previous(key: str) -> str:
    return (
        f"({key}.indexOf('.') < 0 ? {key} + '_previous' : "
        f"{key}.substring(0, {key}.indexOf('.')) + '_previous' + "
        f"{key}.substring({key}.indexOf('.')))"
    )


class ExtraSecret(WireModel):
    """One extra random value, generated and rotated with the credential."""

    model_config = ConfigDict(json_schema_extra=validations(_entropy_rule()))

    key: ExtraSecretKey = Field(
        description=(
            "The Secret key to hold the value: letters, digits, `-`, `_` and `.`. Must not "
            "be one of the credential's own keys, a secretTemplate.data key, or the "
            "`_previous` form of another extra key."
        )
    )
    length: Annotated[int, Field(ge=MIN_LENGTH, le=MAX_LENGTH)] = Field(
        DEFAULT_LENGTH,
        description=f"Characters of random material, {MIN_LENGTH}..{MAX_LENGTH}; default "
        f"{DEFAULT_LENGTH}; at least 128 bits of entropy with the alphabet.",
    )
    alphabet: SecretAlphabet = Field(
        SecretAlphabet.ALPHANUMERIC,
        description="Alphanumeric (default), URLSafe, Hex, Base64 or Printable.",
    )
    prefix: (
        Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")] | None
    ) = Field(None, description="Prepended verbatim to the value, e.g. `whsec_`.")

    @model_validator(mode="after")
    def _has_enough_entropy(self) -> Self:
        if self.length < min_length(self.alphabet):
            raise ValueError(
                f"extraSecrets[{self.key}].length must be at least {min_length(self.alphabet)} "
                f"for alphabet {self.alphabet.value}"
            )
        return self


def extra_keys_rules(credential_keys: str) -> tuple[dict[str, str], ...]:
    """CEL rules for a spec with `extraSecrets`; `credential_keys` is a CEL expression of the
    list of the credential's own keys (it may depend on spec.type)."""
    extras = "!has(self.extraSecrets) || "
    return (
        rule(
            extras + f"self.extraSecrets.all(e, !(e.key in {credential_keys}))",
            "spec.extraSecrets: a key is one of the credential's own Secret keys",
            field_path=".extraSecrets",
        ),
        rule(
            extras + "!has(self.secretTemplate) || !has(self.secretTemplate.data) || "
            "self.extraSecrets.all(e, !(e.key in self.secretTemplate.data) && "
            f"!({_cel_previous('e.key')} in self.secretTemplate.data))",
            "spec.extraSecrets: a key (or its _previous form) is also a secretTemplate.data key",
            field_path=".extraSecrets",
        ),
        rule(
            extras + "self.extraSecrets.all(e, self.extraSecrets.all(f, "
            f"{_cel_previous('e.key')} != f.key))",
            "spec.extraSecrets: a key is the _previous form of another extra key",
            field_path=".extraSecrets",
        ),
    )


def cel_key_list(keys: Iterable[str]) -> str:
    return "[" + ", ".join(f"'{k}'" for k in keys) + "]"


def key_collisions(
    extras: Iterable[ExtraSecret], credential_keys: Iterable[str], template_keys: Iterable[str]
) -> list[str]:
    """What the CEL rules refuse, as messages naming the field."""
    keys = [extra.key for extra in extras]
    own, templated = set(credential_keys), set(template_keys)
    problems = []
    for key in keys:
        if key in own:
            problems.append(f"spec.extraSecrets: {key} is one of the credential's own keys")
        if key in templated or previous_key(key) in templated:
            problems.append(f"spec.extraSecrets: {key} collides with a secretTemplate.data key")
        if previous_key(key) in keys:
            problems.append(f"spec.extraSecrets: {previous_key(key)} is {key}'s _previous form")
    return problems
