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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from credsmith.api.identity_provider import ClusterIdentityProviderSpec
from credsmith.providers.base import MarkedClient, Marker
from credsmith.reconcile.scoping import selects


def clients_to_delete(
    marked: Iterable[MarkedClient],
    provider_uid: str,
    live_owner_uids: set[str],
    watched: Callable[[str], bool],
) -> list[str]:
    """The client IDs to delete from the provider whose resource has `provider_uid`.

    `marked`: the provider's clients with our marker (client.list_marked). `live_owner_uids`:
    the UIDs of the credentials that exist AND name this provider in spec.identityProvider
    (one that no longer names it has let its client go). `watched(namespace)`: whether this
    operator watches that namespace. Sorted, each once."""
    doomed = {
        client.client_id
        for client in marked
        if still_to_delete(client.marker, provider_uid, live_owner_uids, watched)
    }
    return sorted(doomed)


def still_to_delete(
    marker: Marker | None,
    provider_uid: str,
    live_owner_uids: set[str],
    watched: Callable[[str], bool],
) -> bool:
    """Whether a client whose marker is now `marker` (None: it has none, or it is gone) is
    to be deleted by the provider resource `provider_uid`: ours, of a watched namespace, and
    its owner no longer among `live_owner_uids` (read again, not the list's)."""
    return (
        marker is not None
        and marker.provider_uid == provider_uid
        and watched(marker.owner.namespace)
        and marker.owner.uid not in live_owner_uids
    )


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
