"""Everything credsmith stores on a Secret, and the one place its annotations are spelled.

A credential's Secret is the source of truth: beside the credential it carries, in
`credsmith.io/*` annotations, the owner, revision, timestamps, the rotation request acted
on, the ApiClient's id, the generation parameters, fingerprints of the current and previous
value, and the verifier hashes with a binding to the value each was made from.

Versions:
- 1 (no `credsmith.io/state-version`): written up to 0.1.0. Parameters as a digest, no
  fingerprints, hashes beside "<algorithm>:<fingerprint>". Read leniently, as 0.1.0 did.
- 2: parameters as explicit data, fingerprints, hash bindings. Every field must be present
  and well-formed; a garbled set is a problem the caller answers with a re-issue.

A Secret of version 1 is never rewritten only to upgrade it: `equivalent` compares what the
two versions can both say, so an upgrade causes no write; the next write for another reason
writes version 2.

Authentication: every state the operator writes carries `credsmith.io/state-mac`, a MAC
(state_mac.py) over all the state annotations above and the scope they belong to (owner
kind, namespace and name, and the Secret's name). Secrets written before the MAC existed
(version 1, and version 2 without it) have none; the next write for another reason adds it.
Whether a state without a valid MAC is believed is trust.py's decision.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from credsmith import GROUP
from credsmith.api.enums import HashAlgorithm, SecretAlphabet
from credsmith.api.status import format_timestamp, parse_timestamp
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.state_mac import StateKey

PREFIX = f"{GROUP}/"
OWNER = f"{GROUP}/owner"
STATE_VERSION = f"{GROUP}/state-version"
REVISION = f"{GROUP}/revision"
ISSUED_AT = f"{GROUP}/issued-at"
ROTATED_AT = f"{GROUP}/rotated-at"
PARAMETERS = f"{GROUP}/parameters"
ROTATE_REQUEST = f"{GROUP}/rotate-request"
CLIENT_UUID = f"{GROUP}/id"
FINGERPRINT = f"{GROUP}/fingerprint"
PREVIOUS_FINGERPRINT = f"{GROUP}/previous-fingerprint"
PREVIOUS_EXPIRES_AT = f"{GROUP}/previous-expires-at"
SECRET_HASH = f"{GROUP}/secret-hash"
PREVIOUS_SECRET_HASH = f"{GROUP}/previous-secret-hash"
SECRET_HASH_BINDING = f"{GROUP}/secret-hash-binding"
PREVIOUS_SECRET_HASH_BINDING = f"{GROUP}/previous-secret-hash-binding"
# The secretTemplate label and annotation keys last applied, so that removing one from the
# template removes it from the Secret while others' keys are kept.
TEMPLATE_KEYS = f"{GROUP}/template-keys"
# ApiClient with registry.formats Htpasswd: a bcrypt hash of the current secret.
HTPASSWD_HASH = f"{GROUP}/htpasswd-hash"
HTPASSWD_HASH_BINDING = f"{GROUP}/htpasswd-hash-binding"
BCRYPT = "Bcrypt"  # the algorithm name recorded in the htpasswd hash's binding
# spec.extraSecrets as issued: per key its parameters and fingerprints (JSON).
EXTRA_SECRETS = f"{GROUP}/extra-secrets"
# The MAC of the state record (see `state_message`): the operator's word for all of the above.
STATE_MAC = f"{GROUP}/state-mac"
# Version 1 only: "<algorithm>:<fingerprint of the hashed value>".
LEGACY_SECRET_HASH_OF = f"{GROUP}/secret-hash-of"
LEGACY_PREVIOUS_SECRET_HASH_OF = f"{GROUP}/previous-secret-hash-of"

VERSION = 2
_VERSION_2_ONLY = (
    FINGERPRINT,
    PREVIOUS_FINGERPRINT,
    SECRET_HASH_BINDING,
    PREVIOUS_SECRET_HASH_BINDING,
    HTPASSWD_HASH_BINDING,
)
_FINGERPRINT_RE = re.compile(r"sha256:[0-9a-f]{16}")
_BINDING_RE = re.compile(r"([A-Za-z0-9]+):([0-9a-f]{64})")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_HASH_CHARS = 512


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


def read_state(annotations: Mapping[str, str], now: datetime) -> StateRead:
    """The state recorded in a Secret's annotations (its owner already checked)."""
    version = annotations.get(STATE_VERSION)
    if version is None:
        if any(key in annotations for key in _VERSION_2_ONLY) or annotations.get(
            PARAMETERS, ""
        ).startswith("{"):
            # Not a version 1 Secret that lost nothing: a version 2 one that lost its version.
            return StateRead(None, f"annotation {STATE_VERSION} is missing")
        return _read_version_1(annotations, now)
    try:
        if int(version) < VERSION:
            raise ValueError
        return StateRead(_read_version_2(annotations))
    except _Malformed as exc:
        return StateRead(None, f"annotation {exc.key} is missing or malformed")
    except ValueError:
        return StateRead(None, f"annotation {STATE_VERSION} is malformed")


