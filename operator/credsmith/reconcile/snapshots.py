"""Plain, immutable views of the objects a reconciler reads, and what it decides.

The watch layer (runtime/) turns API objects into snapshots; reconcilers are
pure functions of snapshots and the time, so they are tested without a cluster.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from credsmith.reconcile.registration import Registration

from credsmith.reconcile.compact import POOL, compact

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "credsmith"


# slots: no per-object __dict__ (tens of thousands of these are cached).
@dataclass(frozen=True, slots=True)
class SecretSnapshot:
    namespace: str
    name: str
    type: str
    # repr=False: a snapshot in a log line or a traceback must not print the credential.
    data: Mapping[str, bytes] = field(repr=False)
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    owner_references: tuple[Mapping[str, Any], ...]
    resource_version: str

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> SecretSnapshot:
        # Strings pooled (reconcile/compact.py), but never the values in data.
        meta = obj.get("metadata") or {}
        return cls(
            namespace=POOL.get(meta.get("namespace", "")),
            name=POOL.get(meta.get("name", "")),
            type=POOL.get(obj.get("type") or "Opaque"),
            data={POOL.get(k): base64.b64decode(v) for k, v in (obj.get("data") or {}).items()},
            labels=compact(meta.get("labels") or {}),
            annotations=compact(meta.get("annotations") or {}),
            owner_references=tuple(compact(o) for o in meta.get("ownerReferences") or ()),
            resource_version=str(meta.get("resourceVersion", "")),
        )

    def text(self, key: str) -> str | None:
        """A data value as text, or None if absent or not UTF-8."""
        raw = self.data.get(key)
        if raw is None:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return None


@dataclass(frozen=True, slots=True)
class ResourceSnapshot:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    resource_version: str = ""
    # RFC 3339, compared as text (one format, one time zone): which of two came first.
    creation_timestamp: str = ""

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> ResourceSnapshot:
        # Strings pooled (reconcile/compact.py): the cache holds tens of thousands.
        meta = obj.get("metadata") or {}
        return cls(
            api_version=POOL.get(obj.get("apiVersion", "")),
            kind=POOL.get(obj.get("kind", "")),
            namespace=POOL.get(meta.get("namespace", "")),
            name=POOL.get(meta.get("name", "")),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            labels=compact(meta.get("labels") or {}),
            annotations=compact(meta.get("annotations") or {}),
            spec=compact(obj.get("spec") or {}),
            status=compact(obj.get("status") or {}),
            resource_version=str(meta.get("resourceVersion", "")),
            creation_timestamp=POOL.get(str(meta.get("creationTimestamp", ""))),
        )

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post about the resource. Never carries a secret value."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What a reconcile pass wants done. The runtime carries it out in this order:
    write the Secret (create when `create`, else replace at the snapshot's
    resourceVersion), then the status, then the Events."""

    status: Mapping[str, Any]
    # The full Secret manifest (base64 is no protection); repr=False keeps it out of logs.
    secret: Mapping[str, Any] | None = field(default=None, repr=False)
    create: bool = False
    events: tuple[Event, ...] = ()
    requeue_at: datetime | None = None
    # Shown in the operator log at INFO: what was done and why (never a value).
    summary: str = ""
    # spec.consumers to roll to the current revision, after the status is written
    # (consumers.Rollout; only in a pass that does not write the Secret).
    rollouts: tuple[Any, ...] = ()
    # spec.identityProvider: what the provider must hold before the Secret is written
    # (registration.py). The runtime calls client.ensure, then registration.apply_outcome.
    registration: Registration | None = None
    # Look again on the key's backoff (runtime/backoff.py), not at requeue_at alone: a
    # provider call failed (registration.apply_outcome) and is retried.
    retry: bool = False
