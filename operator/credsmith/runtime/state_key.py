"""The operator's state key (reconcile/state_mac.py), kept in a Secret of its own namespace.

Created on first start and never rotated by the operator: every Secret it has written is
authenticated under it. Two replicas starting together both try to create it; the one that
loses gets 409 AlreadyExists and reads the winner's. Helm and kustomize do not template it
(a random value in a template would be a new key on every `helm upgrade`), so an upgrade
keeps it. Losing it (deleted by a person, a new cluster from a backup without it) costs no
credential: a new key is made, and each Secret is believed once more when status vouches for
it (trust.py), then authenticated under the new key on its next write.

The key never leaves this module but as a StateKey, whose repr hides it; no log line, Event
or exception here names its bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any, Protocol

from credsmith.reconcile.state_mac import KEY_BYTES, StateKey
from credsmith.runtime.backoff import exponential
from credsmith.runtime.session import ApiError

log = logging.getLogger("credsmith")

DEFAULT_NAME = "credsmith-state-key"
DATA_KEY = "key"  # 32 random bytes (the Secret's data is their base64)


class SecretApi(Protocol):
    """The two calls needed (runtime/kube.py's Kube has them)."""

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...


class StateKeyError(Exception):
    """The key Secret exists but holds no usable key: the operator does not start."""


async def wait_for_state_key(api: SecretApi, namespace: str, name: str = DEFAULT_NAME) -> StateKey:
    """`load_state_key`, retried with backoff while the API server cannot answer or refuses
    (an outage at start, RBAC applied after the Deployment): the operator starts once it can,
    as its informers do. A key Secret that exists but holds no key is not retried."""
    failures = 0
    while True:
        try:
            return await load_state_key(api, namespace, name)
        except ApiError as exc:
            failures += 1
            delay = exponential(failures, 1.0, 30.0)
            # The error names the call and the server's reason, never the key.
            log.warning(
                "state key Secret %s/%s: %s; retrying in %.0fs", namespace, name, exc, delay
            )
            await asyncio.sleep(delay)


async def load_state_key(api: SecretApi, namespace: str, name: str = DEFAULT_NAME) -> StateKey:
    """The key in Secret `namespace/name`, created first if there is none."""
    found = await api.get_secret(namespace, name)
    if found is not None:
        return _key_of(found, namespace, name)
    made = StateKey.generate()
    try:
        await api.create_secret(namespace, _manifest(namespace, name, made))
    except ApiError as exc:
        if exc.status != 409:
            raise
        # Another replica created it first: use that one, as every replica must.
        found = await api.get_secret(namespace, name)
        if found is None:
            raise
        return _key_of(found, namespace, name)
    log.info("created the state key Secret %s/%s", namespace, name)
    return made


def _manifest(namespace: str, name: str, key: StateKey) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        # Never changed in place: replacing the key is deleting this Secret (docs/threat-model.md).
        "immutable": True,
        "metadata": {
            "name": name,
            "namespace": namespace,
            # Not app.kubernetes.io/managed-by=credsmith: that label selects the credential
            # Secrets the operator watches, and this is none of them.
            "labels": {
                "app.kubernetes.io/part-of": "credsmith",
                "app.kubernetes.io/component": "state-key",
            },
        },
        "data": {DATA_KEY: base64.b64encode(key.material).decode()},
    }


def _key_of(secret: dict[str, Any], namespace: str, name: str) -> StateKey:
    encoded = (secret.get("data") or {}).get(DATA_KEY)
    try:
        material = base64.b64decode(encoded or "", validate=True)
    except (binascii.Error, ValueError):
        material = b""
    if len(material) < KEY_BYTES:
        raise StateKeyError(
            f"Secret {namespace}/{name} has no state key of {KEY_BYTES} bytes under "
            f"{DATA_KEY!r}. Delete it to have a new key made (each credential's Secret is then "
            "believed once more if its status agrees, see docs/threat-model.md)."
        )
    return StateKey(material)
