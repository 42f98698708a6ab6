"""The MAC of a Secret's state record (`credsmith.io/state-mac`): which annotations it
covers and the scope it binds them to; state_mac.py computes it, trust.py decides what an
unsealed state is worth.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from credsmith.reconcile import state_annotations as names
from credsmith.reconcile.state_mac import StateKey


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
    names.OWNER,
    names.STATE_VERSION,
    names.REVISION,
    names.ISSUED_AT,
    names.ROTATED_AT,
    names.PARAMETERS,
    names.ROTATE_REQUEST,
    names.CLIENT_UUID,
    names.FINGERPRINT,
    names.PREVIOUS_FINGERPRINT,
    names.PREVIOUS_EXPIRES_AT,
    names.SECRET_HASH,
    names.PREVIOUS_SECRET_HASH,
    names.SECRET_HASH_BINDING,
    names.PREVIOUS_SECRET_HASH_BINDING,
    names.HTPASSWD_HASH,
    names.HTPASSWD_HASH_BINDING,
    names.EXTRA_SECRETS,
    names.TEMPLATE_KEYS,
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
    return {**notes, names.STATE_MAC: key.tag(state_message(notes, scope))}


def is_sealed(annotations: Mapping[str, str], key: StateKey, scope: StateScope) -> bool:
    """Whether the state annotations carry a MAC made with `key` for `scope`."""
    return key.verifies(state_message(annotations, scope), annotations.get(names.STATE_MAC))
