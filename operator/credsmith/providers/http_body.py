"""Reading a provider's answer with a bound: a provider URL may be anything a tenant names
(an IdentityProvider is theirs), and an answer of gigabytes read whole would take the
operator's memory, and every other tenant's credentials with it."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from credsmith.providers.base import ProviderError, ProviderReason

# Far above a page of clients (100 Hydra or Keycloak clients with their JWKS: < 1 MiB).
MAX_BODY = 8 * 1024 * 1024


async def json_or_none(response: aiohttp.ClientResponse, where: str) -> Any:
    """The answer's JSON, None when it is empty or not JSON; ProviderError (ERROR) naming
    `where` when it is longer than MAX_BODY (not read further)."""
    raw = bytearray()
    try:
        async for chunk in response.content.iter_chunked(64 * 1024):
            raw += chunk
            if len(raw) > MAX_BODY:
                raise ProviderError(
                    ProviderReason.ERROR,
                    f"{where}: {response.status}, an answer longer than "
                    f"{MAX_BODY // (1024 * 1024)} MiB",
                )
    except aiohttp.ClientPayloadError:
        return None
    if not raw.strip():
        return None
    try:
        return json.loads(bytes(raw))
    except (ValueError, RecursionError):  # UnicodeDecodeError too; nesting past the stack
        return None
