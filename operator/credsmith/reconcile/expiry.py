"""A previous value retires on time, whatever else is wrong with the resource. Pure.

While a resource cannot be reconciled (invalid spec or template, a Secret of the wrong
type), its own Secret still loses the previous value at `previousExpiresAt`: a typo must not
keep an old secret valid. Only what marks the previous value is removed; everything else,
the templated keys included, stays as it was (their templates may be what is broken), except
a templated key that holds the previous value itself.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from credsmith.api.extra_secrets import previous_key
from credsmith.reconcile.extras import expired, extra_states
from credsmith.reconcile.frozen import replace
from credsmith.reconcile.layout import LAYOUTS
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.policy import expire_previous, with_fingerprints
from credsmith.reconcile.secret_state import (
    StateScope,
    is_ours,
    is_sealed,
    read_state,
    sealed,
    without_previous,
)
from credsmith.reconcile.snapshots import SecretSnapshot
from credsmith.reconcile.state_mac import StateKey

_PREVIOUS_VALUE_KEYS = frozenset(
    layout.previous_key(layout.value_key) for layout in LAYOUTS.values()
)
_PREVIOUS_KEYS = frozenset(
    layout.previous_key(key)
    for layout in LAYOUTS.values()
    for key in (layout.value_key, "key_id", "public_key.pem", "public_jwk.json")
)


def retire_previous(p: Pass) -> Pass:
    """The stage: a previous value (and the extras' previous values) past its expiry goes;
    the state records the fingerprints of what stays."""
    credential = with_fingerprints(expire_previous(p.credential, p.now))
    extras = p.extras if credential.previous is not None else expired(p.extras)
    state = replace(credential.state, extras=extra_states(p.spec.extra_secrets, extras))
    return replace(p, credential_=replace(credential, state=state), extras_=extras)


def expire_without_spec(
    secret: SecretSnapshot | None,
    owner: str,
    now: datetime,
    state_key: StateKey,
    scope: StateScope,
    posing: bool,
) -> tuple[dict[str, Any] | None, datetime | None]:
    """The Secret to write to retire an expired previous value (or None), and when to look
    again (the expiry still ahead, or None). `posing`: the Secret only poses as ours
    (trust.posing_as_ours), so it is not ours to write. A state that was authenticated stays
    so (its MAC is made anew); one that was not is not made so here."""
    if secret is None or posing or not is_ours(secret.labels, secret.annotations, owner):
        return None, None
    state = read_state(secret.annotations, now).state
    expires = state.previous_expires_at if state is not None else None
    if expires is None:
        return None, None
    if expires > now:
        return None, expires
    extra_keys = {previous_key(extra.key) for extra in state.extras} if state else set()
    previous_keys = _PREVIOUS_KEYS | extra_keys
    previous = [
        v for k, v in secret.data.items() if (k in _PREVIOUS_VALUE_KEYS or k in extra_keys) and v
    ]
    data = {
        key: value
        for key, value in secret.data.items()
        if key not in previous_keys and not any(old in value for old in previous)
    }
    metadata: dict[str, Any] = {
        "name": secret.name,
        "namespace": secret.namespace,
        "labels": dict(secret.labels),
        "annotations": _without_previous(secret, state_key, scope),
        "resourceVersion": secret.resource_version,
    }
    if secret.owner_references:
        metadata["ownerReferences"] = [dict(ref) for ref in secret.owner_references]
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": secret.type,
        "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
    }
    return manifest, None


def _without_previous(
    secret: SecretSnapshot, state_key: StateKey, scope: StateScope
) -> dict[str, str]:
    annotations = without_previous(secret.annotations)
    if is_sealed(secret.annotations, state_key, scope):
        annotations = sealed(annotations, state_key, scope)
    return annotations
