"""Documents derived from sets of credentials: a registry Secret (the ApiClients naming it)
and a JWK Set ConfigMap (the KeyPair credentials naming it).

Both are level-based: rebuilt from the whole set whenever a member, a member's Secret or
the document itself changes. Membership is kept from watch events, so a deleted member
still updates its document, with no finalizer. A document of that name that is not ours is
left alone, said once in an Event to each member, and looked at again on a backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credsmith.reconcile.jwks import JWKS_KIND, ConfigMapSnapshot, reconcile_jwks
from credsmith.reconcile.registry import REGISTRY_KIND, reconcile_registry
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
from credsmith.runtime.workqueue import WorkQueue

log = logging.getLogger("credsmith.controller")

DOCUMENT_KINDS = frozenset({REGISTRY_KIND, JWKS_KIND})
# A document of ours that someone else's object blocks: re-checked on a backoff up to this.
CONFLICT_RECHECK = 300.0

Member = tuple[ResourceSnapshot, SecretSnapshot | None]
PostEvent = Callable[[ResourceSnapshot, str, str, str], Awaitable[None]]


@dataclass(frozen=True)
class _Built:
    """One pass over a document, whichever its kind."""

    manifest: Mapping[str, Any] | None  # to write, or None: up to date
    create: bool
    conflict: bool
    summary: str
    duplicates: Mapping[str, str]


class Documents:
    def __init__(
        self,
        kube: Kube,
        kinds: Mapping[str, KindConfig],
        queue: WorkQueue[Key],
        resource: Callable[[Key], ResourceSnapshot | None],
        secret: Callable[[str, str], SecretSnapshot | None],
        remember_secret: Callable[[SecretSnapshot], None],
        post_event: PostEvent,
        state_key: StateKey,
    ) -> None:
        self.kube, self.kinds, self.queue = kube, kinds, queue
        # The registry and JWK Sets publish only credentials whose state it authenticates.
        self._state_key = state_key
        self._resource, self._secret = resource, secret
        self._remember_secret, self._post_event = remember_secret, post_event
        self.members = {REGISTRY_KIND: RegistryMembership(), JWKS_KIND: RegistryMembership()}
        self.config_maps: dict[ObjectKey, ConfigMapSnapshot] = {}
        self._conflicts: set[Key] = set()
        # Per registry: clients left out for an earlier client's client ID -> that client.
        self._duplicates: dict[tuple[str, str], Mapping[str, str]] = {}

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
        return self._duplicates.get((resource.namespace, registry), {}).get(resource.name)

    # ---- reconciling ----------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        kind, namespace, name = key
        members = self._members(kind, namespace, name)
        built = self._build(kind, namespace, name, members, self._existing(kind, namespace, name))
        if kind == REGISTRY_KIND:
            self._note_duplicates(namespace, name, built.duplicates)
        if built.manifest is not None:
            try:
                await self._store(kind, namespace, name, built)
            except ApiError as exc:
                if exc.status != 409 or not built.create:
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
                self._conflicts.discard(key)
                log.info("%s %s/%s: %s", kind, namespace, name, built.summary)
        if built.conflict:
            if key not in self._conflicts:
                self._conflicts.add(key)
                what = "Secret" if kind == REGISTRY_KIND else "ConfigMap"
                message = (
                    f"{what} {name} exists and is not managed by credsmith: it was not changed"
                )
                log.warning("%s %s/%s: %s", kind, namespace, name, message)
                for resource, _ in members:
                    await self._post_event(resource, "Warning", f"{kind}Conflict", message)
            raise RecheckLater(CONFLICT_RECHECK)  # on a backoff, not every 30 s forever

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
            registry = reconcile_registry(namespace, name, members, existing, now, self._state_key)
            summary = f"{registry.clients} clients"
            return _Built(
                registry.secret, registry.create, registry.conflict, summary, registry.duplicates
            )
        assert existing is None or isinstance(existing, ConfigMapSnapshot)
        jwks = reconcile_jwks(namespace, name, members, existing, now, self._state_key)
        return _Built(jwks.config_map, jwks.create, jwks.conflict, f"{jwks.keys} keys", {})

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

    def _note_duplicates(self, namespace: str, registry: str, found: Mapping[str, str]) -> None:
        """Remember which clients the registry left out; a client whose standing changed is
        reconciled again, to say so in its status."""
        before = self._duplicates.get((namespace, registry), {})
        if found:
            self._duplicates[(namespace, registry)] = dict(found)
        else:
            self._duplicates.pop((namespace, registry), None)
        for name in set(before) | set(found):
            if before.get(name) != found.get(name):
                for kind, config in self.kinds.items():
                    if config.registry_of is not None:
                        self.queue.add((kind, namespace, name))
