"""Keycloak's admin REST API, as IdentityProviderClient (base.py).

The operator signs in as a confidential client of the realm (client_credentials) whose
service account has realm-management's `manage-clients`, never as a master admin. That
role alone lists, reads, creates, updates and deletes the realm's clients and their scopes
and protocol mappers, and reads the realm's client scopes (checked on Keycloak 26.5.6).

What the client holds and how it is compared: keycloak_rep.py. Scope is the client's
default client scopes (each must exist in the realm, else REJECTED naming it); audience is
one `oidc-audience-mapper` per audience. The secret is compared with the one Keycloak
returns in the client (to `manage-clients` only), constant-time, never logged: no token
request, so no login events and no brute-force counter on the client.
"""

from __future__ import annotations

import hmac
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from credsmith.providers import keycloak_answers as answers_
from credsmith.providers import keycloak_rep as rep_
from credsmith.providers.base import (
    DesiredClient,
    MarkedClient,
    Marker,
    ProviderError,
    ProviderReason,
)
from credsmith.providers.http_body import json_or_none
from credsmith.providers.text import bounded, shown_url

PAGE = 100  # clients per page when listing (the admin API's `q` refuses our attributes)
MAX_PAGES = 10_000  # a listing that never ends is an answer we cannot read
TOKEN_EARLY = 30.0  # seconds before its expiry a cached admin token is renewed
MAX_NAME = 100  # characters of the admin client ID (a Secret's value) in a message


@dataclass(frozen=True)
class AdminCredentials:
    """The admin client ID and secret read again from the provider's Secret. `taken` is
    called once a client holds them (not when it was cancelled before: then whoever built
    it must still take the Secret for changed)."""

    client_id: str
    secret: str = field(repr=False)
    taken: Callable[[], None] = field(repr=False)


