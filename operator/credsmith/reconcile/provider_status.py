"""The status of an IdentityProvider or ClusterIdentityProvider. Pure.

The provider controller (runtime/) checks the provider (client.check(), and counts our
marked clients) and writes what this module makes of it. Conditions follow kstatus as the
credentials' do, so `kubectl wait`, Argo CD (deploy/argocd) and Flux read them alike:
- reached and authenticated: Ready=True (reason Connected);
- a failure that retrying may cure (unreachable, TLS, 5xx, 409): Ready=False and
  Reconciling=True with the reason: kstatus InProgress, Argo CD Progressing;
- one that needs a person (the URL outside the operator's allow-list, the admin login
  refused, a missing role): Ready=False and Stalled=True: kstatus Failed, Argo CD Degraded.
"""

from __future__ import annotations

from collections.abc import Mapping
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
)

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
) -> dict[str, Any]:
    """The status to write. `reason`: PROVIDER_READY when check() passed, else the failure's
    (Reason(error.reason.value), or URL_NOT_ALLOWED); `message`: bounded and sanitised
    (ProviderError.message). `clients`: our marked clients, or None to keep the last count
    (it could not be listed). lastTransitionTime moves only when a condition's status does."""
    ready = reason is Reason.PROVIDER_READY
    conditions = _stored_conditions(stored)
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
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [c.to_wire() for c in conditions],
        "type": spec.type.value,
    }
    count = clients if clients is not None else stored.get("clients")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
        status["clients"] = count
    return status


def is_ready(status: Mapping[str, Any]) -> bool:
    """Whether a provider's stored status says Ready=True (ProviderSeen.ready)."""
    ready = find_condition(_stored_conditions(status), ConditionType.READY)
    return ready is not None and ready.status == ConditionStatus.TRUE


def _stored_conditions(status: Mapping[str, Any]) -> list[Condition]:
    found = []
    for raw in status.get("conditions") or ():
        try:
            found.append(Condition.model_validate(raw))
        except ValueError:
            continue
    return found
