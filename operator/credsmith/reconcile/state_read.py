"""Decoding and validating a Secret's state annotations (both versions: see
secret_state.py). Version 2 is read strictly: a field missing or malformed makes the whole
state a problem, which the caller answers with a re-issue. Version 1 is read leniently, as
0.1.0 read its own Secrets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from credsmith.api.enums import HashAlgorithm, SecretAlphabet
from credsmith.api.status import parse_revision, parse_timestamp
from credsmith.reconcile import state_annotations as names
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.state_model import ExtraState, SecretState, StateRead, VerifierHash


def read_state(annotations: Mapping[str, str], now: datetime) -> StateRead:
    """The state recorded in a Secret's annotations (its owner already checked)."""
    version = annotations.get(names.STATE_VERSION)
    if version is None:
        if any(key in annotations for key in names.VERSION_2_ONLY) or annotations.get(
            names.PARAMETERS, ""
        ).startswith("{"):
            # Not a version 1 Secret that lost nothing: a version 2 one that lost its version.
            return StateRead(None, f"annotation {names.STATE_VERSION} is missing")
        return _read_version_1(annotations, now)
    try:
        if int(version) < names.VERSION:
            raise ValueError
        return StateRead(_read_version_2(annotations))
    except Malformed as exc:
        return StateRead(None, f"annotation {exc.key} is missing or malformed")
    except ValueError:
        return StateRead(None, f"annotation {names.STATE_VERSION} is malformed")


