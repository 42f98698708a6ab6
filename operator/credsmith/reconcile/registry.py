"""The registry Secret of a namespace: derived from its ApiClients and their Secrets. Pure.

The document is recomputed from the whole set every time (level-based), so a
created, changed or deleted ApiClient needs no finalizer and concurrent changes
cannot lose each other. It holds hashes made when the credential was issued
(stored on each client's Secret); never a secret value.

Its formats are the registry's, not a client's: the union of what its clients ask
(`clients.json` always), and every client is listed in each. A client that cannot be in the
htpasswd file another client turned on (a secret past bcrypt's 72 bytes, a ':' in its client
ID) is left out of it and reported, so it is not Ready.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from credsmith import API_VERSION
from credsmith.api.api_client import ApiClientSpec
from credsmith.api.enums import DeletionPolicy, RegistryFormat
from credsmith.api.status import Reason, format_timestamp
from credsmith.issuing.htpasswd import htpasswd_line, render_htpasswd
from credsmith.reconcile.credential import checked_credential
from credsmith.reconcile.document_size import SizeBudget, registry_full
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.published import Unpublished
from credsmith.reconcile.secret_state import BCRYPT, OWNER, is_ours
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey
from credsmith.reconcile.trust import hash_is_trusted
from credsmith.registry import DOCUMENT_FILE, DOCUMENT_KIND

REGISTRY_KIND = "Registry"  # the owner annotation's kind for registry Secrets
HTPASSWD_FILE = "auth"  # the key ingress-nginx's auth-secret (auth-type basic) reads
HTPASSWD_USERS = "users"  # the same lines, under the key Traefik's basicAuth secret reads

Member = tuple[ResourceSnapshot, SecretSnapshot | None]


@dataclass(frozen=True)
class RegistryDecision:
    secret: Mapping[str, Any] | None  # the manifest to write, or None: up to date
    create: bool
    conflict: bool  # a Secret of that name exists and is not ours
    clients: int
    # Clients left out because an earlier one has their client ID: name -> that one's name.
    duplicates: Mapping[str, str] = field(default_factory=dict)
    # Clients left out of a format the registry holds (htpasswd) -> why.
    left_out: Mapping[str, Unpublished] = field(default_factory=dict)


@dataclass(frozen=True)
class RegistryContents:
    entries: list[dict[str, Any]]  # clients.json
    htpasswd: list[str]  # the `auth` lines of the clients, when any client asks for Htpasswd
    duplicates: dict[str, str]  # left out for an earlier client's client ID -> that client
    wants_htpasswd: bool
    left_out: dict[str, Unpublished] = field(default_factory=dict)  # of `auth`, or full: why
    # The entries as clients.json holds them, each with its place (clientId, id).
    texts: list[tuple[tuple[str, str], str]] = field(default_factory=list)


def registry_entry(
    client: ResourceSnapshot, secret: SecretSnapshot | None, now: datetime, state_key: StateKey
) -> dict[str, Any] | None:
    """One client's clients.json entry (see `_record`)."""
    return _record(client, secret, now, state_key, htpasswd=False)[0]


def registry_formats(clients: Iterable[ResourceSnapshot]) -> frozenset[RegistryFormat]:
    """The formats a registry holds: what any of its clients asks, and clients.json."""
    formats = {RegistryFormat.CLIENTS_JSON}
    for client in clients:
        registry = client.spec.get("registry")
        asked = registry.get("formats") if isinstance(registry, Mapping) else None
        for name in asked if isinstance(asked, list) else ():
            if name in RegistryFormat._value2member_map_:
                formats.add(RegistryFormat(name))
    return frozenset(formats)


def fits_htpasswd(client: ResourceSnapshot) -> bool:
    """Whether the client's (valid) spec can have an htpasswd line."""
    try:
        spec = ApiClientSpec.model_validate(client.spec)
    except ValidationError:
        return False
    return spec.fits_htpasswd()


