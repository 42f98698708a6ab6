"""What this process last made each identity provider hold, so that a pass calls the
provider only when something changed or the provider's resync is due.

Keyed by (provider uid, client id). The value is a keyed fingerprint of the desired
client, never the client itself: the key is random per process (os.urandom), so a
fingerprint (in memory only) cannot be used to test guesses of a secret even by someone
who reads this process's memory without the key, and nothing survives a restart (a new
process calls `ensure` once per client, which is what it must do anyway to find drift).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from credsmith.providers.base import DesiredClient

MemoKey = tuple[str, str]  # (provider uid, client id)


def fingerprint(key: bytes, desired: DesiredClient) -> bytes:
    """A MAC of everything `ensure` would send for `desired`: any change gives another."""
    fields = {
        "client_id": desired.client_id,
        "marker": [
            desired.marker.provider_uid,
            desired.marker.owner.kind,
            desired.marker.owner.namespace,
            desired.marker.owner.name,
            desired.marker.owner.uid,
            desired.marker.revision,
        ],
        "auth_method": desired.auth_method,
        "secret": desired.secret,
        "previous_secret": desired.previous_secret,
        "previous_expires_at": (
            desired.previous_expires_at.isoformat() if desired.previous_expires_at else None
        ),
        "jwks": [dict(jwk) for jwk in desired.jwks],
        "grant_types": list(desired.grant_types),
        "scope": list(desired.scope),
        "audience": list(desired.audience),
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key, canonical.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class _Made:
    fingerprint: bytes
    at: float  # wall-clock time of the ensure that made it so


class RegistrationMemo:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._key = os.urandom(32)
        self._clock = clock
        self._made: dict[MemoKey, _Made] = {}

    def due(self, desired: DesiredClient, resync: float) -> bool:
        """Whether `ensure` must be called: never made by this process, made differently,
        or made `resync` seconds ago or more (a second early: the requeue made for it)."""
        made = self._made.get(_key(desired))
        if made is None or not hmac.compare_digest(made.fingerprint, self._fp(desired)):
            return True
        return self._clock() >= made.at + resync - 1.0

    def made(self, desired: DesiredClient) -> None:
        """The provider holds `desired` now (an `ensure` succeeded)."""
        self._made[_key(desired)] = _Made(self._fp(desired), self._clock())

    def next_check(self, desired: DesiredClient, resync: float) -> float | None:
        """When the provider's copy is next compared with ours (wall-clock), if made."""
        made = self._made.get(_key(desired))
        return None if made is None else made.at + resync

    def forget(self, desired: DesiredClient) -> None:
        """What the provider holds is unknown (a failure): the next pass calls it."""
        self._made.pop(_key(desired), None)

    def forget_client(self, provider_uid: str, client_id: str) -> None:
        """A client deleted from the provider (the clean-up): the next pass creates it."""
        self._made.pop((provider_uid, client_id), None)

    def forget_provider(self, provider_uid: str) -> None:
        """A provider deleted or changed: every client of it is checked again."""
        for key in [k for k in self._made if k[0] == provider_uid]:
            del self._made[key]

    def __len__(self) -> int:
        return len(self._made)

    def _fp(self, desired: DesiredClient) -> bytes:
        return fingerprint(self._key, desired)


def _key(desired: DesiredClient) -> MemoKey:
    return (desired.marker.provider_uid, desired.client_id)
