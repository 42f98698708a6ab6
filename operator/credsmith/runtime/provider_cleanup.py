"""The clean-up of one provider's clients whose credential is gone, and its report.

providers/cleanup.py decides which clients go (pure); this module lists them, deletes each
after reading it again, and says what failed (the CleanedUp condition is written with the
provider's status by runtime/provider_writes.py; the Warning Event is posted here). Split from
runtime/providers.py, which watches the providers and runs their passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from credsmith.providers.base import (
    IdentityProviderClient,
    Marker,
    ProviderError,
    ProviderReason,
)
from credsmith.providers.cleanup import LiveOwners, clients_to_delete, still_to_delete
from credsmith.reconcile.provider_status import CleanupOutcome, as_listed
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.kinds import Key
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.provider_kinds import provider_name

log = logging.getLogger("credsmith.providers")

# A delete failing so is the provider's (its Ready), not one client's clean-up.
PROVIDER_WIDE = frozenset(
    {ProviderReason.UNREACHABLE, ProviderReason.TLS_ERROR, ProviderReason.LOGIN_REFUSED}
)


async def clean_up(
    key: Key,
    resource: ResourceSnapshot,
    client: IdentityProviderClient,
    live_owners: Callable[[], LiveOwners],
    live_owner: Callable[[str], LiveOwners],
    watched: Callable[[str], bool],
    deleted: Callable[[str, str], None],
) -> tuple[int, CleanupOutcome]:
    """Delete the clients of this provider whose owner no longer exists, no longer names
    it, or holds another client ID on record; return how many are left and the outcome.
    Each client's owner is read again just before its delete, as the informers' cache
    holds it then (`live_owner(uid)`: live_owners() of that one owner, looked up alone).
    A delete the provider refuses is the outcome's, and the others are still tried; one
    that finds the provider gone or the login refused is the provider's Ready (raised).
    `deleted(client_id, owner_uid)` is told of each client deleted. Only called after the
    informers synced (an empty cache would doom every client)."""
    marked = await client.list_marked(resource.uid)
    doomed = clients_to_delete(marked, resource.uid, live_owners(), watched)
    owners = {m.client_id: m.marker.owner for m in marked}
    count = 0
    failures: list[tuple[str, str]] = []
    for client_id in doomed:
        # Read again just before its delete, and judged against the owners as they are
        # now: it may have been re-marked or taken over since the list.
        try:
            gone = await client.delete_if(
                client_id, _recheck(client_id, resource.uid, live_owner, watched)
            )
        except ProviderError as exc:
            if exc.reason in PROVIDER_WIDE:
                raise
            failures.append((client_id, exc.message))
            continue
        if not gone:
            log.info("%s %s: client %s kept: no longer ours to delete", key[0],
                     provider_name(key), as_listed(client_id))  # fmt: skip
            continue
        count += 1
        owner = owners[client_id]
        deleted(client_id, owner.uid)
        log.info(
            "%s %s: deleted client %s (its %s %s/%s is gone or holds another client)",
            key[0], provider_name(key), as_listed(client_id), as_listed(owner.kind),
            as_listed(owner.namespace), as_listed(owner.name),
        )  # fmt: skip
    left = len({m.client_id for m in marked if m.marker.provider_uid == resource.uid}) - count
    return left, CleanupOutcome(count, tuple(failures))


def _recheck(
    client_id: str,
    provider_uid: str,
    live_owner: Callable[[str], LiveOwners],
    watched: Callable[[str], bool],
) -> Callable[[Marker | None], bool]:
    def doomed(marker: Marker | None) -> bool:
        owners = live_owner(marker.owner.uid) if marker is not None else {}
        return still_to_delete(client_id, marker, provider_uid, owners, watched)

    return doomed


async def report_failed(
    kube: Kube, key: Key, resource: ResourceSnapshot, cleanup: CleanupOutcome
) -> None:
    """In the log and a Warning Event (at most one a clean-up, so one a resync)."""
    message = cleanup.message()
    log.warning("%s %s: CleanupFailed: %s", key[0], provider_name(key), message)
    # A cluster-scoped object's Events live in `default` (where kubectl looks for them).
    involved = {
        "apiVersion": resource.api_version,
        "kind": key[0],
        "name": resource.name,
        "namespace": resource.namespace or "default",
        "uid": resource.uid,
    }
    try:
        # The reason is api/status.py's Reason.CLEANUP_FAILED, spelled out here for
        # the reader of Event reasons (tests/unit/docs).
        await kube.post_event(involved, "Warning", "CleanupFailed", message)
    except ApiError as exc:  # best effort: the condition says it all
        log.warning("%s %s: could not post event: %s", key[0], provider_name(key), exc.reason)
