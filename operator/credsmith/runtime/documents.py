"""Documents derived from sets of credentials: a registry Secret (the ApiClients naming it)
and a JWK Set ConfigMap (the KeyPair credentials naming it).

Both are level-based: rebuilt from the whole set whenever a member, a member's Secret or
the document itself changes. Membership is kept from watch events, so a deleted member
still updates its document, with no finalizer. A document of that name that is not ours is
left alone and looked at again on a backoff; while it is there, or while the API server
refuses the document's write, every member is Ready=False (reconcile/published.py) with
the reason, and Ready again after the next good write, with no restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credsmith.api.enums import RegistryFormat
from credsmith.api.status import Reason
from credsmith.reconcile.document_size import jwks_full
from credsmith.reconcile.jwks import JWKS_KIND, ConfigMapSnapshot, reconcile_jwks
from credsmith.reconcile.published import Unpublished
from credsmith.reconcile.registry import (
    REGISTRY_KIND,
    EntryMemo,
    fits_htpasswd,
    reconcile_registry,
    registry_formats,
)
from credsmith.reconcile.secret_state import OWNER
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey
from credsmith.runtime.failures import RecheckLater
from credsmith.runtime.informer import Informer, ObjectKey
from credsmith.runtime.kinds import Key, KindConfig
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.membership import RegistryMembership
from credsmith.runtime.refusals import SecretWriteRefused, classify, secret_values
from credsmith.runtime.workqueue import WorkQueue

log = logging.getLogger("credsmith.controller")

DOCUMENT_KINDS = frozenset({REGISTRY_KIND, JWKS_KIND})
# A document of ours that someone else's object blocks: re-checked on a backoff up to this.
CONFLICT_RECHECK = 300.0
# At most one write of a document a second: a bulk of N members makes a few large writes,
# not N (each a whole document, up to 1 MiB, sent and stored, and a watch event to all).
WRITE_INTERVAL = 1.0
_WHAT = {REGISTRY_KIND: "registry Secret", JWKS_KIND: "JWK Set ConfigMap"}
_CONFLICT = {REGISTRY_KIND: Reason.REGISTRY_CONFLICT, JWKS_KIND: Reason.JWKS_CONFLICT}

Member = tuple[ResourceSnapshot, SecretSnapshot | None]


@dataclass(frozen=True)
class _Built:
    """One pass over a document, whichever its kind."""

    manifest: Mapping[str, Any] | None  # to write, or None: up to date
    create: bool
    conflict: bool
    summary: str
    duplicates: Mapping[str, str]
    left_out: Mapping[str, Unpublished]


class Documents:
    def __init__(
        self,
        kube: Kube,
        kinds: Mapping[str, KindConfig],
        queue: WorkQueue[Key],
        resource: Callable[[Key], ResourceSnapshot | None],
        secret: Callable[[str, str], SecretSnapshot | None],
        remember_secret: Callable[[SecretSnapshot], None],
        state_key: StateKey,
    ) -> None:
        self.kube, self.kinds, self.queue = kube, kinds, queue
        # The registry and JWK Sets publish only credentials whose state it authenticates.
        self._state_key = state_key
        self._resource, self._secret = resource, secret
        self._remember_secret = remember_secret
        self.members = {REGISTRY_KIND: RegistryMembership(), JWKS_KIND: RegistryMembership()}
        self.config_maps: dict[ObjectKey, ConfigMapSnapshot] = {}
        # Documents that could not be written, and why (shown on each member).
        self._blocked: dict[Key, Unpublished] = {}
        # ... and the members already reconciled to say so (a member that joins a blocked
        # document must be told too, though the reason is unchanged).
        self._told: dict[Key, frozenset[Key]] = {}
        # Per registry: clients left out for an earlier one's client ID -> that client.
        self._duplicates: dict[Key, Mapping[str, str]] = {}
        # Per document: members it leaves out for another reason -> why.
        self._left_out: dict[Key, Mapping[str, Unpublished]] = {}
        # Per registry: the formats it holds (a change makes every client look again).
        self._formats: dict[Key, frozenset[RegistryFormat]] = {}
        # Per registry: its members' checked entries, so a rebuild checks only the changed.
        self._memos: dict[Key, EntryMemo] = {}

    # ---- watching -----------------------------------------------------------------

    def informers(self, scope: str, namespace: str | None) -> list[Informer[Any]]:
        """The JWK Set ConfigMaps we manage (by label), if any kind publishes keys."""
        if not any(config.jwks_of is not None for config in self.kinds.values()):
            return []
        return [
            Informer(
                self.kube.watches,
                f"/api/v1{scope}/configmaps",
                ConfigMapSnapshot.from_api,
                self._config_map_changed,
                label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}",
                cache=self.config_maps,
                namespace=namespace,
            )
        ]

    def _config_map_changed(
        self, type_: str, body: Mapping[str, Any], config_map: ConfigMapSnapshot
    ) -> None:
        kind, _, name = config_map.annotations.get(OWNER, "").partition("/")
        if kind == JWKS_KIND and name:
            self.queue.add((JWKS_KIND, config_map.namespace, name))

    def secret_changed(self, owner_kind: str, namespace: str, owner_name: str) -> None:
        """A Secret we manage changed: a member's (its documents follow) or a registry's."""
        if owner_kind in self.kinds:
            for kind, members in self.members.items():
                if document := members.registry_of(namespace, owner_name):
                    self.queue.add((kind, namespace, document))
        elif owner_kind == REGISTRY_KIND:
            self.queue.add((REGISTRY_KIND, namespace, owner_name))

    def resource_changed(
        self, config: KindConfig, type_: str, body: Mapping[str, Any], namespace: str, name: str
    ) -> None:
        for kind, named in ((REGISTRY_KIND, config.registry_of), (JWKS_KIND, config.jwks_of)):
            if named is None:
                continue
            document = None if type_ == "DELETED" else named(body)
            for changed in self.members[kind].update(namespace, name, document):
                self.queue.add((kind, namespace, changed))

    def duplicate_of(self, config: KindConfig, resource: ResourceSnapshot) -> str | None:
        """An earlier client of the resource's registry with its client ID, if any."""
        if config.registry_of is None:
            return None
        registry = self.members[REGISTRY_KIND].registry_of(resource.namespace, resource.name)
        if registry is None:
            return None
        key = (REGISTRY_KIND, resource.namespace, registry)
        return self._duplicates.get(key, {}).get(resource.name)

    def unpublished(self, config: KindConfig, resource: ResourceSnapshot) -> list[Unpublished]:
        """Why the resource's documents do not publish it, if they do not: a document that
        cannot be written, or one that leaves it out (an earlier credential with its client
        ID in a JWK Set, an htpasswd line it cannot have)."""
        found = []
        for key in self._documents_of(config, resource):
            if (blocked := self._blocked.get(key)) is not None:
                found.append(blocked)
            if (left_out := self._left_out.get(key, {}).get(resource.name)) is not None:
                found.append(left_out)
        return found

    def registry_htpasswd(self, config: KindConfig, resource: ResourceSnapshot) -> bool:
        """Whether the resource's registry holds Htpasswd (any client asks for it) and the
        resource can be in it: then it keeps a bcrypt hash, whatever it asks itself."""
        for kind, namespace, name in self._documents_of(config, resource):
            if kind == REGISTRY_KIND:
                formats = self._formats.get((kind, namespace, name))
                if formats is None:  # the registry was not built yet: its members say
                    clients = [client for client, _ in self._members(kind, namespace, name)]
                    formats = registry_formats(clients)
                return RegistryFormat.HTPASSWD in formats and fits_htpasswd(resource)
        return False

    def _documents_of(self, config: KindConfig, resource: ResourceSnapshot) -> list[Key]:
        keys = []
        for kind, named in ((REGISTRY_KIND, config.registry_of), (JWKS_KIND, config.jwks_of)):
            if named is None:
                continue
            document = self.members[kind].registry_of(resource.namespace, resource.name)
            if document is not None:
                keys.append((kind, resource.namespace, document))
        return keys

    # ---- reconciling ----------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        kind, namespace, name = key
        members = self._members(kind, namespace, name)
        built = self._build(kind, namespace, name, members, self._existing(kind, namespace, name))
        self._note(self._duplicates, key, built.duplicates)
        self._note(self._left_out, key, built.left_out)
        if kind == REGISTRY_KIND:
            formats = registry_formats(resource for resource, _ in members)
            if self._formats.get(key, formats) != formats:
                for resource, _ in members:  # each keeps the hashes the registry needs
                    self.queue.add((resource.kind, namespace, resource.name))
            self._formats[key] = formats
        if built.manifest is not None:
            try:
                await self._store(kind, namespace, name, built)
            except ApiError as exc:
                if exc.status != 409 or not built.create:
                    self._refused(key, members, built, exc)
                    raise
                # Taken by an object we do not cache: someone else's (we watch only our
                # own), or ours created a moment ago. Look at it once.
                found = await self._get(kind, namespace, name)
                if found is None:
                    raise
                built = self._build(kind, namespace, name, members, found)
                if not built.conflict:
                    raise  # ours after all, created meanwhile: retry from the cache
            else:
                log.info("%s %s/%s: %s", kind, namespace, name, built.summary)
                # Coalesced: the changes of a bulk meanwhile make one write a second later.
                self.queue.hold_until(key, time.time() + WRITE_INTERVAL)
        if built.conflict:
            what = "Secret" if kind == REGISTRY_KIND else "ConfigMap"
            message = (
                f"{what} {name} exists and is not managed by credsmith, so no server can check "
                f"this credential in it: it was not changed. Delete or rename that {what}."
            )
            if key not in self._blocked:
                log.warning("%s %s/%s: %s", kind, namespace, name, message)
            self._block(key, members, Unpublished(_CONFLICT[kind], message))
            raise RecheckLater(CONFLICT_RECHECK)  # on a backoff, not every 30 s forever
        self._block(key, members, None)

    def _refused(self, key: Key, members: Sequence[Member], built: _Built, exc: ApiError) -> None:
        """A write the API server refuses for good blocks the members until it passes."""
        assert built.manifest is not None
        values = secret_values(built.manifest)
        refusal = classify(exc, values)
        if not refusal.permanent:
            return
        message = f"the {_WHAT[key[0]]} {key[2]} could not be written: {refusal.message}"
        self._block(key, members, Unpublished(refusal.reason, message))
        if key[0] == REGISTRY_KIND:
            raise SecretWriteRefused.of(exc, values) from exc  # retried as refused for good

    def _block(self, key: Key, members: Sequence[Member], blocked: Unpublished | None) -> None:
        """Remember why the document is blocked (None: it is not); members whose standing
        changes are reconciled again, to say so in their status: all of them when the
        reason changes, else those that joined since (a member issued while the document
        was already blocked would otherwise keep saying Ready)."""
        before = self._blocked.get(key)
        told = self._told.get(key, frozenset())
        names = frozenset(
            (resource.kind, resource.namespace, resource.name) for resource, _ in members
        )
        if blocked is None:
            self._blocked.pop(key, None)
            self._told.pop(key, None)
        else:
            self._blocked[key] = blocked
            self._told[key] = names
        for member in sorted(names if before != blocked else names - told):
            self.queue.add(member)

    def _members(self, kind: str, namespace: str, name: str) -> list[Member]:
        members = []
        for member in self.members[kind].members(namespace, name):
            for config in self.kinds.values():
                named = config.registry_of if kind == REGISTRY_KIND else config.jwks_of
                if named is None:
                    continue
                resource = self._resource((config.kind, namespace, member))
                if resource is not None:
                    members.append(
                        (resource, self._secret(namespace, config.secret_name(resource)))
                    )
        return members

    def _existing(
        self, kind: str, namespace: str, name: str
    ) -> SecretSnapshot | ConfigMapSnapshot | None:
        if kind == REGISTRY_KIND:
            return self._secret(namespace, name)
        return self.config_maps.get((namespace, name))

    def _build(
        self,
        kind: str,
        namespace: str,
        name: str,
        members: Sequence[Member],
        existing: SecretSnapshot | ConfigMapSnapshot | None,
    ) -> _Built:
        now = datetime.now(UTC)
        if kind == REGISTRY_KIND:
            assert existing is None or isinstance(existing, SecretSnapshot)
            memo = self._memos.setdefault((kind, namespace, name), EntryMemo())
            registry = reconcile_registry(
                namespace, name, members, existing, now, self._state_key, memo
            )
            memo.retain(resource.name for resource, _ in members)
            if not members:
                self._memos.pop((kind, namespace, name), None)
            summary = f"{registry.clients} clients"
            return _Built(
                registry.secret,
                registry.create,
                registry.conflict,
                summary,
                registry.duplicates,
                registry.left_out,
            )
        assert existing is None or isinstance(existing, ConfigMapSnapshot)
        jwks = reconcile_jwks(namespace, name, members, existing, now, self._state_key)
        left_out = {
            member: Unpublished(
                Reason.DUPLICATE_CLIENT_ID,
                f"its client ID is also used by {first} (created earlier) in JWK Set {name}: "
                "only that one's keys are published",
            )
            for member, first in jwks.duplicates.items()
        }
        left_out.update((member, jwks_full(name)) for member in jwks.full)
        return _Built(
            jwks.config_map, jwks.create, jwks.conflict, f"{jwks.keys} keys", {}, left_out
        )

    async def _store(self, kind: str, namespace: str, name: str, built: _Built) -> None:
        assert built.manifest is not None
        if kind == JWKS_KIND:
            if built.create:
                await self.kube.create_config_map(namespace, built.manifest)
            else:
                await self.kube.replace_config_map(namespace, name, built.manifest)
            return
        written = await (
            self.kube.create_secret(namespace, built.manifest)
            if built.create
            else self.kube.replace_secret(namespace, name, built.manifest)
        )
        self._remember_secret(SecretSnapshot.from_api(written))

    async def _get(
        self, kind: str, namespace: str, name: str
    ) -> SecretSnapshot | ConfigMapSnapshot | None:
        if kind == REGISTRY_KIND:
            found = await self.kube.get_secret(namespace, name)
            return None if found is None else SecretSnapshot.from_api(found)
        found = await self.kube.get_config_map(namespace, name)
        return None if found is None else ConfigMapSnapshot.from_api(found)

    def _note(
        self, notes: dict[Key, Mapping[str, Any]], key: Key, found: Mapping[str, Any]
    ) -> None:
        """Remember which members the document left out (and why); a member whose standing
        changed is reconciled again, to say so in its status."""
        document_kind, namespace, _ = key
        before = notes.get(key, {})
        if found:
            notes[key] = dict(found)
        else:
            notes.pop(key, None)
        for name in set(before) | set(found):
            if before.get(name) != found.get(name):
                for kind, config in self.kinds.items():
                    named = config.registry_of if document_kind == REGISTRY_KIND else config.jwks_of
                    if named is not None:
                        self.queue.add((kind, namespace, name))
