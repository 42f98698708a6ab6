"""What the provider controller knows of the provider kinds and of a credential's reference to
one: the kinds and their plurals, the options, the namespaces' labels (for allowedNamespaces),
which provider a credential names, and a provider's resync. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credsmith.api.durations import parse_go_duration
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.kinds import Key

IDENTITY_PROVIDER = "IdentityProvider"
CLUSTER_IDENTITY_PROVIDER = "ClusterIdentityProvider"
PROVIDER_PLURALS = {
    IDENTITY_PROVIDER: "identityproviders",
    CLUSTER_IDENTITY_PROVIDER: "clusteridentityproviders",
}
PROVIDER_KINDS = frozenset(PROVIDER_PLURALS)
DEFAULT_RESYNC = 600.0


@dataclass(frozen=True)
class ProviderOptions:
    # URL prefixes a provider may point at (--identity-provider-url-allow); none: any.
    url_allow: Sequence[str] = ()
    # Where a ClusterIdentityProvider's admin Secret lives (the operator's namespace).
    operator_namespace: str = "default"
    # The namespaces this operator watches (none: all): only their owners are judged.
    watched_namespaces: Sequence[str] = ()
    # Watch ClusterIdentityProviders and namespaces (cluster-wide list and watch). Off
    # where the operator has namespaced Roles only: a credential naming one then finds none.
    cluster_kinds: bool = True


@dataclass(frozen=True)
class NamespaceSnapshot:
    name: str
    labels: Mapping[str, str]
    resource_version: str = ""

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> NamespaceSnapshot:
        meta = obj.get("metadata") or {}
        return cls(
            str(meta.get("name", "")),
            dict(meta.get("labels") or {}),
            str(meta.get("resourceVersion", "")),
        )


def provider_key_of(credential: ResourceSnapshot) -> Key | None:
    """The provider a credential's spec.identityProvider names (None: it names none)."""
    ref = credential.spec.get("identityProvider")
    if not isinstance(ref, Mapping) or not ref.get("name"):
        return None
    kind = str(ref.get("kind") or IDENTITY_PROVIDER)
    namespace = credential.namespace if kind == IDENTITY_PROVIDER else ""
    return (kind, namespace, str(ref["name"]))


def provider_name(key: Key) -> str:
    """namespace/name, or the name of a cluster-scoped one (for logs)."""
    return f"{key[1]}/{key[2]}" if key[1] else key[2]


def resync_of(provider: ResourceSnapshot) -> float:
    try:
        return parse_go_duration(str(provider.spec.get("resync") or "10m")).total_seconds()
    except ValueError:
        return DEFAULT_RESYNC