def annotations_of(state: SecretState) -> dict[str, str]:
    """The annotations recording `state`, always in the current version."""
    if state.parameters is None or state.fingerprint is None:
        raise ValueError("only a complete state can be written")
    notes = {
        OWNER: state.owner,
        STATE_VERSION: str(VERSION),
        REVISION: str(state.revision),
        ISSUED_AT: format_timestamp(state.issued_at),
        ROTATED_AT: format_timestamp(state.rotated_at),
        PARAMETERS: state.parameters.to_wire(),
        FINGERPRINT: state.fingerprint,
    }
    optional = {
        ROTATE_REQUEST: state.rotate_request,
        CLIENT_UUID: state.client_uuid,
        PREVIOUS_FINGERPRINT: state.previous_fingerprint,
        PREVIOUS_EXPIRES_AT: _format(state.previous_expires_at),
    }
    notes.update({key: value for key, value in optional.items() if value is not None})
    for hash_key, binding_key, made in (
        (SECRET_HASH, SECRET_HASH_BINDING, state.hash),
        (PREVIOUS_SECRET_HASH, PREVIOUS_SECRET_HASH_BINDING, state.previous_hash),
        (HTPASSWD_HASH, HTPASSWD_HASH_BINDING, state.htpasswd),
    ):
        if made is not None:
            if made.binding is None:
                raise ValueError("only a bound hash can be written")
            notes[hash_key] = made.hash
            notes[binding_key] = f"{made.algorithm}:{made.binding}"
    if state.extras:
        extras = {extra.key: extra.to_wire() for extra in state.extras}
        notes[EXTRA_SECRETS] = json.dumps(extras, sort_keys=True, separators=(",", ":"))
    if state.template_labels or state.template_annotations:
        applied = {
            "labels": list(state.template_labels),
            "annotations": list(state.template_annotations),
        }
        notes[TEMPLATE_KEYS] = json.dumps(applied, separators=(",", ":"))
    return notes


def equivalent(found: SecretState, desired: SecretState) -> bool:
    """Whether a Secret recording `found` needs no write to record `desired`. For version 1,
    only what version 1 can say is compared: an upgrade alone is no reason to write."""
    if found.version >= VERSION:
        return found == desired
    if desired.parameters is None:
        return False
    digest_ok = found.legacy_digest == desired.parameters.legacy_digest() or (
        not found.legacy_digest and found.parameters == desired.parameters
    )
    hashes_ok = all(
        (a is None) == (b is None) and (a is None or b is None or a.hash == b.hash)
        for a, b in ((found.hash, desired.hash), (found.previous_hash, desired.previous_hash))
    )
    comparable = replace(
        desired,
        parameters=found.parameters,
        fingerprint=found.fingerprint,
        previous_fingerprint=found.previous_fingerprint,
        hash=found.hash,
        previous_hash=found.previous_hash,
        version=found.version,
    )
    return digest_ok and hashes_ok and comparable == found and not found.assumed


@dataclass(frozen=True)
class StateScope:
    """What a state record belongs to, bound into its MAC: a record made for one resource's
    Secret verifies on no other (another kind, namespace, name or Secret). Not the UID: a
    Secret made for an earlier resource of the same name (Orphan, a GitOps delete and
    re-create) is the same resource's, and is adopted."""

    kind: str
    namespace: str
    name: str
    secret_name: str


# Every annotation annotations_of may write: the record the MAC covers. One that is absent is
# absent from the record too, so adding one (a planted previous value) breaks the MAC.
_SEALED = (
    OWNER,
    STATE_VERSION,
    REVISION,
    ISSUED_AT,
    ROTATED_AT,
    PARAMETERS,
    ROTATE_REQUEST,
    CLIENT_UUID,
    FINGERPRINT,
    PREVIOUS_FINGERPRINT,
    PREVIOUS_EXPIRES_AT,
    SECRET_HASH,
    PREVIOUS_SECRET_HASH,
    SECRET_HASH_BINDING,
    PREVIOUS_SECRET_HASH_BINDING,
    HTPASSWD_HASH,
    HTPASSWD_HASH_BINDING,
    EXTRA_SECRETS,
    TEMPLATE_KEYS,
)


