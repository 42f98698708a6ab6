"""What a credential value was generated with, as explicit data.

Recorded on the Secret at every issue and rotation, and compared with the spec on every
pass: a difference means the value no longer has the shape the spec asks for, so it rotates.
Stored field by field (not as a digest), so that a field added in a later version with a
default reads as that default and rotates nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from credsmith.api.alphabets import CHECKSUM_LENGTH, MAX_LENGTH, MIN_LENGTH, min_length
from credsmith.api.common import CredentialSpec
from credsmith.api.enums import CredentialType, KeyAlgorithm, SecretAlphabet
from credsmith.issuing.fingerprint import fingerprint

# The longest private key PEM (PKCS#8) each algorithm gives, rounded up: the length a
# template's outcome is decided with, so that it never depends on the key itself.
MAX_PEM_CHARS: dict[KeyAlgorithm, int] = {
    KeyAlgorithm.ED25519: 128,
    KeyAlgorithm.ECDSA_P256: 256,
    KeyAlgorithm.ECDSA_P384: 320,
    KeyAlgorithm.RSA_2048: 1768,
    KeyAlgorithm.RSA_3072: 2560,
    KeyAlgorithm.RSA_4096: 3328,
}


@dataclass(frozen=True)
class GenerationParameters:
    type: CredentialType
    # Random secrets (every type but KeyPair).
    length: int | None = None
    alphabet: SecretAlphabet | None = None
    prefix: str | None = None
    checksum: bool = False
    # KeyPair.
    algorithm: KeyAlgorithm | None = None

    @classmethod
    def of(
        cls, spec: CredentialSpec, type_: CredentialType, algorithm: KeyAlgorithm | None
    ) -> GenerationParameters:
        if type_ is CredentialType.KEY_PAIR:
            return cls(type=type_, algorithm=algorithm or KeyAlgorithm.ED25519)
        return cls(
            type=type_,
            length=spec.secret.length,
            alphabet=spec.secret.alphabet,
            prefix=spec.secret.prefix,
            checksum=spec.secret.checksum,
        )

    def to_wire(self) -> str:
        fields: dict[str, Any] = {"type": self.type.value}
        if self.algorithm is not None:
            fields["algorithm"] = self.algorithm.value
        if self.length is not None:
            fields["length"] = self.length
        if self.alphabet is not None:
            fields["alphabet"] = self.alphabet.value
        if self.prefix is not None:
            fields["prefix"] = self.prefix
        if self.checksum:
            fields["checksum"] = True
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_wire(cls, text: str) -> GenerationParameters:
        """Raises ValueError for anything but a well-formed record (never quoting it)."""
        try:
            fields = json.loads(text)
        except (ValueError, RecursionError):  # nesting past the stack
            raise ValueError("not JSON") from None
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        type_ = _enum(fields, "type", CredentialType)
        if type_ is CredentialType.KEY_PAIR:
            return cls(type=type_, algorithm=_enum(fields, "algorithm", KeyAlgorithm))
        alphabet = _enum(fields, "alphabet", SecretAlphabet)
        length = fields.get("length")
        if isinstance(length, bool) or not isinstance(length, int):
            raise ValueError("length is not an integer")
        if not (max(MIN_LENGTH, min_length(alphabet)) <= length <= MAX_LENGTH):
            raise ValueError("length is out of bounds")
        prefix = fields.get("prefix")
        if prefix is not None and not (isinstance(prefix, str) and 0 < len(prefix) <= 32):
            raise ValueError("prefix is not a short string")
        checksum = fields.get("checksum", False)
        if not isinstance(checksum, bool):
            raise ValueError("checksum is not a boolean")
        return cls(type_, length=length, alphabet=alphabet, prefix=prefix, checksum=checksum)

    def legacy_digest(self) -> str:
        """The digest version 1 of the Secret state recorded instead of these fields."""
        shape: dict[str, Any] = {"type": self.type.value}
        if self.type is CredentialType.KEY_PAIR:
            shape["algorithm"] = self.algorithm.value if self.algorithm else None
        else:
            shape.update(
                length=self.length,
                alphabet=self.alphabet.value if self.alphabet else None,
                prefix=self.prefix,
                checksum=self.checksum,
            )
        return fingerprint(json.dumps(shape, sort_keys=True))

    def max_value_chars(self) -> int:
        """The longest value these parameters can give."""
        if self.algorithm is not None:
            return MAX_PEM_CHARS[self.algorithm]
        return (
            len(self.prefix or "") + (self.length or 0) + (CHECKSUM_LENGTH if self.checksum else 0)
        )


E = TypeVar("E", bound=StrEnum)


def _enum(fields: dict[str, Any], name: str, enum: type[E]) -> E:
    try:
        return enum(str(fields.get(name)))
    except ValueError:
        raise ValueError(f"{name} is missing or unknown") from None
