"""Verify ApiClient credentials in an API server written in Python.

The operator maintains a registry Secret (ApiClient `spec.registry.name`) holding
`clients.json`: for each client its id, client ID, display name, roles and the
hashes of its current secret and, during a rotation overlap, of its previous one.
Mount that Secret into the API server's pod and::

    from credsmith.registry import ClientRegistry

    registry = ClientRegistry.load("/etc/credsmith/registry/clients.json")
    client = registry.verify(client_id, presented_secret)
    if client is None: ...              # 401
    if "reports.read" not in client.role_ids: ...   # 403

`verify` re-reads the file when it changes (kubelet swaps a mounted Secret's
files atomically), compares hashes in constant time, and spends the same work on
an unknown client ID as on a known one, so response times do not tell which IDs
exist.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from credsmith.api.enums import HashAlgorithm
from credsmith.issuing.hashing import hash_secret, verify_secret

DOCUMENT_KIND = "ClientRegistry"
DOCUMENT_FILE = "clients.json"


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
    """Entries by client ID; raises ValueError for a document that is not a registry."""
    document = json.loads(text)
    if not isinstance(document, Mapping) or document.get("kind") != DOCUMENT_KIND:
        raise ValueError(f"not a {DOCUMENT_KIND} document")
    entries: dict[str, _Entry] = {}
    for item in document.get("clients") or ():
        entry = _entry(item)
        entries[entry.client.client_id] = entry
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
    return _Entry(
        client=client,
        hash=str(item["secret"]["hash"]),
        previous_hash=previous.get("hash"),
        previous_expires_at=datetime.fromisoformat(expires) if expires else None,
    )


@functools.cache
def _decoy(algorithm: HashAlgorithm) -> str:
    """What an unknown client ID is checked against, so it costs what a known one does."""
    return hash_secret("credsmith-decoy", algorithm)


class ClientRegistry:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._entries: dict[str, _Entry] = {}
        self.reload_if_changed()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClientRegistry:
        return cls(Path(path))

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed since the last read; True if it did."""
        info = os.stat(self.path)  # follows the ..data symlink of a mounted Secret
        signature = (info.st_ino, info.st_mtime_ns, info.st_size)
        if signature == self._signature:
            return False
        entries = parse_document(self.path.read_text(encoding="utf-8"))
        with self._lock:
            self._entries, self._signature = entries, signature
        return True

    def __len__(self) -> int:
        return len(self._entries)

    def verify(
        self, client_id: str, secret: str, now: datetime | None = None
    ) -> RegisteredClient | None:
        """The client if `secret` is its current secret, or its previous one before that
        expires; otherwise None."""
        self.reload_if_changed()
        entry = self._entries.get(client_id)
        if entry is None:
            verify_secret(secret, _decoy(_algorithm_of_any(self._entries)))
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


def _algorithm_of_any(entries: Mapping[str, _Entry]) -> HashAlgorithm:
    for entry in entries.values():
        if entry.hash.startswith("$argon2id$"):
            return HashAlgorithm.ARGON2ID
        if entry.hash.startswith("pbkdf2-sha256$"):
            return HashAlgorithm.PBKDF2_SHA256
        return HashAlgorithm.SHA256
    return HashAlgorithm.SHA256