def state_message(annotations: Mapping[str, str], scope: StateScope) -> bytes:
    """The bytes the MAC is computed over: the scope and the state annotations, in one
    canonical JSON document (fingerprints of the current value, the previous value and the
    extras are among those annotations; trust.py checks each value against them)."""
    record = {key: annotations[key] for key in _SEALED if key in annotations}
    document = {
        "v": 1,
        "owner": [scope.kind, scope.namespace, scope.name],
        "secret": scope.secret_name,
        "state": record,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sealed(notes: Mapping[str, str], key: StateKey, scope: StateScope) -> dict[str, str]:
    """`notes` (from annotations_of) with their MAC."""
    return {**notes, STATE_MAC: key.tag(state_message(notes, scope))}


def is_sealed(annotations: Mapping[str, str], key: StateKey, scope: StateScope) -> bool:
    """Whether the state annotations carry a MAC made with `key` for `scope`."""
    return key.verifies(state_message(annotations, scope), annotations.get(STATE_MAC))


def is_state_annotation(key: str) -> bool:
    """Whether an annotation is ours to write (template annotations may not pose as ours)."""
    return key.startswith(PREFIX)


# ---- reading ------------------------------------------------------------------------


class _Malformed(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _read_version_2(notes: Mapping[str, str]) -> SecretState:
    revision = _required(notes, REVISION)
    if not revision.isdigit() or not 0 < int(revision) < 2**31:
        raise _Malformed(REVISION)
    try:
        parameters = GenerationParameters.from_wire(_required(notes, PARAMETERS))
    except ValueError:
        raise _Malformed(PARAMETERS) from None
    fingerprint = _required(notes, FINGERPRINT)
    if not _FINGERPRINT_RE.fullmatch(fingerprint):
        raise _Malformed(FINGERPRINT)
    previous_fingerprint = notes.get(PREVIOUS_FINGERPRINT)
    previous_expires_at = _optional_time(notes, PREVIOUS_EXPIRES_AT)
    if previous_fingerprint is not None and not _FINGERPRINT_RE.fullmatch(previous_fingerprint):
        raise _Malformed(PREVIOUS_FINGERPRINT)
    if (previous_fingerprint is None) != (previous_expires_at is None):
        raise _Malformed(PREVIOUS_FINGERPRINT if previous_expires_at else PREVIOUS_EXPIRES_AT)
    labels, annotations = _template_keys(notes)
    return SecretState(
        owner=notes[OWNER],
        revision=int(revision),
        issued_at=_time(notes, ISSUED_AT),
        rotated_at=_time(notes, ROTATED_AT),
        parameters=parameters,
        rotate_request=notes.get(ROTATE_REQUEST),
        client_uuid=_client_uuid(notes),
        fingerprint=fingerprint,
        previous_fingerprint=previous_fingerprint,
        previous_expires_at=previous_expires_at,
        hash=_bound_hash(notes, SECRET_HASH, SECRET_HASH_BINDING),
        previous_hash=_bound_hash(notes, PREVIOUS_SECRET_HASH, PREVIOUS_SECRET_HASH_BINDING),
        htpasswd=_bound_hash(notes, HTPASSWD_HASH, HTPASSWD_HASH_BINDING),
        template_labels=labels,
        template_annotations=annotations,
        extras=_extras(notes),
    )


def _read_version_1(notes: Mapping[str, str], now: datetime) -> StateRead:
    """As 0.1.0 read its own Secrets: what is missing is assumed, not refused."""
    assumed = set()
    revision = notes.get(REVISION, "")
    if not (revision.isdigit() and 0 < int(revision) < 2**31):
        assumed.add(REVISION)
    rotated_at = _lenient_time(notes.get(ROTATED_AT))
    issued_at = _lenient_time(notes.get(ISSUED_AT))
    assumed.update(k for k, v in ((ROTATED_AT, rotated_at), (ISSUED_AT, issued_at)) if v is None)
    digest = notes.get(PARAMETERS, "")
    try:
        labels, annotations = _template_keys(notes)
    except _Malformed:
        labels, annotations = (), ()
    state = SecretState(
        owner=notes.get(OWNER, ""),
        revision=int(revision) if REVISION not in assumed else 1,
        issued_at=issued_at or rotated_at or now,
        rotated_at=rotated_at or now,
        parameters=None,
        rotate_request=notes.get(ROTATE_REQUEST),
        client_uuid=notes.get(CLIENT_UUID),
        previous_expires_at=_lenient_time(notes.get(PREVIOUS_EXPIRES_AT)),
        hash=_legacy_hash(notes, SECRET_HASH, LEGACY_SECRET_HASH_OF),
        previous_hash=_legacy_hash(notes, PREVIOUS_SECRET_HASH, LEGACY_PREVIOUS_SECRET_HASH_OF),
        template_labels=labels,
        template_annotations=annotations,
        version=1,
        legacy_digest=digest if _FINGERPRINT_RE.fullmatch(digest) else "",
        assumed=frozenset(assumed),
    )
    return StateRead(state)


def _required(notes: Mapping[str, str], key: str) -> str:
    value = notes.get(key)
    if value is None:
        raise _Malformed(key)
    return value


def _time(notes: Mapping[str, str], key: str) -> datetime:
    moment = _lenient_time(notes.get(key))
    if moment is None:
        raise _Malformed(key)
    return moment


def _optional_time(notes: Mapping[str, str], key: str) -> datetime | None:
    return None if key not in notes else _time(notes, key)


def _lenient_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)


def _client_uuid(notes: Mapping[str, str]) -> str | None:
    value = notes.get(CLIENT_UUID)
    if value is not None and not _UUID_RE.fullmatch(value):
        raise _Malformed(CLIENT_UUID)
    return value


def _bound_hash(notes: Mapping[str, str], hash_key: str, binding_key: str) -> VerifierHash | None:
    made, binding = notes.get(hash_key), notes.get(binding_key)
    if made is None and binding is None:
        return None
    if made is None or not 0 < len(made) <= MAX_HASH_CHARS:
        raise _Malformed(hash_key)
    match = _BINDING_RE.fullmatch(binding or "")
    if match is None:
        raise _Malformed(binding_key)
    if hash_key == HTPASSWD_HASH:
        if match[1] != BCRYPT:
            raise _Malformed(binding_key)
        return VerifierHash(BCRYPT, made, match[2])
    try:
        return VerifierHash(HashAlgorithm(match[1]), made, match[2])
    except ValueError:
        raise _Malformed(binding_key) from None


def _legacy_hash(notes: Mapping[str, str], hash_key: str, of_key: str) -> VerifierHash | None:
    made, of = notes.get(hash_key), notes.get(of_key, "")
    algorithm_name, _, _ = of.partition(":")
    try:
        algorithm = HashAlgorithm(algorithm_name)
    except ValueError:
        return None
    if not made or len(made) > MAX_HASH_CHARS:
        return None
    return VerifierHash(algorithm, made, None)


def _extras(notes: Mapping[str, str]) -> tuple[ExtraState, ...]:
    raw = notes.get(EXTRA_SECRETS)
    if raw is None:
        return ()
    try:
        items = json.loads(raw)
        extras = []
        for key, fields in sorted(items.items()):
            prefix = fields.get("prefix")
            previous = fields.get("previousFingerprint")
            extra = ExtraState(
                key=key,
                length=fields["length"],
                alphabet=SecretAlphabet(fields["alphabet"]),
                prefix=prefix,
                fingerprint=fields["fingerprint"],
                previous_fingerprint=previous,
            )
            if not (
                isinstance(key, str)
                and isinstance(extra.length, int)
                and not isinstance(extra.length, bool)
                and 0 < extra.length <= 4096
                and (prefix is None or isinstance(prefix, str))
                and _FINGERPRINT_RE.fullmatch(str(extra.fingerprint))
                and (previous is None or _FINGERPRINT_RE.fullmatch(str(previous)))
            ):
                raise ValueError
            extras.append(extra)
    except (ValueError, AttributeError, TypeError, KeyError):
        raise _Malformed(EXTRA_SECRETS) from None
    return tuple(extras)


def _template_keys(notes: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    raw = notes.get(TEMPLATE_KEYS)
    if raw is None:
        return (), ()
    try:
        applied = json.loads(raw)
        labels, annotations = applied.get("labels", []), applied.get("annotations", [])
    except (ValueError, AttributeError):
        raise _Malformed(TEMPLATE_KEYS) from None
    if not all(isinstance(k, str) for k in (*labels, *annotations)):
        raise _Malformed(TEMPLATE_KEYS)
    return tuple(labels), tuple(annotations)


_PREVIOUS_ANNOTATIONS = frozenset(
    {
        PREVIOUS_FINGERPRINT,
        PREVIOUS_EXPIRES_AT,
        PREVIOUS_SECRET_HASH,
        PREVIOUS_SECRET_HASH_BINDING,
        LEGACY_PREVIOUS_SECRET_HASH_OF,
    }
)


def without_previous(annotations: Mapping[str, str]) -> dict[str, str]:
    """The annotations with every trace of a previous value removed (any version)."""
    kept = {k: v for k, v in annotations.items() if k not in _PREVIOUS_ANNOTATIONS}
    try:
        extras = [replace(e, previous_fingerprint=None) for e in _extras(annotations)]
    except _Malformed:
        return kept  # the next pass with a valid spec re-issues it anyway
    if extras:
        kept[EXTRA_SECRETS] = json.dumps(
            {e.key: e.to_wire() for e in extras}, sort_keys=True, separators=(",", ":")
        )
    return kept


def is_ours(labels: Mapping[str, str], annotations: Mapping[str, str], owner: str) -> bool:
    """Whether a Secret was written by credsmith for `owner` ("<Kind>/<name>")."""
    from credsmith.reconcile.snapshots import MANAGED_BY, MANAGED_BY_LABEL

    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY and annotations.get(OWNER) == owner
