"""Pure parts of the provider controller: the operator-wide URL allow-list, and the status an
IdentityProvider/ClusterIdentityProvider gets from a check.

The allow-list is for clusters where tenants create IdentityProviders: without it a tenant
could point the operator at any address it can reach (an internal admin API, the cloud's
metadata endpoint) and read the outcome in status. A prefix is compared by parts, not as
text: `https://hydra.example` allows `https://hydra.example/admin` but not
`https://hydra.example.evil.test` nor `https://hydra.example:8443`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from credsmith.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    set_condition,
)

URL_NOT_ALLOWED = Reason.URL_NOT_ALLOWED.value
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _parts(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    scheme = split.scheme.lower()
    if not scheme or not split.hostname:
        return None
    return scheme, split.hostname.lower(), port or _DEFAULT_PORTS.get(scheme), split.path


def url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether `url` is under one of `prefixes` (none given: every URL is allowed)."""
    if not prefixes:
        return True
    parts = _parts(url)
    if parts is None:
        return False
    for prefix in prefixes:
        allowed = _parts(prefix)
        if allowed is None or allowed[:3] != parts[:3]:
            continue
        base = allowed[3].rstrip("/")
        if not base or parts[3] == base or parts[3].startswith(base + "/"):
            return True
    return False


def provider_urls(spec: Mapping[str, Any]) -> list[str]:
    """Every URL the operator would call for this provider spec."""
    urls: list[str] = []
    hydra = spec.get("hydra")
    if isinstance(hydra, Mapping):
        urls += [str(hydra[k]) for k in ("adminURL", "publicURL") if hydra.get(k)]
    keycloak = spec.get("keycloak")
    if isinstance(keycloak, Mapping) and keycloak.get("url"):
        urls.append(str(keycloak["url"]))
    return urls


def disallowed_url(spec: Mapping[str, Any], prefixes: Sequence[str]) -> str | None:
    """The first URL of the spec outside the allow-list, if any."""
    return next((u for u in provider_urls(spec) if not url_allowed(u, prefixes)), None)


def provider_status(
    current: Mapping[str, Any],
    generation: int,
    *,
    ready: bool,
    reason: str,
    message: str,
    clients: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The status after a check: Ready (and Reconciling while a failure is retried),
    observedGeneration, and `clients` when they could be counted (else the last count)."""
    conditions = [
        Condition.model_validate(c) for c in current.get("conditions") or () if isinstance(c, dict)
    ]
    conditions = set_condition(
        conditions,
        Condition(
            type=ConditionType.READY,
            status=ConditionStatus.TRUE if ready else ConditionStatus.FALSE,
            observed_generation=generation,
            reason=reason,
            message=message,
        ),
        now,
    )
    # kstatus: a provider being retried is in progress (removed once a check passes, as on
    # credentials); URLNotAllowed needs a person, not a retry.
    if not ready and reason != URL_NOT_ALLOWED:
        conditions = set_condition(
            conditions,
            Condition(
                type=ConditionType.RECONCILING,
                status=ConditionStatus.TRUE,
                observed_generation=generation,
                reason=reason,
                message=message,
            ),
            now,
        )
    else:
        conditions = [c for c in conditions if c.type != ConditionType.RECONCILING]
    status: dict[str, Any] = {
        **current,
        "observedGeneration": generation,
        "conditions": [c.to_wire() for c in conditions],
    }
    if clients is not None:
        status["clients"] = clients
    return status