class KeycloakClient:
    """One realm of one Keycloak. `url` is Keycloak's base URL (no /admin, no /realms)."""

    # Keycloak drops a rotated secret on every client update: keycloak_rep.py says more.
    holds_two_secrets = False

    def __init__(
        self,
        url: str,
        realm: str,
        admin_client_id: str,
        admin_client_secret: str,
        *,
        session: aiohttp.ClientSession | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
        reload_credentials: Callable[[], Awaitable[AdminCredentials]] | None = None,
    ) -> None:
        """`reload_credentials`: reads the admin client ID and secret again (the Secret the
        provider names), once when a sign-in is refused: an admin secret rotated in Keycloak
        and in the Secret is used at once, not at the provider's next check."""
        self.url = url.rstrip("/")
        self.realm = realm
        self.admin_client_id = admin_client_id
        self._admin_secret = admin_client_secret
        self._session = session
        self._owns_session = session is None
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self._reload = reload_credentials
        self._token: str | None = None
        self._token_until = 0.0
        self._admin = f"{self.url}/admin/realms/{quote(realm, safe='')}"
        self.token_url = f"{self.url}/realms/{quote(realm, safe='')}/protocol/openid-connect/token"

    def __repr__(self) -> str:  # never the admin secret
        return (
            f"KeycloakClient({self.url!r}, realm={self.realm!r}, client={self.admin_client_id!r})"
        )

    # -- IdentityProviderClient

    async def check(self) -> None:
        await self._admin_call("GET", "/clients", params={"first": "0", "max": "1"})

    async def ensure(self, desired: DesiredClient) -> tuple[str, ...]:
        rep_.check_supported(desired)
        scope_ids = await self._scope_ids(desired.scope)
        fields = rep_.desired_fields(desired)
        found = await self._find(desired.client_id)
        changed: list[str] = []
        if found is None:
            await self._admin_call("POST", "/clients", json=fields)
            found = await self._find(desired.client_id)
            if found is None:
                raise ProviderError(
                    ProviderReason.ERROR,
                    f"Keycloak: client {desired.client_id} not found after creating it",
                )
            changed.append("client")
        elif not rep_.is_ours(found, desired.marker):
            raise ProviderError(
                ProviderReason.CONFLICT,
                f"Keycloak realm {self.realm} has a client {desired.client_id} that credsmith "
                "did not register for this owner: left untouched",
            )
        else:
            differ = rep_.differences(desired, found)
            if differ or rep_.recorded_scopes(found) != set(desired.scope):
                await self._admin_call("PUT", _client_path(found), json=rep_.merged(found, fields))
            changed += differ
        if await self._put_back_scopes(found, desired, scope_ids):
            changed.append("scope")
        if await self._put_back_audience(found, desired):
            changed.append("audience")
        return tuple(dict.fromkeys(changed)) if "client" not in changed else ("client",)

    async def list_marked(self, provider_uid: str) -> list[MarkedClient]:
        marked: list[MarkedClient] = []
        seen: set[str] = set()
        for first in range(0, MAX_PAGES * PAGE, PAGE):
            page = await self._admin_call(
                "GET", "/clients", params={"first": str(first), "max": str(PAGE)}
            )
            clients = answers_.listed_clients(page)
            new = [client for client in clients if client["id"] not in seen]
            for client in new:
                seen.add(client["id"])
                marker = rep_.marker_of(client)
                if marker is not None and marker.provider_uid == provider_uid:
                    marked.append(MarkedClient(client_id=client["clientId"], marker=marker))
            if len(page) < PAGE:
                return marked
            if not new:  # a server that ignores `first` would list the same page for ever
                break
        raise ProviderError(
            ProviderReason.ERROR, f"Keycloak realm {self.realm}: the clients list never ends"
        )

    async def delete(self, client_id: str) -> None:
        found = await self._find(client_id)
        if found is None:
            return
        if rep_.marker_of(found) is None:  # clean-up only ever removes clients of ours
            raise ProviderError(
                ProviderReason.CONFLICT,
                f"Keycloak: client {client_id} carries no credsmith marker: not deleted",
            )
        await self._admin_call("DELETE", _client_path(found), missing_ok=True)

    async def delete_if(self, client_id: str, doomed: Callable[[Marker | None], bool]) -> bool:
        found = await self._find(client_id)
        if found is None or not doomed(rep_.marker_of(found)):
            return False
        # By the internal id just read: a client deleted and created again under this
        # clientId since has another id, and a 404 here.
        await self._admin_call("DELETE", _client_path(found), missing_ok=True)
        return True

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # -- scope and audience (sub-resources of the client)

    async def _scope_ids(self, names: tuple[str, ...]) -> dict[str, str]:
        if not names:
            return {}
        ids = answers_.scope_ids(await self._admin_call("GET", "/client-scopes"))
        unknown = [name for name in names if name not in ids]
        if unknown:
            raise ProviderError(
                ProviderReason.REJECTED,
                f"Keycloak realm {self.realm} has no client scope {', '.join(unknown)}",
            )
        return {name: ids[name] for name in names}

    async def _put_back_scopes(
        self, client: Mapping[str, Any], desired: DesiredClient, scope_ids: Mapping[str, str]
    ) -> bool:
        """Every desired scope a default client scope; the ones we added before and no
        longer want removed (the realm's own defaults stay)."""
        path = f"{_client_path(client)}/default-client-scopes"
        held = answers_.scope_ids(await self._admin_call("GET", path))
        stale = (rep_.recorded_scopes(client) - set(desired.scope)) & held.keys()
        missing = [name for name in desired.scope if name not in held]
        for name in missing:
            await self._admin_call("PUT", f"{path}/{_quoted(scope_ids[name])}")
        for name in sorted(stale):
            await self._admin_call("DELETE", f"{path}/{_quoted(held[name])}", missing_ok=True)
        return bool(missing or stale)

    async def _put_back_audience(self, client: Mapping[str, Any], desired: DesiredClient) -> bool:
        held = rep_.audience_mappers(client)
        path = f"{_client_path(client)}/protocol-mappers/models"
        stale = [held[audience] for audience in held if audience not in desired.audience]
        missing = [audience for audience in desired.audience if audience not in held]
        for mapper_id in stale:
            await self._admin_call("DELETE", f"{path}/{_quoted(mapper_id)}", missing_ok=True)
        for audience in missing:
            await self._admin_call("POST", path, json=rep_.audience_mapper(audience))
        return bool(stale or missing)

    async def _find(self, client_id: str) -> dict[str, Any] | None:
        found = await self._admin_call("GET", "/clients", params={"clientId": client_id})
        for client in answers_.listed_clients(found):
            if client.get("clientId") == client_id:  # the parameter is exact; be sure
                return dict(client)
        return None

    # -- HTTP

    async def _admin_call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        """An admin API call with the cached token; a 401 renews the token once."""
        for attempt in (1, 2):
            token = await self._admin_token()
            status, body = await self._request(
                method,
                self._admin + path,
                params=params,
                json=json,
                headers={"Authorization": f"Bearer {token}"},
            )
            if status == 401 and attempt == 1:
                self._token = None  # revoked or expired early: sign in again
                continue
            if status == 404 and missing_ok:
                return None
            if status >= 300:  # a redirect (not followed) is no answer either
                sent = json.get("secret") if isinstance(json, Mapping) else None
                hidden = (self._admin_secret, sent if isinstance(sent, str) else "")
                raise answers_.failure(method, self._admin + path, status, body, hidden)
            return body
        raise AssertionError("unreachable")

    async def _admin_token(self) -> str:
        if self._token is not None and self._clock() < self._token_until:
            return self._token
        # What this sign-in sends: a concurrent one may take the credentials read again
        # before this one compares them with what was refused.
        refused_id, refused_secret = self.admin_client_id, self._admin_secret
        try:
            return await self._sign_in()
        except ProviderError as refused:
            if refused.reason is not ProviderReason.LOGIN_REFUSED or self._reload is None:
                raise
            fresh = await self._reload()
            same = fresh.client_id == refused_id and hmac.compare_digest(
                fresh.secret.encode(), refused_secret.encode()
            )
            if same:
                raise  # the Secret holds what was refused: a person must act
            self.admin_client_id, self._admin_secret = fresh.client_id, fresh.secret
            fresh.taken()
        return await self._sign_in()

    async def _sign_in(self) -> str:
        """A new admin token (client_credentials as the admin client)."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self.admin_client_id,
            "client_secret": self._admin_secret,
        }
        status, body = await self._request("POST", self.token_url, data=form)
        if (
            status in (400, 401)
            and isinstance(body, dict)
            and body.get("error")
            in (
                "invalid_client",
                "unauthorized_client",
            )
        ):
            raise ProviderError(
                ProviderReason.LOGIN_REFUSED,
                # The status and Keycloak's text first: a cut (at the message's bound)
                # takes the end.
                f"Keycloak refused the admin client {bounded(self.admin_client_id, MAX_NAME)}: "
                f"{status} {answers_.provider_text(body, (self._admin_secret,))} "
                f"(at {shown_url(self.token_url)})",
            )
        if status >= 300:
            raise answers_.failure("POST", self.token_url, status, body, (self._admin_secret,))
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise ProviderError(
                ProviderReason.ERROR,
                f"Keycloak: no access_token from {shown_url(self.token_url)}",
            )
        lifetime = answers_.token_lifetime(body.get("expires_in"))
        if lifetime is None:
            # Whatever a server answers must end as a ProviderError: anything else would
            # carry its text, unbounded, into a refusal (and a status message).
            raise ProviderError(
                ProviderReason.ERROR,
                f"Keycloak: an expires_in that is not a number of seconds from "
                f"{shown_url(self.token_url)}",
            )
        self._token = body["access_token"]
        self._token_until = self._clock() + max(lifetime - TOKEN_EARLY, lifetime / 2)
        return self._token

    async def _request(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """Status and JSON body (None when empty or not JSON); transport failures mapped."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        try:
            async with self._session.request(
                method,
                url,
                ssl=self._ssl,
                timeout=self._timeout,
                # A redirect is an answer, not a new address: the operator's allow-list holds
                # for the URL called, and a 307 would carry the admin secret's form along.
                allow_redirects=False,
                **kwargs,
            ) as response:
                body = await json_or_none(response, f"Keycloak {method} {shown_url(url)}")
                return response.status, body
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            # The certificate's complaint (e.g. "self-signed certificate") where there is one.
            certificate = getattr(exc, "certificate_error", None)
            detail = getattr(certificate, "verify_message", None) or type(exc).__name__
            raise ProviderError(
                ProviderReason.TLS_ERROR, f"Keycloak at {shown_url(self.url)}: TLS failed: {detail}"
            ) from None
        except TimeoutError:
            raise ProviderError(
                ProviderReason.UNREACHABLE, f"Keycloak at {shown_url(self.url)}: no answer in time"
            ) from None
        except ValueError:  # aiohttp's InvalidURL: the CRD's pattern admits more
            raise ProviderError(
                ProviderReason.REJECTED,
                f"Keycloak at {shown_url(self.url)}: not a URL that can be called",
            ) from None
        except aiohttp.ClientConnectionError as exc:
            raise ProviderError(
                ProviderReason.UNREACHABLE,
                f"Keycloak at {shown_url(self.url)} unreachable: {type(exc).__name__}",
            ) from None


def _client_path(client: Mapping[str, Any]) -> str:
    return f"/clients/{_quoted(client['id'])}"


def _quoted(listed_id: object) -> str:
    """An internal id Keycloak listed, as one segment of a path: any text Keycloak answers
    with may hold a `/`, `?`, `..` or a newline."""
    return quote(str(listed_id), safe="")
