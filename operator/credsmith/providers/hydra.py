"""Ory Hydra's admin API (OAuth2 clients), as an IdentityProviderClient.

One client per credential: `ensure` reads it (GET), creates it (POST) when missing, and
puts back what differs in one PUT of what Hydra holds with our fields over it. Hydra keeps
only a hash of a client secret, so the secret is compared by a token request to the
public endpoint (`public_url`) when one is given: a client_credentials request for a scope
no client has, so that a right secret gets an error after authentication rather than a
token. Without `public_url` the secret is set on every `ensure`, and not called drift.

Hydra holds one secret per client (holds_two_secrets = False); a client's JWKS holds the
current and the previous public key.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import aiohttp
from yarl import URL

from credsmith.providers.base import (
    DesiredClient,
    MarkedClient,
    Marker,
    ProviderError,
    ProviderReason,
)
from credsmith.providers.http_body import json_or_none
from credsmith.providers.hydra_body import (
    SECRET_AUTH_METHOD,
    SecretVerdict,
    differences,
    is_ours,
    marker_of,
    new_client,
    put_back,
    required_secret,
    secret_verdict,
)
from credsmith.providers.text import bounded, bounded_tail, shown_url

log = logging.getLogger(__name__)

# The scope of the secret probe: one no client is given, so a right secret gets 400
# invalid_scope (after authentication) and no token is minted.
PROBE_SCOPE = "credsmith.secret-probe.no-such-scope"
_MAX_ERROR_TEXT = 80  # of Hydra's `error` (a code such as invalid_client_metadata)
_MIN_HINT = 40  # of Hydra's `error_description`, whatever the rest of a message takes
_MAX_PAGES = 10_000  # a Link header that never ends is an answer we cannot read


class HydraClient:
    """Ory Hydra's admin API at `admin_url`; `public_url` (the issuer, where /oauth2/token
    is) lets `ensure` compare a client secret instead of setting it every time."""

    holds_two_secrets = False

    def __init__(
        self,
        admin_url: str,
        public_url: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        page_size: int = 100,
    ) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._page_size = page_size

    def __repr__(self) -> str:
        return f"HydraClient(admin_url={self.admin_url!r}, public_url={self.public_url!r})"

    async def check(self) -> None:
        await self._call("GET", "/admin/clients", query={"page_size": "1"})

    async def ensure(self, desired: DesiredClient) -> tuple[str, ...]:
        path = _client_path(desired.client_id)
        current = await self._call("GET", path, missing_ok=True, secret=desired.secret)
        if current is None:
            await self._call("POST", "/admin/clients", new_client(desired), secret=desired.secret)
            log.info("hydra %s: client %s created", self.admin_url, desired.client_id)
            return ("client",)
        if not isinstance(current, Mapping):
            raise ProviderError(ProviderReason.ERROR, f"GET {self.admin_url}{path}: not a client")
        if not is_ours(current, desired.marker):
            owner = "no credsmith marker" if marker_of(current) is None else "another owner's"
            raise ProviderError(
                ProviderReason.CONFLICT,
                f"{self.admin_url}: client {desired.client_id} exists with {owner}; "
                "it is left as it is",
            )
        differed = list(differences(current, desired))
        body = put_back(current, desired)
        set_secret = False
        if desired.auth_method == SECRET_AUTH_METHOD:
            secret = required_secret(desired)
            verdict = SecretVerdict.UNKNOWN
            # A probe says something only while Hydra expects our kind of authentication.
            if self.public_url and "authMethod" not in differed:
                verdict = await self._probe_secret(desired.client_id, secret)
            if verdict is SecretVerdict.DIFFERS:
                differed.append("secret")
            if verdict is not SecretVerdict.SAME:
                body["client_secret"] = secret
                set_secret = True
        if differed or set_secret:
            await self._call("PUT", path, body, secret=desired.secret)
        if differed:
            log.info(
                "hydra %s: client %s put back: %s",
                self.admin_url,
                desired.client_id,
                ", ".join(differed),
            )
        return tuple(differed)

    async def list_marked(self, provider_uid: str) -> list[MarkedClient]:
        found: list[MarkedClient] = []
        query = {"page_size": str(self._page_size)}
        for _ in range(_MAX_PAGES):
            page, next_token = await self._page(query)
            for client in page:
                marker = marker_of(client) if isinstance(client, Mapping) else None
                if marker is not None and marker.provider_uid == provider_uid:
                    found.append(MarkedClient(str(client.get("client_id")), marker))
            # An empty page is the end: a Hydra that holds no client at all answers every
            # page with a `next` link (offset paging past the end), so a listing of an
            # empty Hydra never ended (10,000 pages, the provider's lock held meanwhile).
            if next_token is None or not page:
                return found
            query = {"page_size": str(self._page_size), "page_token": next_token}
        raise ProviderError(ProviderReason.ERROR, f"{self.admin_url}: clients never end")

    async def delete(self, client_id: str) -> None:
        await self._call("DELETE", _client_path(client_id), missing_ok=True)

    async def delete_if(self, client_id: str, doomed: Callable[[Marker | None], bool]) -> bool:
        # Hydra's admin API has no conditional delete: the window left is this GET's answer
        # to the DELETE, not the whole list's.
        path = _client_path(client_id)
        current = await self._call("GET", path, missing_ok=True)
        marker = marker_of(current) if isinstance(current, Mapping) else None
        if current is None or not doomed(marker):
            return False
        await self._call("DELETE", path, missing_ok=True)
        return True

    async def close(self) -> None:
        """Closes the session it made (one given to it is its owner's to close)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- calls --------------------------------------------------------------------------

    async def _page(self, query: Mapping[str, str]) -> tuple[list[Any], str | None]:
        url = f"{self.admin_url}/admin/clients"
        status, payload, following = await self._exchange("GET", url, query=query)
        self._raise_for(status, payload, "GET", url)
        if not isinstance(payload, list):
            raise ProviderError(
                ProviderReason.ERROR, f"GET {shown_url(url)}: not a list of clients"
            )
        token = None
        if following is not None:
            tokens = parse_qs(URL(following).query_string).get("page_token")
            token = tokens[0] if tokens else None
        return payload, token

    async def _probe_secret(self, client_id: str, secret: str) -> SecretVerdict:
        """A token request with the secret (RFC 6749 2.3.1: both parts form-encoded)."""
        url = f"{self.public_url}/oauth2/token"
        basic = base64.b64encode(
            f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
        ).decode()
        try:
            status, payload, _ = await self._exchange(
                "POST",
                url,
                form={"grant_type": "client_credentials", "scope": PROBE_SCOPE},
                headers={"Authorization": f"Basic {basic}"},
            )
        except ProviderError as failure:
            # The token endpoint says nothing now; the secret is set, not called drift.
            log.info("hydra: secret probe failed: %s", failure.message)
            return SecretVerdict.UNKNOWN
        return secret_verdict(status, _error_code(payload))

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, str] | None = None,
        missing_ok: bool = False,
        secret: str | None = None,
    ) -> Any:
        """One admin call: its JSON answer, or None for 404 when `missing_ok`."""
        url = f"{self.admin_url}{path}"
        status, payload, _ = await self._exchange(method, url, body=body, query=query)
        if status == 404 and missing_ok:
            return None
        self._raise_for(status, payload, method, url, secret=secret)
        return payload

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        form: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, str | None]:
        """Status, JSON answer (None when it is none) and the Link header's next page;
        a connection that fails is a ProviderError naming the URL."""
        try:
            async with self._http().request(
                method,
                URL(url, encoded=True),
                json=body,
                data=urlencode(form) if form is not None else None,
                params=dict(query) if query else None,
                headers={
                    **({"Content-Type": "application/x-www-form-urlencoded"} if form else {}),
                    **(headers or {}),
                },
                ssl=self._ssl,
                timeout=self._timeout,
                # A redirect is an answer, not a new address: the operator's allow-list of
                # provider URLs holds for the URL called, not for where it points.
                allow_redirects=False,
            ) as response:
                payload = await json_or_none(response, f"{method} {shown_url(url)}")
                following = response.links.get("next")
                return (
                    response.status,
                    payload,
                    str(following.get("url")) if following is not None else None,
                )
        except (aiohttp.ClientSSLError, ssl.SSLError) as failure:
            raise ProviderError(
                ProviderReason.TLS_ERROR, f"{method} {shown_url(url)}: TLS: {_brief(failure)}"
            ) from None
        except TimeoutError:
            raise ProviderError(
                ProviderReason.UNREACHABLE, f"{method} {shown_url(url)}: timed out"
            ) from None
        except ValueError:  # yarl's, and aiohttp's InvalidURL: the CRD's pattern admits more
            raise ProviderError(
                ProviderReason.REJECTED, f"{method} {shown_url(url)}: not a URL that can be called"
            ) from None
        except aiohttp.ClientError as failure:
            raise ProviderError(
                ProviderReason.UNREACHABLE, f"{method} {shown_url(url)}: {_brief(failure)}"
            ) from None

    def _raise_for(
        self, status: int, payload: Any, method: str, url: str, *, secret: str | None = None
    ) -> None:
        if status < 300:
            return
        message = f"{method} {shown_url(url)}: {status}"
        # Hydra's hint ends its description: what fits after the status is kept of its end.
        room = ProviderError.MAX_MESSAGE - len(message) - 1
        text = _error_text(payload, room, hidden=secret)
        message += f" {text}" if text else ""
        raise ProviderError(reason_of(status), message)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session


