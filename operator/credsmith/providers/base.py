"""What the operator asks of an identity provider, whichever it is. The types only: the
clients (hydra.py, keycloak.py) speak each provider's admin API; the decisions around them
(scoping, drift, clean-up) are pure and live beside them.

A provider holds one OAuth2 client per credential that names it, carrying our marker: the
UID of the IdentityProvider/ClusterIdentityProvider that registered it and the owner
credential's identity. Only clients with our marker of that provider are ever changed or
deleted; a client of the same ID without it (or another owner's) is never taken over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from credsmith.providers.text import bounded


class ProviderReason(StrEnum):
    """Why a provider call failed: the `Registered` (and provider `Ready`) reason."""

    UNREACHABLE = "ProviderUnreachable"  # connection refused, DNS, timeout
    TLS_ERROR = "ProviderTLSError"  # certificate not trusted, handshake failed
    LOGIN_REFUSED = "ProviderLoginRefused"  # admin credentials refused (401, invalid_client)
    FORBIDDEN = "ProviderForbidden"  # authenticated, not allowed (403)
    CONFLICT = "ProviderConflict"  # 409, or a client of that ID that is not ours
    REJECTED = "ProviderRejected"  # a field it refuses (400/422: unknown scope, bad JWKS)
    ERROR = "ProviderError"  # 5xx or an answer we cannot read
    # Set by the operator, not a provider: a URL outside --identity-provider-url-allow
    # (no request is made to it).
    URL_NOT_ALLOWED = "URLNotAllowed"


class ProviderError(Exception):
    """A provider call that failed. `message`: the URL we called, the status code and the
    provider's own error text (its JSON error fields), never a response body verbatim and
    never a secret; made printable and bounded here, whatever the caller passed, as it
    goes to status, Events and log lines."""

    MAX_MESSAGE = 300

    def __init__(self, reason: ProviderReason, message: str) -> None:
        self.reason = reason
        self.message = bounded(message, self.MAX_MESSAGE)
        super().__init__(f"{reason}: {self.message}")


@dataclass(frozen=True)
class Owner:
    """The credential a client belongs to; `uid` decides (names are reused)."""

    kind: str
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Marker:
    """What says a client is ours: which provider resource registered it, for whom."""

    provider_uid: str
    owner: Owner
    revision: int = 0


@dataclass(frozen=True)
class DesiredClient:
    """What the provider must hold for one credential."""

    client_id: str
    marker: Marker
    # "client_secret_basic" (ClientSecret) or "private_key_jwt" (KeyPair).
    auth_method: str
    # ClientSecret: the value the Secret holds (or is about to), and the previous value
    # while it is still promised (only sent to a provider that can hold two).
    secret: str | None = field(default=None, repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_expires_at: datetime | None = None
    # KeyPair: the public JWKs, current first, then the previous one while promised.
    jwks: tuple[Mapping[str, Any], ...] = ()
    grant_types: tuple[str, ...] = ("client_credentials",)
    scope: tuple[str, ...] = ()
    audience: tuple[str, ...] = ()


@dataclass(frozen=True)
class MarkedClient:
    """A client of the provider that carries our marker (listed for clean-up)."""

    client_id: str
    marker: Marker


class IdentityProviderClient(Protocol):
    """One provider's admin API. Every method raises ProviderError on failure."""

    # Whether the provider accepts a previous client secret beside the current one
    # (Keycloak's rotated secret: yes; Hydra: no). JWKS always hold two keys.
    holds_two_secrets: bool

    async def check(self) -> None:
        """Reached and authenticated (the provider's own `Ready`)."""

    async def ensure(self, desired: DesiredClient) -> tuple[str, ...]:
        """Make the provider hold `desired`. Returns what differed and was put back, by
        field name ("client" when it was missing and is created, "secret", "jwks",
        "grantTypes", "scope", "audience", "authMethod", "marker"), empty when in place.
        Refuses (CONFLICT) a client of that ID with no marker or another owner's."""

    async def list_marked(self, provider_uid: str) -> list[MarkedClient]:
        """Every client carrying our marker of this provider resource."""

    async def delete(self, client_id: str) -> None:
        """Delete a client (gone already is fine)."""

    async def delete_if(self, client_id: str, doomed: Callable[[Marker | None], bool]) -> bool:
        """Read the client again and delete it only if `doomed(its marker now)` (None: no
        marker, or gone); True when deleted. The clean-up's re-check (cleanup.py)."""

    async def close(self) -> None:
        """Release connections."""
