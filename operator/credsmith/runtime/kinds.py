"""What the runtime knows of each kind it reconciles, and the keys of its work queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from credsmith.reconcile.consumers import ConsumersSeen
from credsmith.reconcile.registration import ProviderSeen
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot, SecretSnapshot

Key = tuple[str, str, str]  # (kind, namespace, name)


class Reconcile(Protocol):
    """(resource, its Secret, now; an earlier client with the same client ID in its
    registry; what was found of its consumers; whether its registry holds Htpasswd for it)
    -> Decision."""

    def __call__(
        self,
        resource: ResourceSnapshot,
        secret: SecretSnapshot | None,
        now: datetime,
        duplicate_of: str | None = None,
        consumers: ConsumersSeen | None = None,
        *,
        registry_htpasswd: bool = False,
        provider: ProviderSeen | None = None,
    ) -> Decision: ...


@dataclass(frozen=True)
class KindConfig:
    kind: str
    plural: str
    reconcile: Reconcile
    secret_name: Callable[[ResourceSnapshot], str]
    # For kinds listed in a registry Secret (ApiClient): the registry a body names.
    registry_of: Callable[[Mapping[str, Any]], str | None] | None = None
    # For kinds whose public keys go to a JWK Set ConfigMap (KeyPair): the one a body names.
    jwks_of: Callable[[Mapping[str, Any]], str | None] | None = None
    # (resource, its registry holds Htpasswd) -> nothing in its pass can be slow, so it may
    # run on the event loop (reconcile.kinds.is_light); by default every pass takes a thread.
    light: Callable[[ResourceSnapshot, bool], bool] = lambda resource, registry_htpasswd: False
