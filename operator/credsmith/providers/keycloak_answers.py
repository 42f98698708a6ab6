"""What Keycloak's admin API answers, read as text anyone may have shaped (pure).

The operator calls the Keycloak a tenant's IdentityProvider names, and a realm admin writes
any client attribute: every answer is checked for the shape Keycloak gives it before it is
used, so that a forged one ends as a ProviderError (a status condition) or is skipped, never
as another exception in the worker. The representation of one client: keycloak_rep.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.text import bounded, shown_url

MAX_TEXT = 200  # characters of Keycloak's error fields in a message
HIDDEN = "***"


def listed(answer: Any, what: str, *keys: str) -> list[Mapping[str, Any]]:
    """The entries of a list answer that have Keycloak's shape (each of `keys` a text); an
    answer that is no list at all is an error."""
    if not isinstance(answer, list):
        raise ProviderError(ProviderReason.ERROR, f"Keycloak: the {what} list is not a list")
    return [
        entry
        for entry in answer
        if isinstance(entry, Mapping) and all(isinstance(entry.get(key), str) for key in keys)
    ]


def listed_clients(answer: Any) -> list[Mapping[str, Any]]:
    """Clients: an internal id (the path to the client) and a clientId."""
    return listed(answer, "clients", "id", "clientId")


def scope_ids(answer: Any) -> dict[str, str]:
    """Client scopes listed (the realm's, or a client's defaults): name -> internal id."""
    return {scope["name"]: scope["id"] for scope in listed(answer, "client scopes", "name", "id")}


def provider_text(body: Any, hidden: Iterable[str] = ()) -> str:
    """Keycloak's own error fields, bounded and on one line; never the body verbatim. Keycloak
    does not echo secrets; should a version ever, each of `hidden` is taken out before the
    cut, which could leave a part of one."""
    if not isinstance(body, Mapping):
        return ""
    parts = [
        str(body[key])
        for key in ("errorMessage", "error", "error_description")
        if isinstance(body.get(key), str | int) and not isinstance(body.get(key), bool)
    ]
    text = ": ".join(dict.fromkeys(parts))
    for secret in hidden:
        if secret:
            text = text.replace(secret, HIDDEN)
    return bounded(text, MAX_TEXT)


def failure(
    method: str, url: str, status: int, body: Any, hidden: Iterable[str] = ()
) -> ProviderError:
    reason = {
        401: ProviderReason.LOGIN_REFUSED,
        403: ProviderReason.FORBIDDEN,
        409: ProviderReason.CONFLICT,
        400: ProviderReason.REJECTED,
        422: ProviderReason.REJECTED,
    }.get(status, ProviderReason.ERROR)
    return ProviderError(
        reason,
        f"Keycloak {method} {shown_url(url)}: {status} {provider_text(body, hidden)}".rstrip(),
    )


def token_lifetime(value: object) -> float | None:
    """A token answer's expires_in, in seconds: 60 when absent, None when not a finite
    positive number (OAuth2 makes it a JSON number)."""
    if value is None:
        return 60.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds if math.isfinite(seconds) and seconds > 0 else None
