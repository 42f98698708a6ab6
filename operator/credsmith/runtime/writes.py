"""The controller's writes (Secrets, status, Events) and what it remembers of them.

Read-your-writes: a Secret or status written is remembered until the watch delivers it,
so that the next pass neither writes the same thing twice nor trips on a 409. And while a
worker holds a key, the versions its writes made are told apart from the changes the
watches report meanwhile: an echo can arrive before its write's response, so which is
which is known only when the pass ends, and only what is not ours queues the key again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from credsmith.reconcile.snapshots import Decision, ResourceSnapshot, SecretSnapshot
from credsmith.runtime.informer import ObjectKey
from credsmith.runtime.kinds import Key, KindConfig
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.refusals import SecretWriteRefused, secret_values

log = logging.getLogger("credsmith.controller")

# Tests set this to make the process exit right after a Secret write, before status.
CRASH_AFTER_SECRET_WRITE = "CREDSMITH_FAULT_CRASH_AFTER_SECRET_WRITE"
CRASH_EXIT_CODE = 70


class Writes:
    def __init__(
        self,
        kube: Kube,
        secrets: Mapping[ObjectKey, SecretSnapshot],
        resource: Callable[[Key], ResourceSnapshot | None],
    ) -> None:
        self.kube = kube
        self._cached_secrets = secrets  # the informer's cache, read only
        self._resource = resource
        # Secrets we wrote, until the watch delivers them.
        self.secrets: dict[tuple[str, str], SecretSnapshot] = {}
        # The versions the writes of each remembered Secret replaced ("" for a create), when
        # known (None: not known).
        self._replaced: dict[tuple[str, str], set[str] | None] = {}
        # Our last status patch of a key: (its resourceVersion, the status written).
        self.status: dict[Key, tuple[str, Mapping[str, Any]]] = {}
        # While a worker holds a key: the resourceVersions of the changes the watches
        # reported for it (its resource's and its Secret's), and those its own writes made.
        self._changes_meanwhile: dict[Key, list[str]] = {}
        self._own_versions: dict[Key, set[str]] = {}
        self._crash_after_secret_write = bool(os.environ.get(CRASH_AFTER_SECRET_WRITE))

    # ---- a pass's own writes and the changes meanwhile -------------------------------

    def pass_started(self, key: Key) -> None:
        self._changes_meanwhile[key] = []

    def during_pass(self, key: Key, type_: str, version: str) -> bool:
        """A change reported for `key`: recorded, to be decided when its pass ends (True),
        or to be queued now (False: no pass holds it, or it was deleted)."""
        # A deletion's snapshot carries the last version seen, maybe our own write's.
        if key in self._changes_meanwhile and type_ != "DELETED":
            self._changes_meanwhile[key].append(version)
            return True
        return False

    def own_write(self, key: Key, version: str) -> None:
        if key in self._changes_meanwhile:
            self._own_versions.setdefault(key, set()).add(version)

    def pass_ended(self, key: Key) -> bool:
        """Whether anything but the pass's own writes changed `key` meanwhile (then it is
        queued again, as the work queue would for any change during a pass)."""
        changes = self._changes_meanwhile.pop(key, [])
        own = self._own_versions.pop(key, set())
        return any(version not in own for version in changes)

    # ---- the writes -------------------------------------------------------------------

    async def patch_status(
        self, key: Key, config: KindConfig, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        _, namespace, name = key
        patch = {"status": merge_patch(old, new)}
        patched = await self.kube.patch_status(config.plural, namespace, name, patch)
        version = str((patched.get("metadata") or {}).get("resourceVersion", ""))
        self.own_write(key, version)
        indexed = self._resource(key)
        if indexed is None or indexed.resource_version != version:
            # Until the watch delivers it (unless it already has: then no entry).
            self.status[key] = (version, new)

    async def write_secret(self, key: Key, name: str, decision: Decision) -> None:
        """Write the decided Secret of `key`'s resource (a write of its pass)."""
        assert decision.secret is not None
        namespace = key[1]
        try:
            if decision.create:
                written = await self.kube.create_secret(namespace, decision.secret)
            else:
                written = await self.kube.replace_secret(namespace, name, decision.secret)
        except ApiError as exc:
            # What we remembered of this Secret may be what the server refused (a 409:
            # someone wrote after us): the next pass reads the watch's copy instead.
            self.forget_secret((namespace, name))
            raise SecretWriteRefused.of(exc, secret_values(decision.secret)) from None
        if self._crash_after_secret_write:
            os._exit(CRASH_EXIT_CODE)  # fault injection for the crash-consistency tests
        snapshot = SecretSnapshot.from_api(written)
        self.remember_secret(snapshot, decision.secret)
        self.own_write(key, snapshot.resource_version)

    def remember_secret(
        self, written: SecretSnapshot, sent: Mapping[str, Any] | None = None
    ) -> None:
        """Read-your-writes until the watch delivers the write (unless it already has).

        Only while the cache still holds the version our write replaced: if the watch
        has moved past it, it has delivered our write's echo (events come in order)
        and maybe a newer change on top, which a remembered copy would shadow."""
        key = (written.namespace, written.name)
        indexed = self._cached_secrets.get(key)
        base = str(((sent or {}).get("metadata") or {}).get("resourceVersion") or "")
        if indexed is None or (
            indexed.resource_version != written.resource_version
            and (not base or indexed.resource_version == base)
        ):
            known = self._replaced.get(key, set()) if key in self.secrets else set()
            self.secrets[key] = written
            self._replaced[key] = None if sent is None or known is None else known | {base}

    def forget_secret(self, key: tuple[str, str]) -> None:
        self.secrets.pop(key, None)
        self._replaced.pop(key, None)

    def listing_predates_write(self, key: tuple[str, str], version: str) -> bool:
        """Whether a first listing's `version` of a Secret we wrote may have been read
        before our write (then the write stays remembered): the version it replaced, or
        one we cannot tell. Any other came after it, and the listing has the last word."""
        replaced = self._replaced.get(key)
        return replaced is None or version in replaced

    async def post_event(
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


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch from `old` to `new` (top-level keys; removed keys become null)."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new})
    return patch
