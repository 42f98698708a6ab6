"""The status of an IdentityProvider or ClusterIdentityProvider. Pure.

The provider controller (runtime/) checks the provider (client.check(), and counts our
marked clients) and writes what this module makes of it. Conditions follow kstatus as the
credentials' do, so `kubectl wait`, Argo CD (deploy/argocd) and Flux read them alike:
- reached and authenticated: Ready=True (reason Connected);
- a failure that retrying may cure (unreachable, TLS, 5xx, 409): Ready=False and
  Reconciling=True with the reason: kstatus InProgress, Argo CD Progressing;
- one that needs a person (the URL outside the operator's allow-list, the admin login
  refused, a missing role): Ready=False and Stalled=True: kstatus Failed, Argo CD Degraded.

The clean-up of clients whose owner is gone has a condition of its own, `CleanedUp`: True
(reason CleanedUp) after a clean-up that deleted all it had to, False (reason CleanupFailed,
the clients and the provider's answers in the message) when a delete was refused. A provider
reached and authenticated stays Ready=True through a failed clean-up (kstatus and Argo CD read
Ready, Reconciling and Stalled only): the credentials it serves are served, and the clients
left behind are what the condition and a Warning Event say.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credsmith.api.identity_provider import IdentityProviderSpec
from credsmith.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    set_condition,
    stored_conditions,
)
from credsmith.providers.text import bounded

# Of the message: at most this many clients named, and this many characters in all.
MAX_FAILURES_NAMED = 3
MAX_CLEANUP_MESSAGE = 600
# A client ID as the provider lists it: anyone with its admin API can write any.
MAX_CLIENT_ID_NAMED = 100


@dataclass(frozen=True)
class CleanupOutcome:
    """One clean-up: how many clients it deleted, and the deletes that failed as (client
    ID, the ProviderError's message: bounded and sanitised, with the status code)."""

    deleted: int
    failures: Sequence[tuple[str, str]] = ()

    @property
    def failed(self) -> bool:
        return bool(self.failures)

    def message(self) -> str:
        if not self.failures:
            # The same text every time: a clean-up that deleted some writes no new status.
            return "the last clean-up deleted every client whose owner is gone"
        named = "; ".join(
            f"{as_listed(client)}: {bounded(why, MAX_CLEANUP_MESSAGE)}"
            for client, why in self.failures[:MAX_FAILURES_NAMED]
        )
        more = len(self.failures) - MAX_FAILURES_NAMED
        text = (
            f"{len(self.failures)} client(s) whose owner is gone could not be deleted "
            f"(retried at the next resync): {named}" + (f"; and {more} more" if more > 0 else "")
        )
        return text if len(text) <= MAX_CLEANUP_MESSAGE else text[: MAX_CLEANUP_MESSAGE - 1] + "…"


def as_listed(text: str) -> str:
    """A string as a provider lists it (a client ID, a marker's owner), as status, Events
    and logs show it: the provider's admin API may hold any (newlines, control characters,
    any length)."""
    return bounded(text, MAX_CLIENT_ID_NAMED)


# Ready=False reasons that no retry cures (also deploy/argocd's needs_a_person).
NEEDS_A_PERSON = frozenset(
    {Reason.URL_NOT_ALLOWED, Reason.PROVIDER_LOGIN_REFUSED, Reason.PROVIDER_FORBIDDEN}
)


def provider_status(
    spec: IdentityProviderSpec,
    generation: int,
    stored: Mapping[str, Any],
    now: datetime,
    *,
    reason: Reason = Reason.PROVIDER_READY,
    message: str = "",
    clients: int | None = None,
    cleanup: CleanupOutcome | None = None,
) -> dict[str, Any]:
    """The status to write. `reason`: PROVIDER_READY when check() passed, else the failure's
    (Reason(error.reason.value), or URL_NOT_ALLOWED); `message`: bounded and sanitised
    (ProviderError.message). `clients`: our marked clients, or None to keep the last count
    (it could not be listed). `cleanup`: the clean-up done in this pass, or None to keep
    the stored CleanedUp condition. lastTransitionTime moves only when a condition's status
    does."""
    ready = reason is Reason.PROVIDER_READY
    conditions = stored_conditions(stored)
    put = [(ConditionType.READY, ready)]
    gone = {ConditionType.RECONCILING, ConditionType.STALLED}
    if not ready:
        kind = ConditionType.STALLED if reason in NEEDS_A_PERSON else ConditionType.RECONCILING
        put.append((kind, True))
        gone.discard(kind)
    conditions = [c for c in conditions if c.type not in gone]
    for type_, ok in put:
        condition = Condition(
            type=type_.value,
            status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
            observed_generation=generation,
            reason=reason.value,
            message=message or ("reached and authenticated" if ready else reason.value),
        )
        conditions = set_condition(conditions, condition, now)
    if cleanup is not None:
        conditions = set_condition(conditions, _cleanup_condition(cleanup, generation), now)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [c.to_wire() for c in conditions],
        "type": spec.type.value,
    }
    count = clients if clients is not None else stored.get("clients")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        status["clients"] = count
    return status


def _cleanup_condition(cleanup: CleanupOutcome, generation: int) -> Condition:
    return Condition(
        type=ConditionType.CLEANED_UP,
        status=ConditionStatus.FALSE if cleanup.failed else ConditionStatus.TRUE,
        observed_generation=generation,
        reason=Reason.CLEANUP_FAILED if cleanup.failed else Reason.CLEANED_UP,
        message=cleanup.message(),
    )


def is_ready(status: Mapping[str, Any]) -> bool:
    """Whether a provider's stored status says Ready=True (ProviderSeen.ready)."""
    ready = find_condition(stored_conditions(status), ConditionType.READY)
    return ready is not None and ready.status == ConditionStatus.TRUE
