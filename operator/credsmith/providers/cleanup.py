"""Which of a provider's clients to delete: level-based, no finalizers. Pure.

A credential's client is deleted when its owner is gone, not when a delete event is seen:
every resync (and at start, and soon after a credential's deletion) the provider's clients
that carry our marker are compared with the credentials that exist. So a namespace deletion
never waits for a provider, a missed event costs nothing, and a provider that was down when
the credential went is cleaned once it is back.

What decides is the owner's UID (a credential deleted and created again under the same name
is another owner, with its own client). A client is kept whenever there is doubt:
- it carries another provider resource's marker (another IdentityProvider pointed at the same
  Hydra or realm cleans its own);
- its owner's namespace is one this operator does not watch (another operator, or this one
  with other --namespace flags, may own it);
- the caller has not synced its informers (then it must not call this at all: an empty cache
  looks like every owner is gone).

The list is old by the time a client is deleted (a page of clients, then one delete after
another): a client may have been re-marked in between (adopted by its owner's new provider
resource, or taken over by a person who removed our marker). So each client is read again
just before its delete and deleted only if `still_to_delete` says so of what it holds then.

A living owner may have more than one client marked for it: the operator killed after the
provider accepted a first client and before the client's ID was on record (status, Secret)
generates another ID when it starts again. Once the owner's status records its client ID,
any other client marked for it is such an orphan and goes (`claimed_client_ids`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from credsmith.api.identity_provider import ClusterIdentityProviderSpec
from credsmith.providers.base import MarkedClient, Marker
from credsmith.reconcile.scoping import selects

# A living owner's UID -> the client IDs it may hold (claimed_client_ids); None: any.
LiveOwners = Mapping[str, frozenset[str] | None]


def clients_to_delete(
    marked: Iterable[MarkedClient],
    provider_uid: str,
    live_owners: LiveOwners,
    watched: Callable[[str], bool],
) -> list[str]:
    """The client IDs to delete from the provider whose resource has `provider_uid`.

    `marked`: the provider's clients with our marker (client.list_marked). `live_owners`:
    the credentials that exist AND name this provider in spec.identityProvider (one that no
    longer names it has let its client go), by UID, with the client IDs each may hold.
    `watched(namespace)`: whether this operator watches that namespace. Sorted, each once."""
    doomed = {
        client.client_id
        for client in marked
        if still_to_delete(client.client_id, client.marker, provider_uid, live_owners, watched)
    }
    return sorted(doomed)


def still_to_delete(
    client_id: str,
    marker: Marker | None,
    provider_uid: str,
    live_owners: LiveOwners,
    watched: Callable[[str], bool],
) -> bool:
    """Whether the client `client_id`, whose marker is now `marker` (None: it has none, or
    it is gone), is to be deleted by the provider resource `provider_uid`: ours, of a watched
    namespace, and its owner no longer among `live_owners` (read again, not the list's) or
    living with another client ID on record."""
    if marker is None or marker.provider_uid != provider_uid:
        return False
    if not watched(marker.owner.namespace):
        return False
    if marker.owner.uid not in live_owners:
        return True
    claimed = live_owners[marker.owner.uid]
    return claimed is not None and client_id not in claimed


def claimed_client_ids(spec: Mapping[str, Any], status: Mapping[str, Any]) -> frozenset[str] | None:
    """The client IDs a living credential may hold in its provider: the one its status
    records (written with its first Secret, or when that write is refused, and kept
    through re-issues), the provider's where it insists (status.identityProvider), and
    the one its spec asks for (spec.clientId.value: where it is moving to). None while
    its status records none: a first registration may be under way, so nothing marked
    for it is deleted."""
    recorded = status.get("clientId")
    if not isinstance(recorded, str) or not recorded:
        return None
    claimed = {recorded}
    registration = status.get("identityProvider")
    if isinstance(registration, Mapping) and isinstance(registration.get("clientId"), str):
        claimed.add(registration["clientId"])
    client_id = spec.get("clientId")
    if isinstance(client_id, Mapping) and isinstance(client_id.get("value"), str):
        claimed.add(client_id["value"])
    return frozenset(claimed)


def still_serves(spec: Mapping[str, Any], labels: Mapping[str, str] | None) -> bool:
    """Whether a ClusterIdentityProvider (`spec`) still serves a namespace with `labels`:
    a credential of a namespace it closed to is refused (Registered=False), so it counts as
    gone here, or its client would accept what the Secret holds for good. Doubt keeps: a
    namespace not known (`labels` None), a spec that does not parse."""
    if labels is None:
        return True
    try:
        parsed = ClusterIdentityProviderSpec.model_validate(spec)
    except ValueError:
        return True
    return selects(parsed.allowed_namespaces, labels)
