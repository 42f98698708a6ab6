"""What a Secret's state annotations say, as values: the state record and its parts
(secret_state.py describes the record; state_read.py decodes it, annotations_of encodes it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from credsmith.api.enums import SecretAlphabet
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.state_annotations import VERSION


@dataclass(frozen=True)
class VerifierHash:
    """A hash of a secret for the registry, bound to the value it was made from."""

    algorithm: str  # a HashAlgorithm, or BCRYPT
    hash: str
    # sha256 over the algorithm, the value and the hash: only who knows the value can make
    # it, so a hash annotation rewritten by someone who cannot read the Secret is caught.
    # None when read from version 1 (then the hash is verified against the value instead).
    binding: str | None

    @classmethod
    def made_from(cls, value: str, algorithm: str, hash_: str) -> VerifierHash:
        return cls(algorithm, hash_, binding_of(value, algorithm, hash_))

    def is_bound_to(self, value: str) -> bool:
        return self.binding is not None and hmac.compare_digest(
            self.binding, binding_of(value, self.algorithm, self.hash)
        )


def binding_of(value: str, algorithm: str, hash_: str) -> str:
    material = "\0".join((str(algorithm), value, hash_)).encode("utf-8")
    return hashlib.sha256(material).hexdigest()


@dataclass(frozen=True)
class ExtraState:
    """One extra secret as issued (spec.extraSecrets)."""

    key: str
    length: int
    alphabet: SecretAlphabet
    prefix: str | None
    fingerprint: str
    previous_fingerprint: str | None = None

    def to_wire(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "length": self.length,
            "alphabet": self.alphabet.value,
            "fingerprint": self.fingerprint,
        }
        if self.prefix is not None:
            fields["prefix"] = self.prefix
        if self.previous_fingerprint is not None:
            fields["previousFingerprint"] = self.previous_fingerprint
        return fields


@dataclass(frozen=True)
class SecretState:
    owner: str
    revision: int
    issued_at: datetime
    rotated_at: datetime
    # None only when read from version 1 whose digest did not say (see legacy_digest).
    parameters: GenerationParameters | None
    rotate_request: str | None = None
    client_uuid: str | None = None
    fingerprint: str | None = None  # None only from version 1
    previous_fingerprint: str | None = None
    previous_expires_at: datetime | None = None
    hash: VerifierHash | None = None
    previous_hash: VerifierHash | None = None
    htpasswd: VerifierHash | None = None
    template_labels: tuple[str, ...] = ()
    template_annotations: tuple[str, ...] = ()
    extras: tuple[ExtraState, ...] = ()  # sorted by key
    version: int = VERSION
    # Version 1: the digest recorded instead of parameters ("" if none was).
    legacy_digest: str = field(default="", compare=False)
    # Version 1: revision/timestamps were absent and the defaults above were assumed.
    assumed: frozenset[str] = field(default=frozenset(), compare=False)


@dataclass(frozen=True)
class StateRead:
    state: SecretState | None
    problem: str | None = None  # why the annotations cannot be believed


def extras_to_wire(extras: Iterable[ExtraState]) -> str:
    """The extra-secrets annotation: per key its parameters and fingerprints."""
    wire = {extra.key: extra.to_wire() for extra in extras}
    return json.dumps(wire, sort_keys=True, separators=(",", ":"))