class Malformed(Exception):
    """The annotation `key` is missing or malformed."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _read_version_2(notes: Mapping[str, str]) -> SecretState:
    revision = _required(notes, names.REVISION)
    if parse_revision(revision) is None:
        raise Malformed(names.REVISION)
    try:
        parameters = GenerationParameters.from_wire(_required(notes, names.PARAMETERS))
    except ValueError:
        raise Malformed(names.PARAMETERS) from None
    fingerprint = _required(notes, names.FINGERPRINT)
    if not names.FINGERPRINT_RE.fullmatch(fingerprint):
        raise Malformed(names.FINGERPRINT)
    previous_fingerprint = notes.get(names.PREVIOUS_FINGERPRINT)
    previous_expires_at = _optional_time(notes, names.PREVIOUS_EXPIRES_AT)
    if previous_fingerprint is not None and not names.FINGERPRINT_RE.fullmatch(
        previous_fingerprint
    ):
        raise Malformed(names.PREVIOUS_FINGERPRINT)
    if (previous_fingerprint is None) != (previous_expires_at is None):
        raise Malformed(
            names.PREVIOUS_FINGERPRINT if previous_expires_at else names.PREVIOUS_EXPIRES_AT
        )
    labels, annotations = _template_keys(notes)
    return SecretState(
        owner=notes[names.OWNER],
        revision=int(revision),
        issued_at=_time(notes, names.ISSUED_AT),
        rotated_at=_time(notes, names.ROTATED_AT),
        parameters=parameters,
        rotate_request=notes.get(names.ROTATE_REQUEST),
        client_uuid=_client_uuid(notes),
        fingerprint=fingerprint,
        previous_fingerprint=previous_fingerprint,
        previous_expires_at=previous_expires_at,
        hash=_bound_hash(notes, names.SECRET_HASH, names.SECRET_HASH_BINDING),
        previous_hash=_bound_hash(
            notes, names.PREVIOUS_SECRET_HASH, names.PREVIOUS_SECRET_HASH_BINDING
        ),
        htpasswd=_bound_hash(notes, names.HTPASSWD_HASH, names.HTPASSWD_HASH_BINDING),
        template_labels=labels,
        template_annotations=annotations,
        extras=read_extras(notes),
    )


def _read_version_1(notes: Mapping[str, str], now: datetime) -> StateRead:
    """As 0.1.0 read its own Secrets: what is missing is assumed, not refused."""
    assumed = set()
    revision = notes.get(names.REVISION, "")
    if parse_revision(revision) is None:
        assumed.add(names.REVISION)
    rotated_at = _lenient_time(notes.get(names.ROTATED_AT))
    issued_at = _lenient_time(notes.get(names.ISSUED_AT))
    assumed.update(
        k for k, v in ((names.ROTATED_AT, rotated_at), (names.ISSUED_AT, issued_at)) if v is None
    )
    digest = notes.get(names.PARAMETERS, "")
    try:
        labels, annotations = _template_keys(notes)
    except Malformed:
        labels, annotations = (), ()
    state = SecretState(
        owner=notes.get(names.OWNER, ""),
        revision=int(revision) if names.REVISION not in assumed else 1,
        issued_at=issued_at or rotated_at or now,
        rotated_at=rotated_at or now,
        parameters=None,
        rotate_request=notes.get(names.ROTATE_REQUEST),
        client_uuid=notes.get(names.CLIENT_UUID),
        previous_expires_at=_lenient_time(notes.get(names.PREVIOUS_EXPIRES_AT)),
        hash=_legacy_hash(notes, names.SECRET_HASH, names.LEGACY_SECRET_HASH_OF),
        previous_hash=_legacy_hash(
            notes, names.PREVIOUS_SECRET_HASH, names.LEGACY_PREVIOUS_SECRET_HASH_OF
        ),
        template_labels=labels,
        template_annotations=annotations,
        version=1,
        legacy_digest=digest if names.FINGERPRINT_RE.fullmatch(digest) else "",
        assumed=frozenset(assumed),
    )
    return StateRead(state)


def _required(notes: Mapping[str, str], key: str) -> str:
    value = notes.get(key)
    if value is None:
        raise Malformed(key)
    return value


def _time(notes: Mapping[str, str], key: str) -> datetime:
    moment = _lenient_time(notes.get(key))
    if moment is None:
        raise Malformed(key)
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


def _client_uuid(notes: Mapping[str, str]) -> str | None:
    value = notes.get(names.CLIENT_UUID)
    if value is not None and not names.UUID_RE.fullmatch(value):
        raise Malformed(names.CLIENT_UUID)
    return value


def _bound_hash(notes: Mapping[str, str], hash_key: str, binding_key: str) -> VerifierHash | None:
    made, binding = notes.get(hash_key), notes.get(binding_key)
    if made is None and binding is None:
        return None
    if made is None or not 0 < len(made) <= names.MAX_HASH_CHARS:
        raise Malformed(hash_key)
    match = names.BINDING_RE.fullmatch(binding or "")
    if match is None:
        raise Malformed(binding_key)
    if hash_key == names.HTPASSWD_HASH:
        if match[1] != names.BCRYPT:
            raise Malformed(binding_key)
        return VerifierHash(names.BCRYPT, made, match[2])
    try:
        return VerifierHash(HashAlgorithm(match[1]), made, match[2])
    except ValueError:
        raise Malformed(binding_key) from None


def _legacy_hash(notes: Mapping[str, str], hash_key: str, of_key: str) -> VerifierHash | None:
    made, of = notes.get(hash_key), notes.get(of_key, "")
    algorithm_name, _, _ = of.partition(":")
    try:
        algorithm = HashAlgorithm(algorithm_name)
    except ValueError:
        return None
    if not made or len(made) > names.MAX_HASH_CHARS:
        return None
    return VerifierHash(algorithm, made, None)


def read_extras(notes: Mapping[str, str]) -> tuple[ExtraState, ...]:
    raw = notes.get(names.EXTRA_SECRETS)
    if raw is None:
        return ()
    try:
        items = json.loads(raw)  # RecursionError: nesting past the stack
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
                and names.FINGERPRINT_RE.fullmatch(str(extra.fingerprint))
                and (previous is None or names.FINGERPRINT_RE.fullmatch(str(previous)))
            ):
                raise ValueError
            extras.append(extra)
    except (ValueError, AttributeError, TypeError, KeyError, RecursionError):
        raise Malformed(names.EXTRA_SECRETS) from None
    return tuple(extras)


def _template_keys(notes: Mapping[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    raw = notes.get(names.TEMPLATE_KEYS)
    if raw is None:
        return (), ()
    try:
        applied = json.loads(raw)
    except (ValueError, RecursionError):  # nesting past the stack
        raise Malformed(names.TEMPLATE_KEYS) from None
    if not isinstance(applied, dict):
        raise Malformed(names.TEMPLATE_KEYS)
    labels, annotations = applied.get("labels", []), applied.get("annotations", [])
    for keys in (labels, annotations):
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise Malformed(names.TEMPLATE_KEYS)
    return tuple(labels), tuple(annotations)
