"""Shared consumers rolled once: credentials that share a workload and rotate within a
short window (the operator's --consumer-roll-window) roll it with one write that carries
every credential's pod-template annotation, so the workload restarts once, not once per
credential. Pure: (the rolls asked for one workload, what the other credentials that use it
say of themselves, the time) -> when to roll.

The rule, simplest that is correct:
- A roll asked for a workload no other credential uses, or whose other users are none of
  them about to ask (none has a revision the workload was not rolled to, a rotation request
  not acted upon, or a scheduled rotation within the window), is made at once: a lone
  credential never waits.
- Otherwise the rolls asked wait together, until every other user has asked too, or until
  the window since the first of them has passed: never longer.
- Nothing of this is kept but in memory: a roll held is not in the workload's annotation nor
  in status.consumers (which keeps the revision last rolled to), so after a restart each
  credential asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.api.status import parse_timestamp
from credsmith.reconcile.policy import remembered_request

DEFAULT_WINDOW = timedelta(seconds=10)
# A roll asked this many windows ago whose credential has not asked again since (deleted, or
# its rollout no longer needed) is dropped rather than written with the next one.
STALE_AFTER_WINDOWS = 3

# (kind, namespace, name) of a credential, as the work queue keys it.
CredentialKey = tuple[str, str, str]
# (kind, name) of a workload in the credential's namespace.
WorkloadKey = tuple[str, str]


@dataclass(frozen=True)
class RollRequest:
    """One credential's ask to roll one workload to its revision."""

    credential: CredentialKey
    annotation: str  # the credential's pod-template annotation key
    manager: str  # its field manager
    revision: int
    requested_at: datetime  # when it first asked for this revision


def roll_at(
    pending: Mapping[CredentialKey, RollRequest],
    sharers_due: Mapping[CredentialKey, datetime | None],
    window: timedelta,
    now: datetime,
) -> datetime | None:
    """When to make the rolls `pending` for one workload, all in one write: None for now.
    `sharers_due`: every other credential that uses the workload, and when it may next ask
    to roll it (sharer_due; None: nothing scheduled)."""
    if not pending or window <= timedelta(0):
        return None
    deadline = min(r.requested_at for r in pending.values()) + window
    if now >= deadline:
        return None
    awaited = [
        key
        for key, due in sharers_due.items()
        if key not in pending and due is not None and due <= deadline
    ]
    return deadline if awaited else None


def merged(
    pending: Mapping[CredentialKey, RollRequest], request: RollRequest, window: timedelta
) -> dict[CredentialKey, RollRequest]:
    """The pending rolls of a workload with `request` added: a credential that asks again
    for the same revision keeps the time it first asked (the window does not move); asks
    left over from credentials that stopped asking are dropped."""
    stale = request.requested_at - STALE_AFTER_WINDOWS * max(window, timedelta(seconds=1))
    kept = {k: r for k, r in pending.items() if r.requested_at >= stale}
    earlier = kept.get(request.credential)
    if earlier is not None and earlier.revision == request.revision:
        request = earlier
    kept[request.credential] = request
    return kept


def workloads_followed(status: Mapping[str, Any]) -> frozenset[WorkloadKey]:
    """The workloads a credential's status.consumers lists as rolled by it at some revision
    (not those that do not use its Secret: they are listed at revision 0)."""
    found: set[WorkloadKey] = set()
    entries = status.get("consumers")
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping):
            continue
        kind, name, revision = entry.get("kind"), entry.get("name"), entry.get("revision")
        if isinstance(kind, str) and isinstance(name, str) and _positive(revision):
            found.add((kind, name))
    return frozenset(found)


def sharer_due(
    status: Mapping[str, Any],
    annotations: Mapping[str, str],
    workload: WorkloadKey,
    now: datetime,
) -> datetime | None:
    """When another credential that uses `workload` may next ask to roll it, from what its
    resource says: now when it holds a revision the workload has not been recorded at (its
    roll is about to be asked, or is held) or a rotation request not acted upon yet; else at
    its nextRotationAt; None when nothing is scheduled."""
    revision = status.get("revision")
    for entry in status.get("consumers") or ():
        if (
            isinstance(entry, Mapping)
            and (entry.get("kind"), entry.get("name")) == workload
            and _positive(revision)
            and _positive(entry.get("revision"))
            and entry["revision"] < revision
        ):
            return now
    request = remembered_request(annotations.get(ROTATE_ANNOTATION))
    if request is not None and request not in (
        status.get("lastRotateRequest"),
        status.get("pendingRotateRequest"),
    ):
        return now
    next_rotation = status.get("nextRotationAt")
    if isinstance(next_rotation, str):
        try:
            return parse_timestamp(next_rotation)
        except ValueError:
            return None
    return None


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
