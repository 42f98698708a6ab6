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

The record's parts live in modules of their own, whose public names this one keeps (import
them from here): state_annotations.py (the names), state_model.py (the values),
state_read.py (decoding and validation), state_seal.py (the MAC). Writing, comparing and
clearing a record are here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from credsmith.api.status import format_timestamp
from credsmith.reconcile.state_annotations import (
    BCRYPT,
    CLIENT_UUID,
    EXTRA_SECRETS,
    FINGERPRINT,
    HTPASSWD_HASH,
    HTPASSWD_HASH_BINDING,
    ISSUED_AT,
    LEGACY_PREVIOUS_SECRET_HASH_OF,
    LEGACY_SECRET_HASH_OF,
    MAX_HASH_CHARS,
    OWNER,
    PARAMETERS,
    PREFIX,
    PREVIOUS_ANNOTATIONS,
    PREVIOUS_EXPIRES_AT,
    PREVIOUS_FINGERPRINT,
    PREVIOUS_SECRET_HASH,
    PREVIOUS_SECRET_HASH_BINDING,
    REVISION,
    ROTATE_REQUEST,
    ROTATED_AT,
    SECRET_HASH,
    SECRET_HASH_BINDING,
    STATE_MAC,
    STATE_VERSION,
    TEMPLATE_KEYS,
    VERSION,
    is_state_annotation,
)
from credsmith.reconcile.state_model import (
    ExtraState,
    SecretState,
    StateRead,
    VerifierHash,
    binding_of,
    extras_to_wire,
)
from credsmith.reconcile.state_read import Malformed, read_extras, read_state
from credsmith.reconcile.state_seal import StateScope, is_sealed, sealed, state_message

__all__ = [  # what this module was before the split, so that every import of it still works
    "BCRYPT",
    "CLIENT_UUID",
    "EXTRA_SECRETS",
    "FINGERPRINT",
    "HTPASSWD_HASH",
    "HTPASSWD_HASH_BINDING",
    "ISSUED_AT",
    "LEGACY_PREVIOUS_SECRET_HASH_OF",
    "LEGACY_SECRET_HASH_OF",
    "MAX_HASH_CHARS",
    "OWNER",
    "PARAMETERS",
    "PREFIX",
    "PREVIOUS_EXPIRES_AT",
    "PREVIOUS_FINGERPRINT",
    "PREVIOUS_SECRET_HASH",
    "PREVIOUS_SECRET_HASH_BINDING",
    "REVISION",
    "ROTATED_AT",
    "ROTATE_REQUEST",
    "SECRET_HASH",
    "SECRET_HASH_BINDING",
    "STATE_MAC",
    "STATE_VERSION",
    "TEMPLATE_KEYS",
    "VERSION",
    "ExtraState",
    "SecretState",
    "StateRead",
    "StateScope",
    "VerifierHash",
    "annotations_of",
    "binding_of",
    "equivalent",
    "is_ours",
    "is_sealed",
    "is_state_annotation",
    "read_state",
    "sealed",
    "state_message",
    "without_previous",
]


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
        notes[EXTRA_SECRETS] = extras_to_wire(state.extras)
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


def without_previous(annotations: Mapping[str, str]) -> dict[str, str]:
    """The annotations with every trace of a previous value removed (any version)."""
    kept = {k: v for k, v in annotations.items() if k not in PREVIOUS_ANNOTATIONS}
    try:
        extras = [replace(e, previous_fingerprint=None) for e in read_extras(annotations)]
    except Malformed:
        return kept  # the next pass with a valid spec re-issues it anyway
    if extras:
        kept[EXTRA_SECRETS] = extras_to_wire(extras)
    return kept


def is_ours(labels: Mapping[str, str], annotations: Mapping[str, str], owner: str) -> bool:
    """Whether a Secret was written by credsmith for `owner` ("<Kind>/<name>")."""
    from credsmith.reconcile.snapshots import MANAGED_BY, MANAGED_BY_LABEL

    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY and annotations.get(OWNER) == owner


def _format(moment: datetime | None) -> str | None:
    return None if moment is None else format_timestamp(moment)