def reason_of(status: int) -> ProviderReason:
    if status == 401:
        return ProviderReason.LOGIN_REFUSED
    if status == 403:
        return ProviderReason.FORBIDDEN
    if status == 409:
        return ProviderReason.CONFLICT
    if status in (400, 422):
        return ProviderReason.REJECTED
    return ProviderReason.ERROR


def _error_text(payload: Any, room: int, hidden: str | None = None) -> str:
    """Hydra's own `error` and `error_description` (RFC 6749 5.2 style) in `room`
    characters: the error code bounded, the description's end in what is left. Hydra does
    not echo secrets; should a version ever, `hidden` is taken out before any cut, which
    could leave a part of it."""
    if hidden and isinstance(payload, Mapping):
        payload = {
            k: v.replace(hidden, "***") if isinstance(v, str) else v for k, v in payload.items()
        }
    code = _error_code(payload) or ""
    description = payload.get("error_description") if isinstance(payload, Mapping) else None
    if not isinstance(description, str) or not description.strip():
        return code
    left = max(room - len(code) - 2, _MIN_HINT) if code else room
    return ": ".join(part for part in (code, bounded_tail(description, left)) if part)


def _error_code(payload: Any) -> str | None:
    """Hydra's `error` (RFC 6749 5.2), bounded; None when it gave none."""
    error = payload.get("error") if isinstance(payload, Mapping) else None
    return _brief(error) if isinstance(error, str) and error.strip() else None


def _brief(value: object) -> str:
    return bounded(value, _MAX_ERROR_TEXT)


def _client_path(client_id: str) -> str:
    return f"/admin/clients/{quote(client_id, safe='')}"