def _record(
    client: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    state_key: StateKey,
    htpasswd: bool,
) -> tuple[dict[str, Any] | None, str | None]:
    """One client's entry and htpasswd line, or Nones unless its spec is valid, its Secret is
    its own (owner annotation, and ownerReference UID where it is owned), its credential
    passes every check of trust.py (its state authenticated by the operator's MAC, or vouched
    for by status) and each hash is bound to that very value."""
    checked = checked_credential(API_CLIENT, client, secret, now, state_key=state_key)
    if checked is None or secret is None:
        return None, None
    spec, credential = checked
    assert isinstance(spec, ApiClientSpec)
    if spec.registry is None or not _owned_by(secret, client, spec):
        return None, None
    algorithm, state = spec.registry.hash, credential.state
    if state.hash is None or state.client_uuid is None:
        return None, None
    if not hash_is_trusted(state.hash, credential.value, algorithm):
        return None, None
    line = None
    if (
        htpasswd
        and state.htpasswd is not None
        and hash_is_trusted(state.htpasswd, credential.value, BCRYPT)
        and ":" not in credential.client_id
    ):
        line = htpasswd_line(credential.client_id, state.htpasswd.hash)
    entry: dict[str, Any] = {
        "id": state.client_uuid,
        "clientId": credential.client_id,
        "name": client.name,
        "displayName": spec.display_name,
        "roles": [role.to_wire() for role in spec.roles],
        "secret": {"hash": state.hash.hash},
    }
    # Listed exactly as long as the Secret holds the previous value (expiresAt tells a
    # verifier when to stop accepting it, whatever the operator is doing then).
    expires = state.previous_expires_at
    if (
        credential.previous is not None
        and state.previous_hash is not None
        and expires is not None
        and hash_is_trusted(state.previous_hash, credential.previous, algorithm)
    ):
        entry["previousSecret"] = {
            "hash": state.previous_hash.hash,
            "expiresAt": format_timestamp(expires),
        }
    return entry, line


def _owned_by(secret: SecretSnapshot, client: ResourceSnapshot, spec: ApiClientSpec) -> bool:
    if spec.deletion_policy is not DeletionPolicy.DELETE:
        return True
    return any(ref.get("uid") == client.uid for ref in secret.owner_references)


@dataclass(frozen=True)
class CheckedEntry:
    """One member's checked contribution, as `_record` finds it (memoised by EntryMemo)."""

    entry: dict[str, Any] | None  # None: not published (invalid, untrusted, not its Secret)
    line: str | None  # its htpasswd line, when asked and it can have one
    text: str  # the entry as clients.json holds it (indented in the list), or ""
    fits_htpasswd: bool  # False: htpasswd asked, no line, and its spec cannot have one

    @property
    def order(self) -> tuple[str, str]:
        """Where clients.json lists it: by clientId, then id."""
        assert self.entry is not None
        return self.entry["clientId"], self.entry["id"]


def checked_entry(
    client: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    state_key: StateKey,
    htpasswd: bool,
) -> CheckedEntry:
    entry, line = _record(client, secret, now, state_key, htpasswd)
    text = "" if entry is None else entry_text(entry)
    unfit = htpasswd and line is None and entry is not None and not fits_htpasswd(client)
    return CheckedEntry(entry, line, text, not unfit)


