"""The control loop: watch events become queued keys; workers reconcile a key at a time.

kopf supplies the watches and, through its indexes, in-memory caches of the
resources and of the Secrets we manage (filtered server-side by label). kopf runs
no handler until every index has its initial listing, so a worker never mistakes a
Secret it has not seen yet for a missing one. Handlers persist nothing: no kopf
annotations, no finalizers, no status fields of kopf's own.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf

from credsmith import GROUP, VERSION
from credsmith.reconcile.registry import REGISTRY_KIND, reconcile_registry
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Decision,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.membership import RegistryMembership
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.workqueue import WorkQueue

log = logging.getLogger("credsmith.controller")

Key = tuple[str, str, str]  # (kind, namespace, name)
Reconcile = Callable[[ResourceSnapshot, SecretSnapshot | None, datetime], Decision]

# Annotation on every Secret we write: "<Kind>/<name>" of the resource it belongs to.
OWNER_ANNOTATION = f"{GROUP}/owner"

RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

# Tests set this to make the process exit right after a Secret write, before status.
CRASH_AFTER_SECRET_WRITE = "CREDSMITH_FAULT_CRASH_AFTER_SECRET_WRITE"
CRASH_EXIT_CODE = 70


@dataclass(frozen=True)
class KindConfig:
    kind: str
    plural: str
    reconcile: Reconcile
    secret_name: Callable[[ResourceSnapshot], str]
    # For kinds listed in a registry Secret (ApiClient): the registry a body names.
    registry_of: Callable[[Mapping[str, Any]], str | None] | None = None


class Controller:
    def __init__(
        self,
        kube: Kube,
        kinds: list[KindConfig],
        workers: int = 16,
        metrics: Metrics | None = None,
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        if metrics is not None:
            metrics.watch_queue(lambda: len(self.queue), lambda: self.queue.scheduled)
        self.kinds = {k.kind: k for k in kinds}
        self.workers = workers
        self.queue: WorkQueue[Key] = WorkQueue()
        # Set by the first handler call (kopf passes indexes to handlers only).
        self.resources: Mapping[Any, Any] | None = None
        self.secrets: Mapping[Any, Any] | None = None
        # Objects we wrote, until the watch delivers them: read-your-writes for the
        # next pass, so it neither writes the same thing twice nor trips on a 409.
        self._written_secrets: dict[tuple[str, str], SecretSnapshot] = {}
        # Our last status patch of a key: (its resourceVersion, the status written).
        self._written_status: dict[Key, tuple[str, Mapping[str, Any]]] = {}
        self._failures: dict[Key, int] = {}
        self._crash_after_secret_write = bool(os.environ.get(CRASH_AFTER_SECRET_WRITE))
        self.membership = RegistryMembership()
        self._registry_conflicts: set[tuple[str, str]] = set()

    # ---- kopf wiring -------------------------------------------------------------

    def register(self, registry: kopf.OperatorRegistry) -> None:
        for config in self.kinds.values():
            self._register_kind(registry, config)

        @kopf.index(
            "v1",
            "secrets",
            labels={MANAGED_BY_LABEL: MANAGED_BY},
            registry=registry,
            id="credsmith_secrets",
        )
        async def credsmith_secrets(
            body: kopf.Body, **_: Any
        ) -> dict[tuple[str, str], SecretSnapshot]:
            snapshot = SecretSnapshot.from_api(body)
            return {(snapshot.namespace, snapshot.name): snapshot}

        @kopf.on.event(
            "v1", "secrets", labels={MANAGED_BY_LABEL: MANAGED_BY}, registry=registry, id="secret"
        )
        async def secret_event(body: kopf.Body, **kwargs: Any) -> None:
            self._capture(kwargs)
            meta = body.get("metadata", {})
            namespace, name = meta.get("namespace", ""), meta.get("name", "")
            written = self._written_secrets.pop((namespace, name), None)
            # The echo of our own write changes nothing for its owner: no pass needed.
            echo = written is not None and written.resource_version == meta.get("resourceVersion")
            owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION, "")
            kind, _, owner_name = owner.partition("/")
            if kind in self.kinds and owner_name:
                if not echo:
                    self.queue.add((kind, namespace, owner_name))
                # Its hashes feed the registry document, if it is listed in one.
                if registry_name := self.membership.registry_of(namespace, owner_name):
                    self.queue.add((REGISTRY_KIND, namespace, registry_name))
            elif kind == REGISTRY_KIND and owner_name:
                self.queue.add((REGISTRY_KIND, namespace, owner_name))

    def _register_kind(self, registry: kopf.OperatorRegistry, config: KindConfig) -> None:
        @kopf.index(GROUP, VERSION, config.plural, registry=registry, id="credsmith_resources")
        async def credsmith_resources(body: kopf.Body, **_: Any) -> dict[Key, ResourceSnapshot]:
            snapshot = ResourceSnapshot.from_api(body)
            return {(config.kind, snapshot.namespace, snapshot.name): snapshot}

        @kopf.on.event(GROUP, VERSION, config.plural, registry=registry, id=f"{config.kind}-event")
        async def resource_event(body: kopf.Body, type: str | None, **kwargs: Any) -> None:
            self._capture(kwargs)
            meta = body.get("metadata", {})
            key = (config.kind, meta.get("namespace", ""), meta.get("name", ""))
            written = self._written_status.pop(key, None)
            if written is None or written[0] != meta.get("resourceVersion"):
                self.queue.add(key)  # not merely the echo of our own status patch
            if config.registry_of is not None:
                registry_name = None if type == "DELETED" else config.registry_of(body)
                for changed in self.membership.update(key[1], key[2], registry_name):
                    self.queue.add((REGISTRY_KIND, key[1], changed))

    def _capture(self, handler_kwargs: Mapping[str, Any]) -> None:
        """Keep kopf's indexes, which it hands to handlers by their names."""
        self.resources = handler_kwargs["credsmith_resources"]
        self.secrets = handler_kwargs["credsmith_secrets"]

    # ---- workers -------------------------------------------------------------------

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.queue.run_scheduler(), name="scheduler")]
        tasks += [
            asyncio.create_task(self._worker(), name=f"worker-{i}") for i in range(self.workers)
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                count = self._failures.get(key, 0)
                self._failures[key] = count + 1
                delay = RETRY_DELAYS[min(count, len(RETRY_DELAYS) - 1)]
                if self.metrics is not None:
                    self.metrics.failed(key)
                log.warning("%s/%s/%s: %s; retrying in %.0fs", *key, _describe(exc), delay)
                self.queue.add_after(key, delay)
            finally:
                self.queue.done(key)

    def _lookup(self, index: Mapping[Any, Any] | None, key: Any) -> Any:
        if index is None or key not in index:
            return None
        for value in index[key]:
            return value
        return None

    def secret(self, namespace: str, name: str) -> SecretSnapshot | None:
        written = self._written_secrets.get((namespace, name))
        found: SecretSnapshot | None = written or self._lookup(self.secrets, (namespace, name))
        return found

    async def reconcile(self, key: Key) -> None:
        kind, namespace, name = key
        if kind == REGISTRY_KIND:
            await self.reconcile_registry(namespace, name)
            return
        resource: ResourceSnapshot | None = self._lookup(self.resources, key)
        if resource is None:
            self._written_status.pop(key, None)
            if self.metrics is not None:
                self.metrics.forget(key)
            return  # deleted: ownerReferences let the garbage collector do the rest
        written = self._written_status.get(key)
        if written is not None:
            resource = _with_status(resource, written[1])
        config = self.kinds[kind]
        secret_name = config.secret_name(resource)
        started = time.perf_counter()
        secret = self.secret(namespace, secret_name)
        # In a thread: issuing an RSA-4096 key or an Argon2id hash takes a while.
        decision = await asyncio.to_thread(config.reconcile, resource, secret, _now())

        if decision.secret is not None:
            try:
                await self._write_secret(namespace, secret_name, decision)
            except ApiError as exc:
                if not (exc.status == 409 and decision.create):
                    raise
                # The name is taken by a Secret we do not cache: someone else's (we
                # watch only our own), or ours created a moment ago. Look at it once.
                found = await self.kube.get_secret(namespace, secret_name)
                if found is None:
                    raise
                secret = SecretSnapshot.from_api(found)
                decision = await asyncio.to_thread(config.reconcile, resource, secret, _now())
                if decision.secret is not None:
                    await self._write_secret(namespace, secret_name, decision)
        if decision.status != resource.status:
            patch = {"status": _merge_patch(resource.status, decision.status)}
            patched = await self.kube.patch_status(config.plural, namespace, name, patch)
            version = str((patched.get("metadata") or {}).get("resourceVersion", ""))
            indexed: ResourceSnapshot | None = self._lookup(self.resources, key)
            if indexed is None or indexed.resource_version != version:
                # Until the watch delivers it (unless it already has: then no entry).
                self._written_status[key] = (version, decision.status)
        for event in decision.events:
            await self._post_event(resource, event.type, event.reason, event.message)
        if decision.requeue_at is not None:
            self.queue.add_at(key, decision.requeue_at.timestamp())
        elapsed = time.perf_counter() - started
        if self.metrics is not None:
            self.metrics.record(key, decision, elapsed)
        if decision.summary:
            log.info("%s: %s", resource.ref, decision.summary)
        log.debug("%s: reconciled in %.1f ms", resource.ref, elapsed * 1e3)

    async def reconcile_registry(self, namespace: str, name: str) -> None:
        members = []
        for client_name in self.membership.members(namespace, name):
            for kind, config in self.kinds.items():
                if config.registry_of is None:
                    continue
                client: ResourceSnapshot | None = self._lookup(
                    self.resources, (kind, namespace, client_name)
                )
                if client is not None:
                    secret = self.secret(namespace, config.secret_name(client))
                    members.append((client, secret))
        existing = self.secret(namespace, name)
        decision = reconcile_registry(namespace, name, members, existing)
        if decision.secret is not None:
            try:
                written = await (
                    self.kube.create_secret(namespace, decision.secret)
                    if decision.create
                    else self.kube.replace_secret(namespace, name, decision.secret)
                )
            except ApiError as exc:
                if exc.status != 409 or not decision.create:
                    raise
                found = await self.kube.get_secret(namespace, name)
                if found is None:
                    raise
                decision = reconcile_registry(
                    namespace, name, members, SecretSnapshot.from_api(found)
                )
                if not decision.conflict:
                    raise  # ours after all, created meanwhile: retry from the cache
            else:
                self._remember_secret(SecretSnapshot.from_api(written))
                self._registry_conflicts.discard((namespace, name))
                log.info("Registry %s/%s: %d clients", namespace, name, decision.clients)
        if decision.conflict and (namespace, name) not in self._registry_conflicts:
            self._registry_conflicts.add((namespace, name))
            message = (
                f"registry Secret {name} exists and is not managed by credsmith: it was not changed"
            )
            log.warning("Registry %s/%s: %s", namespace, name, message)
            for client, _ in members:
                await self._post_event(client, "Warning", "RegistryConflict", message)
        if decision.conflict:
            self.queue.add_after((REGISTRY_KIND, namespace, name), 30)

    async def _write_secret(self, namespace: str, name: str, decision: Decision) -> None:
        assert decision.secret is not None
        if decision.create:
            written = await self.kube.create_secret(namespace, decision.secret)
        else:
            written = await self.kube.replace_secret(namespace, name, decision.secret)
        if self._crash_after_secret_write:
            os._exit(CRASH_EXIT_CODE)  # fault injection for the crash-consistency tests
        self._remember_secret(SecretSnapshot.from_api(written))

    def _remember_secret(self, written: SecretSnapshot) -> None:
        """Read-your-writes until the watch delivers the write (unless it already has)."""
        indexed: SecretSnapshot | None = self._lookup(
            self.secrets, (written.namespace, written.name)
        )
        if indexed is None or indexed.resource_version != written.resource_version:
            self._written_secrets[(written.namespace, written.name)] = written

    async def _post_event(
        self, resource: ResourceSnapshot, type_: str, reason: str, message: str
    ) -> None:
        involved = {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "name": resource.name,
            "namespace": resource.namespace,
            "uid": resource.uid,
        }
        try:
            await self.kube.post_event(involved, type_, reason, message)
        except ApiError as exc:  # an Event is best effort; the status says it all
            log.warning("%s: could not post event %s: %s", resource.ref, reason, exc.reason)


def _now() -> datetime:
    return datetime.now(UTC)


def _with_status(resource: ResourceSnapshot, status: Mapping[str, Any]) -> ResourceSnapshot:
    from dataclasses import replace

    return replace(resource, status=dict(status))


def _merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch from `old` to `new` (top-level keys; removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch


def _describe(exc: Exception) -> str:
    # Exceptions from our code never carry secret values; API errors carry the
    # apiserver's message, which names fields, not data.
    if isinstance(exc, ApiError):
        return f"API error {exc.status} {exc.reason}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"
