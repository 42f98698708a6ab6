"""Verify ApiClient credentials in an API server written in Python.

The credsmith operator maintains a registry Secret (ApiClient ``spec.registry.name``) holding
``clients.json``: for each client its id, client ID, display name, roles and the hashes of
its current secret and, during a rotation overlap, of its previous one. Mount that Secret
into the API server's pod and::

    from credsmith_verify import ClientRegistry

    registry = ClientRegistry.load("/etc/credsmith/registry/clients.json")
    client = registry.verify(client_id, presented_secret)
    if client is None: ...              # 401
    if "reports.read" not in client.role_ids: ...   # 403

`verify` re-reads the file when it changes (kubelet swaps a mounted Secret's files
atomically), compares hashes in constant time, and spends the same work on an unknown
client ID as on a known one, so response times do not tell which IDs exist.

A missing or unparsable file never raises: the registry keeps the last good document (and
logs a warning on the ``credsmith_verify`` logger), or, before any good document was read,
serves an empty one that rejects every client. `loaded` tells a readiness probe which.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credsmith_verify._watched import MountedDocument
from credsmith_verify.hashes import decoy_like, encode_sha256, is_known_hash, verify_secret

DOCUMENT_KIND = "ClientRegistry"
DOCUMENT_FILE = "clients.json"

logger = logging.getLogger("credsmith_verify")


@dataclass(frozen=True)
class Role:
    id: str
    name: str | None = None


@dataclass(frozen=True)
class RegisteredClient:
    """A client that presented a valid secret (never carries the secret or its hash)."""

    id: str
    client_id: str
    name: str
    display_name: str
    roles: tuple[Role, ...]

    @property
    def role_ids(self) -> frozenset[str]:
        return frozenset(role.id for role in self.roles)


@dataclass(frozen=True)
class _Entry:
    client: RegisteredClient
    hash: str
    previous_hash: str | None
    previous_expires_at: datetime | None


def parse_document(text: str) -> dict[str, _Entry]:
    """Entries by client ID; raises ValueError (or KeyError, TypeError) for a document that
    is not a registry. A client ID listed twice is left out: neither entry verifies."""
    document = json.loads(text)
    if not isinstance(document, Mapping) or document.get("kind") != DOCUMENT_KIND:
        raise ValueError(f"not a {DOCUMENT_KIND} document")
    entries: dict[str, _Entry] = {}
    duplicates: set[str] = set()
    for item in document.get("clients") or ():
        entry = _entry(item)
        client_id = entry.client.client_id
        if client_id in entries:
            duplicates.add(client_id)
        entries[client_id] = entry
    for client_id in duplicates:
        del entries[client_id]
    if duplicates:
        logger.warning("%d client IDs listed more than once are rejected", len(duplicates))
    return entries


def _entry(item: Mapping[str, Any]) -> _Entry:
    roles = tuple(Role(str(r["id"]), r.get("name")) for r in item.get("roles") or ())
    client = RegisteredClient(
        id=str(item["id"]),
        client_id=str(item["clientId"]),
        name=str(item.get("name", "")),
        display_name=str(item.get("displayName", "")),
        roles=roles,
    )
    previous = item.get("previousSecret") or {}
    expires = previous.get("expiresAt")
    expires_at = datetime.fromisoformat(expires) if expires else None
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("previousSecret.expiresAt has no time zone")
    return _Entry(
        client=client,
        hash=str(item["secret"]["hash"]),
        previous_hash=previous.get("hash"),
        previous_expires_at=expires_at,
    )


@functools.lru_cache(maxsize=8)
def _decoy(encoded: str) -> str:
    """What an unknown client ID is checked against, so it costs what a known one does."""
    return decoy_like(encoded) if is_known_hash(encoded) else _CHEAP_DECOY


_CHEAP_DECOY = encode_sha256(bytes(32))


class ClientRegistry(MountedDocument[dict[str, _Entry]]):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, parse_document, {}, "client registry")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClientRegistry:
        return cls(path)

    def __len__(self) -> int:
        return len(self._file.value)

    def verify(
        self, client_id: str, secret: str, now: datetime | None = None
    ) -> RegisteredClient | None:
        """The client if `secret` is its current secret, or its previous one before that
        expires; otherwise None."""
        self._file.refresh()
        entries = self._file.value
        entry = entries.get(client_id)
        if entry is None:
            representative = next(iter(entries.values()), None)
            verify_secret(secret, _decoy(representative.hash) if representative else _CHEAP_DECOY)
            return None
        if verify_secret(secret, entry.hash):
            return entry.client
        moment = now or datetime.now(UTC)
        if (
            entry.previous_hash is not None
            and entry.previous_expires_at is not None
            and moment < entry.previous_expires_at
            and verify_secret(secret, entry.previous_hash)
        ):
            return entry.client
        return None
