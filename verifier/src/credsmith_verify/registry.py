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
atomically) and compares hashes in constant time. Every call does the same work, whatever
the client ID: for each kind of hash the registry holds (scheme and costs), one check of a
current and one of a previous secret, against the client's own hashes where it has them and
against decoys of that kind otherwise. So response times tell neither which client IDs
exist, nor which clients are in a rotation overlap, nor which hash a client has.

An entry whose hash is not a known string, or has costs below what the operator writes
(`credsmith_verify.hashes.MIN_*`), is left out with a warning: that client does not verify.

A missing or unparsable file never raises: the registry keeps the last good document (and
logs a warning on the ``credsmith_verify`` logger), or, before any good document was read,
serves an empty one that rejects every client. `loaded` tells a readiness probe which.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credsmith_verify._watched import MountedDocument
from credsmith_verify.hashes import (
    CostClass,
    cost_class,
    decoy_like,
    encode_sha256,
    verify_secret,
)

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
    # The costs of `hash` and `previous_hash`, found when the document is read: parsing them
    # on each call would make a known client's call slower than an unknown one's.
    classes: tuple[CostClass | None, CostClass | None] = (None, None)

    def cost_classes(self) -> tuple[CostClass | None, CostClass | None]:
        return self.classes


@dataclass(frozen=True)
class _Indexed:
    """A parsed document, with one decoy per kind of hash it holds."""

    entries: Mapping[str, _Entry]
    # Sorted by cost class; every verify checks a current and a previous slot of each.
    decoys: tuple[tuple[CostClass, str], ...]


def parse_document(text: str) -> dict[str, _Entry]:
    """Entries by client ID; raises ValueError (or KeyError, TypeError) for a document that
    is not a registry. A client ID listed twice is left out: neither entry verifies. So is
    an entry with a hash that is not a known string with the operator's costs or more."""
    document = json.loads(text)
    if not isinstance(document, Mapping) or document.get("kind") != DOCUMENT_KIND:
        raise ValueError(f"not a {DOCUMENT_KIND} document")
    entries: dict[str, _Entry] = {}
    duplicates: set[str] = set()
    malformed = 0
    for item in document.get("clients") or ():
        entry = _entry(item)
        current, previous = entry.cost_classes()
        if current is None or (entry.previous_hash is not None and previous is None):
            malformed += 1
            continue
        client_id = entry.client.client_id
        if client_id in entries:
            duplicates.add(client_id)
        entries[client_id] = entry
    for client_id in duplicates:
        del entries[client_id]
    if duplicates:
        logger.warning("%d client IDs listed more than once are rejected", len(duplicates))
    if malformed:
        logger.warning("%d entries with malformed or too weak hashes are rejected", malformed)
    return entries


def _index(text: str) -> _Indexed:
    entries = parse_document(text)
    classes = {c for e in entries.values() for c in e.cost_classes() if c is not None}
    decoys = tuple((c, _decoy(c, entries.values())) for c in sorted(classes))
    return _Indexed(entries, decoys or ((_CHEAP_CLASS, _CHEAP_DECOY),))


def _decoy(cost: CostClass, entries: Iterable[_Entry]) -> str:
    """A decoy of that cost class, from the first hash of it."""
    for entry in entries:
        for encoded in (entry.hash, entry.previous_hash):
            if encoded is not None and cost_class(encoded) == cost:
                return _decoy_like(encoded)
    raise AssertionError("a cost class comes from an entry")


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
    current_hash, previous_hash = str(item["secret"]["hash"]), previous.get("hash")
    return _Entry(
        client=client,
        hash=current_hash,
        previous_hash=previous_hash,
        previous_expires_at=expires_at,
        classes=(
            cost_class(current_hash),
            None if previous_hash is None else cost_class(previous_hash),
        ),
    )


@functools.lru_cache(maxsize=32)
def _decoy_like(encoded: str) -> str:
    return decoy_like(encoded)


_CHEAP_DECOY = encode_sha256(bytes(32))
_CHEAP_CLASS = cost_class(_CHEAP_DECOY) or ("sha256", 0, 0, 0, 32)


class ClientRegistry(MountedDocument[_Indexed]):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(
            path, _index, _Indexed({}, ((_CHEAP_CLASS, _CHEAP_DECOY),)), "client registry"
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ClientRegistry:
        return cls(path)

    def __len__(self) -> int:
        return len(self._file.value.entries)

    def verify(
        self, client_id: str, secret: str, now: datetime | None = None
    ) -> RegisteredClient | None:
        """The client if `secret` is its current secret, or its previous one before that
        expires; otherwise None. The same work for every call (see the module's doc)."""
        self._file.refresh()
        document = self._file.value
        entry = document.entries.get(client_id)
        current_class, previous_class = (None, None) if entry is None else entry.cost_classes()
        moment = now or datetime.now(UTC)
        matched = False
        for cost, decoy in document.decoys:
            # No early exit: each slot of each class is checked, the client's own hash or a decoy.
            own = entry.hash if entry is not None and current_class == cost else None
            matched |= verify_secret(secret, own or decoy) and own is not None
            previous = None
            if entry is not None and previous_class == cost:
                expires = entry.previous_expires_at
                if expires is not None and moment < expires:
                    previous = entry.previous_hash
            matched |= verify_secret(secret, previous or decoy) and previous is not None
        return entry.client if entry is not None and matched else None
