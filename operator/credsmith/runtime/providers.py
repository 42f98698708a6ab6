"""The provider controller: IdentityProviders and ClusterIdentityProviders, their clients,
their status, and the clean-up of clients whose credential is gone.

Informers keep both kinds (and, for ClusterIdentityProviders' allowedNamespaces, the
namespaces' labels) in memory, so a credential's pass finds its provider without a request.
A provider's key goes through the controller's work queue like any other: its pass builds
(or rebuilds, when its spec or admin Secret changed) the admin client, checks it, cleans up
when due, writes status only, and comes back at the next resync, or on a backoff while it
fails. Clean-up is level-based (no finalizers): at the first pass after the caches synced,
every resync, and a few seconds after a credential naming the provider is deleted; the
clean-up itself (list, re-check, delete, report) is runtime/provider_cleanup.py, which
credentials name which provider runtime/provider_index.py, and the status write
runtime/provider_writes.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from credsmith import GROUP, VERSION
from credsmith.api.status import Reason
from credsmith.providers.base import (
    IdentityProviderClient,
    ProviderError,
    ProviderReason,
)
from credsmith.providers.cleanup import still_serves
from credsmith.reconcile.provider_status import CleanupOutcome
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.backoff import RetryLimiter
from credsmith.runtime.informer import Informer, ObjectKey
from credsmith.runtime.kinds import Key
from credsmith.runtime.kube import Kube
from credsmith.runtime.provider_cleanup import clean_up, report_failed
from credsmith.runtime.provider_clients import Built, ClientFactory
from credsmith.runtime.provider_index import CredentialIndex
from credsmith.runtime.provider_kinds import (
    CLUSTER_IDENTITY_PROVIDER,
    IDENTITY_PROVIDER,
    PROVIDER_KINDS,
    PROVIDER_PLURALS,
    NamespaceSnapshot,
    ProviderOptions,
    provider_name,
    resync_of,
)
from credsmith.runtime.provider_writes import write_status
from credsmith.runtime.registration_memo import RegistrationMemo
from credsmith.runtime.url_allow import URL_NOT_ALLOWED, disallowed_url

log = logging.getLogger("credsmith.providers")

# Deletions of credentials within this many seconds make one clean-up.
CLEANUP_DEBOUNCE = 5.0
# A failing provider is checked again at most this far apart (and within its resync).
RETRY_CAP = 60.0


@dataclass
class _State:
    """What this process knows of one provider resource (by key; reset on a new uid)."""

    uid: str
    built: Built | None = None
    ready: bool | None = None
    reason: str = ""
    message: str = ""
    next_cleanup: float = 0.0  # wall clock; 0: at the next pass
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Providers:
    def __init__(
        self,
        kube: Kube,
        queue_add: Callable[[Key], None],
        queue_add_at: Callable[[Key, float], None],
        credential: Callable[[Key], ResourceSnapshot | None],
        options: ProviderOptions,
        ready_gauge: Callable[[Key, bool | None], None] | None = None,
    ) -> None:
        self.kube = kube
        self._add, self._add_at = queue_add, queue_add_at
        self.url_allow = tuple(options.url_allow)
        self.watched_namespaces = frozenset(options.watched_namespaces)
        self.cluster_kinds = options.cluster_kinds
        self.factory = ClientFactory(kube, options.operator_namespace)
        self._ready_gauge = ready_gauge
        self.memo = RegistrationMemo()
        self.resources: dict[str, dict[ObjectKey, ResourceSnapshot]] = {
            kind: {} for kind in PROVIDER_KINDS
        }
        self.namespaces: dict[ObjectKey, NamespaceSnapshot] = {}
        self._states: dict[Key, _State] = {}
        self.index = CredentialIndex(credential)
        self._written: dict[Key, str] = {}  # our last status patch's resourceVersion
        self._generations: dict[Key, int] = {}  # each provider's last seen generation
        self._retries: RetryLimiter[Key] = RetryLimiter(base=1.0, cap=RETRY_CAP)

    # ---- watching -----------------------------------------------------------------

    def informers(self, namespaces: Sequence[str]) -> list[Informer[Any]]:
        """IdentityProviders where credentials are watched; ClusterIdentityProviders and
        namespaces (for allowedNamespaces) cluster-wide."""
        base = f"/apis/{GROUP}/{VERSION}"
        plural = PROVIDER_PLURALS[IDENTITY_PROVIDER]
        found: list[Informer[Any]] = [
            self._informer(IDENTITY_PROVIDER, f"{base}/namespaces/{ns}/{plural}", ns)
            for ns in namespaces
        ] or [self._informer(IDENTITY_PROVIDER, f"{base}/{plural}", None)]
        if not self.cluster_kinds:
            return found
        found.append(
            self._informer(
                CLUSTER_IDENTITY_PROVIDER,
                f"{base}/{PROVIDER_PLURALS[CLUSTER_IDENTITY_PROVIDER]}",
                None,
            )
        )
        found.append(
            Informer(
                self.kube.watches,
                "/api/v1/namespaces",
                NamespaceSnapshot.from_api,
                self._namespace_changed,
                cache=self.namespaces,
            )
        )
        return found

    def _informer(self, kind: str, path: str, namespace: str | None) -> Informer[Any]:
        def changed(type_: str, body: Mapping[str, Any], resource: ResourceSnapshot) -> None:
            self._provider_changed(kind, type_, resource)

        return Informer(
            self.kube.watches,
            path,
            ResourceSnapshot.from_api,
            changed,
            cache=self.resources[kind],
            namespace=namespace,
        )

    def _provider_changed(self, kind: str, type_: str, resource: ResourceSnapshot) -> None:
        key = (kind, resource.namespace, resource.name)
        if self._written.pop(key, None) == resource.resource_version:
            return  # the echo of our own status patch
        state = self._states.get(key)
        # A new spec (allowedNamespaces opened or closed, another address) changes what
        # its credentials' passes decide: a refused one would wait for nothing else.
        before = self._generations.pop(key, None)
        if type_ != "DELETED":
            self._generations[key] = resource.generation
        if (
            type_ == "DELETED"
            or state is None
            or state.uid != resource.uid
            or (before is not None and before != resource.generation)
        ):
            self._requeue_credentials(key)
        self._add(key)

    def _namespace_changed(
        self, type_: str, body: Mapping[str, Any], namespace: NamespaceSnapshot
    ) -> None:
        # Its labels may now select it for a ClusterIdentityProvider, or no longer.
        for credential in self.index.naming(CLUSTER_IDENTITY_PROVIDER, namespace.name):
            self._add(credential)

    def credential_changed(self, key: Key, type_: str, resource: ResourceSnapshot) -> None:
        """A credential's watch event: keep the index; a deletion schedules the clean-up
        of its provider (a few seconds later, so that a bulk deletion makes one)."""
        if (old := self.index.changed(key, type_, resource)) is not None:
            # Deleted, or names another provider now: its client here goes.
            if (state := self._states.get(old)) is not None:
                state.next_cleanup = 0.0
            self._add_at(old, time.time() + CLEANUP_DEBOUNCE)

    def credentials_of(self, provider: Key) -> list[Key]:
        return self.index.credentials_of(provider)

    def _requeue_credentials(self, provider: Key) -> None:
        for credential in self.credentials_of(provider):
            self._add(credential)

    # ---- what a credential's pass reads -------------------------------------------

    def provider(self, key: Key) -> ResourceSnapshot | None:
        kind, namespace, name = key
        return self.resources[kind].get((namespace, name))

    def namespace_labels(self, namespace: str) -> Mapping[str, str]:
        found = self.namespaces.get(("", namespace))
        return found.labels if found is not None else {}

    def readiness(self, key: Key) -> tuple[bool | None, str, str]:
        """The provider's last check: (ready or None when not checked yet, reason, message)."""
        state = self._states.get(key)
        if state is None:
            return None, "", ""
        return state.ready, state.reason, state.message

    async def client(self, key: Key) -> IdentityProviderClient:
        """The provider's admin client, built now if this process has none yet. Raises
        ProviderError when it cannot be used (URL not allowed, admin Secret missing)."""
        resource = self.provider(key)
        if resource is None:
            raise ProviderError(ProviderReason.ERROR, f"{key[0]} {provider_name(key)} not found")
        state = await self._state(key, resource)
        async with state.lock:
            if (url := disallowed_url(resource.spec, self.url_allow)) is not None:
                await self._drop_client(state)
                raise ProviderError(ProviderReason.URL_NOT_ALLOWED, _not_allowed(url))
            if state.built is None:
                await self._refresh_client(key, resource, state)
            assert state.built is not None
            return state.built.client

    def failed(self, key: Key, error: ProviderError) -> None:
        """A credential's call failed: check the provider soon (its Ready says so, and
        a refused login re-reads the admin Secret)."""
        state = self._states.get(key)
        if state is not None and state.ready is not False:
            self._add(key)

    # ---- the provider's pass ------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        resource = self.provider(key)
        if resource is None:
            await self._forget(key)
            return
        state = await self._state(key, resource)
        resync = resync_of(resource)
        now = time.time()
        clients: int | None = None
        cleanup: CleanupOutcome | None = None
        async with state.lock:
            try:
                if (url := disallowed_url(resource.spec, self.url_allow)) is not None:
                    await self._drop_client(state)
                    raise ProviderError(ProviderReason.URL_NOT_ALLOWED, _not_allowed(url))
                built = await self._refresh_client(key, resource, state)
                await built.client.check()
                if now >= state.next_cleanup:
                    clients, cleanup = await self._clean_up(key, resource, built.client)
                    state.next_cleanup = now + resync
                ready, reason, message = True, Reason.PROVIDER_READY.value, _connected(resource)
            except ProviderError as exc:
                ready, reason, message = False, exc.reason.value, exc.message
        changed = state.ready != ready or state.reason != reason
        state.ready, state.reason, state.message = ready, reason, message
        if changed:
            self._requeue_credentials(key)  # their Registered follows the provider's state
            log.log(
                logging.INFO if ready else logging.WARNING,
                "%s %s: %s: %s", key[0], provider_name(key), reason, message,
            )  # fmt: skip
        if self._ready_gauge is not None:
            self._ready_gauge(key, ready)
        if cleanup is not None and cleanup.failed:
            await report_failed(self.kube, key, resource, cleanup)
        written = await write_status(
            self.kube, key, resource, ready, reason, message, clients, cleanup
        )
        if written is not None:
            self._written[key] = written
        if ready:
            self._retries.forget(key)
            self._add_at(key, state.next_cleanup)
        elif reason != URL_NOT_ALLOWED:  # that one waits for a change of the spec
            delay = min(self._retries.when(key), resync)
            self._add_at(key, time.time() + delay)

    async def _refresh_client(self, key: Key, resource: ResourceSnapshot, state: _State) -> Built:
        """The client, rebuilt when what it is built from changed (spec, admin Secret)."""
        inputs = await self.factory.inputs(resource.namespace, resource.spec)
        fingerprint = self.factory.fingerprint(inputs)
        if state.built is None or state.built.fingerprint != fingerprint:
            rebuilt = state.built is not None
            await self._drop_client(state)
            state.built = self.factory.built(resource.namespace, resource.spec, inputs)
            self.memo.forget_provider(resource.uid)  # a new client: check every client again
            if rebuilt:
                # Another address or admin login: now, not at each credential's resync
                # (a provider moved to another Hydra holds none of our clients yet).
                self._requeue_credentials(key)
            log.debug("%s %s: admin client built", key[0], provider_name(key))
        return state.built

    async def _clean_up(
        self, key: Key, resource: ResourceSnapshot, client: IdentityProviderClient
    ) -> tuple[int, CleanupOutcome]:
        """runtime/provider_cleanup.py's clean-up, with this controller's view of the owners."""

        def serves(namespace: str) -> bool:
            return self._still_serves(key, resource, namespace)

        return await clean_up(
            key,
            resource,
            client,
            lambda: self.index.live_owners(key, serves),
            lambda uid: self.index.live_owner(key, uid, serves),
            self._watched,
            lambda client_id, owner_uid: self._deleted(resource, client_id, owner_uid),
        )

    def _deleted(self, resource: ResourceSnapshot, client_id: str, owner_uid: str) -> None:
        """A client the clean-up deleted: should its credential name this provider again,
        the memo must not say the provider still holds it. A credential that lives (it
        holds another client, or names another provider resource, which may have adopted
        this client between the re-read and the delete: Hydra has no conditional delete)
        has its pass now, which makes the provider hold what it must, not at the resync."""
        self.memo.forget_client(resource.uid, client_id)
        credential = self.index.with_uid(owner_uid)
        if credential is None:
            return
        named = self.index.provider_of(credential)
        if named is not None and (other := self.provider(named)) is not None:
            self.memo.forget_client(other.uid, client_id)
        self._add(credential)

    def _still_serves(self, key: Key, resource: ResourceSnapshot, namespace: str) -> bool:
        if key[0] != CLUSTER_IDENTITY_PROVIDER:
            return True  # an IdentityProvider is named from its own namespace only
        found = self.namespaces.get(("", namespace))
        return still_serves(resource.spec, found.labels if found is not None else None)

    def _watched(self, namespace: str) -> bool:
        return not self.watched_namespaces or namespace in self.watched_namespaces

    async def _state(self, key: Key, resource: ResourceSnapshot) -> _State:
        """Its state; a new one when the resource was replaced (deleted, created again)."""
        state = self._states.get(key)
        if state is None or state.uid != resource.uid:
            if state is not None:
                self.memo.forget_provider(state.uid)
                await self._drop_client(state)
            state = self._states[key] = _State(resource.uid)
        return state

    async def _drop_client(self, state: _State) -> None:
        if state.built is not None:
            built, state.built = state.built, None
            await built.client.close()

    async def _forget(self, key: Key) -> None:
        state = self._states.pop(key, None)
        self._written.pop(key, None)
        self._retries.forget(key)
        if self._ready_gauge is not None:
            self._ready_gauge(key, None)
        if state is not None:
            self.memo.forget_provider(state.uid)
            await self._drop_client(state)
        self._requeue_credentials(key)

    async def close(self) -> None:
        """Release every client's connections (on shutdown)."""
        for state in self._states.values():
            await self._drop_client(state)


def _not_allowed(url: str) -> str:
    return f"{url} is outside the operator's --identity-provider-url-allow prefixes; not called"


def _connected(resource: ResourceSnapshot) -> str:
    hydra = resource.spec.get("hydra")
    if isinstance(hydra, Mapping):
        return f"reached and authenticated at {hydra.get('adminURL', '')}"
    keycloak = resource.spec.get("keycloak") or {}
    return f"reached and authenticated at {keycloak.get('url', '')}, realm {keycloak.get('realm')}"