class EntryMemo:
    """Each member's checked entry, kept while neither the resource nor its Secret changed
    (their resourceVersions), so a rebuild checks only the members that changed.

    The entry does not depend on the time: the previous hash is listed exactly as long as
    the Secret holds the previous value (its expiresAt tells verifiers when to stop), and
    the Secret's change then makes a new entry. Members without a resourceVersion (never
    from the API) are checked every time.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple[str, str, str, str, bool], CheckedEntry]] = {}
        self.checks = 0  # how many entries were checked, not found here (for tests)

    def get(
        self,
        client: ResourceSnapshot,
        secret: SecretSnapshot | None,
        now: datetime,
        state_key: StateKey,
        ht: bool,
    ) -> CheckedEntry:
        if not client.resource_version:
            self.checks += 1
            return checked_entry(client, secret, now, state_key, ht)
        secret_key = ("", "") if secret is None else (secret.name, secret.resource_version)
        key = (client.uid, client.resource_version, *secret_key, ht)
        found = self._entries.get(client.name)
        if found is not None and found[0] == key:
            return found[1]
        self.checks += 1
        checked = checked_entry(client, secret, now, state_key, ht)
        self._entries[client.name] = (key, checked)
        return checked

    def retain(self, names: Iterable[str]) -> None:
        """Forget members no longer in the registry (bounded by its members)."""
        keep = set(names)
        for name in [name for name in self._entries if name not in keep]:
            del self._entries[name]

    def __len__(self) -> int:
        return len(self._entries)


def registry_contents(
    members: Iterable[Member],
    now: datetime,
    state_key: StateKey,
    name: str = "",
    memo: EntryMemo | None = None,
) -> RegistryContents:
    """One entry per client ID: the earliest client (creationTimestamp, then name) keeps
    it; later ones are left out and reported. Every client in each format the registry
    holds: one that cannot have an htpasswd line is reported. The earliest clients that fit
    the size limit of a Secret are kept, the later ones left out (RegistryFull)."""
    ordered = sorted(members, key=lambda m: (m[0].creation_timestamp, m[0].name))
    wants_htpasswd = RegistryFormat.HTPASSWD in registry_formats(c for c, _ in ordered)
    memo = memo if memo is not None else EntryMemo()
    kept: dict[str, tuple[ResourceSnapshot, CheckedEntry]] = {}
    duplicates: dict[str, str] = {}
    left_out: dict[str, Unpublished] = {}
    budget = SizeBudget(len(render_texts([])) + _FIRST_ENTRY)
    for client, secret in ordered:
        checked = memo.get(client, secret, now, state_key, wants_htpasswd)
        if checked.entry is None:
            continue
        if (first := kept.get(checked.entry["clientId"])) is not None:
            duplicates[client.name] = first[0].name
            continue
        line_bytes = len(checked.line.encode()) + 1 if checked.line is not None else 0
        # Its entry and separator in clients.json, its line in `auth` and in `users`.
        if not budget.admit(len(checked.text) + _SEPARATOR + 2 * line_bytes):
            kept[checked.entry["clientId"]] = (client, _LEFT_OUT)
            left_out[client.name] = registry_full(name)
            continue
        kept[checked.entry["clientId"]] = (client, checked)
        if not checked.fits_htpasswd:
            left_out[client.name] = Unpublished(Reason.INVALID_SPEC, _UNFIT)
    published = [checked for _, checked in kept.values() if checked is not _LEFT_OUT]
    return RegistryContents(
        entries=[checked.entry for checked in published if checked.entry is not None],
        htpasswd=[checked.line for checked in published if checked.line is not None],
        duplicates=duplicates,
        wants_htpasswd=wants_htpasswd,
        left_out=left_out,
        texts=[(checked.order, checked.text) for checked in published],
    )


_LEFT_OUT = CheckedEntry(None, None, "", False)  # keeps its client ID, is not published
_SEPARATOR = len(",\n")  # between entries in the clients list
_FIRST_ENTRY = len("\n  ") + len("\n") - _SEPARATOR  # a non-empty list's brackets, once

_UNFIT = (
    "another client of the registry asks for registry.formats Htpasswd, which lists every "
    "client, and this one cannot be in it: its secret (secret.prefix, secret.length and a "
    "checksum) must fit bcrypt's 72 bytes, and a clientId.value must not contain ':'"
)


def entry_text(entry: Mapping[str, Any]) -> str:
    """The entry as it stands in clients.json's list (two levels in): rendered once."""
    text = json.dumps(entry, indent=2, sort_keys=True)
    return "\n".join("    " + line for line in text.split("\n"))


def render_document(entries: Iterable[Mapping[str, Any]]) -> str:
    """clients.json: stable (sorted, fixed formatting), so an unchanged set is no write."""
    return render_texts(((e["clientId"], e["id"]), entry_text(e)) for e in entries)


def render_texts(texts: Iterable[tuple[tuple[str, str], str]]) -> str:
    """clients.json from its entries' texts (`entry_text`): what json.dumps(indent=2,
    sort_keys=True) makes of the whole document, with the clients sorted by clientId then
    id; built from memoised texts so that a rebuild renders only the changed entries."""
    ordered = [text for _, text in sorted(texts, key=lambda placed: placed[0])]
    clients = "[\n" + ",\n".join(ordered) + "\n  ]" if ordered else "[]"
    return (
        f'{{\n  "apiVersion": {json.dumps(API_VERSION)},\n  "clients": {clients},\n'
        f'  "kind": {json.dumps(DOCUMENT_KIND)}\n}}\n'
    )


def reconcile_registry(
    namespace: str,
    name: str,
    members: Iterable[Member],
    existing: SecretSnapshot | None,
    now: datetime,
    state_key: StateKey,
    memo: EntryMemo | None = None,
) -> RegistryDecision:
    owner = f"{REGISTRY_KIND}/{name}"
    if existing is not None and not is_ours(existing.labels, existing.annotations, owner):
        return RegistryDecision(None, create=False, conflict=True, clients=0)
    contents = registry_contents(members, now, state_key, name, memo)
    entries, duplicates = contents.entries, contents.duplicates
    document = render_texts(contents.texts)
    data = {DOCUMENT_FILE: document}
    if contents.wants_htpasswd:
        data[HTPASSWD_FILE] = data[HTPASSWD_USERS] = render_htpasswd(contents.htpasswd)
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            # Shared by many ApiClients, so owned by none: it outlives each of them.
            "annotations": {OWNER: owner},
        },
        "data": {key: base64.b64encode(text.encode()).decode() for key, text in data.items()},
    }
    left_out = contents.left_out
    if existing is not None and dict(existing.data) == {k: v.encode() for k, v in data.items()}:
        return RegistryDecision(None, False, False, len(entries), duplicates, left_out)
    if existing is not None:
        manifest["metadata"]["resourceVersion"] = existing.resource_version
    return RegistryDecision(manifest, existing is None, False, len(entries), duplicates, left_out)
