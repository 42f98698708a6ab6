"""HTTP to the API server on the event loop: the hot path's requests and watch streams.

An aiohttp session with the credentials of a kubernetes-client Configuration
(kubeconfig or in-cluster), read again for every request so that rotated
service-account tokens are picked up. The kubernetes client calls through a
thread pool; at bulk rates that cost about 0.5 ms of CPU more per request.

The operator holds several of these, each with its own connection pool (see
kube.Kube): a watch keeps its connection for minutes, so watches, ordinary
requests and the Lease must never queue for the same connections.
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from credsmith.providers.text import bounded
from credsmith.runtime import jsoncodec

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply (JSON is valid YAML)
AUTH_TTL = 10.0  # seconds between reads of the credentials


class ApiError(Exception):
    """An API call failed; `status` is the HTTP status (0 when unreachable)."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        causes: tuple[str, ...] = (),
        *,
        kind: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes  # the types of the Status's details.causes
        self.kind = kind  # the Status's details.kind: what was not found, refused, ...
        self.retry_after = retry_after  # seconds, from a Retry-After header (429, 503)

    @property
    def namespace_terminating(self) -> bool:
        """Refused because the namespace is being deleted: nothing to retry."""
        return "NamespaceTerminating" in self.causes

    @property
    def namespace_gone(self) -> bool:
        """404 for the namespace itself (it was deleted): nothing to retry."""
        return self.status == 404 and self.kind == "namespaces"


# Characters of an unexpected exception's text in a log line or a refusal's message.
MAX_DESCRIBED = 1000


def describe(exc: Exception) -> str:
    """An exception for a log line. Ours never carry secret values; API errors carry
    the apiserver's message, which names fields, not data. Any other may carry what a
    server answered (a value it failed to parse): printable, one line, bounded."""
    if isinstance(exc, ApiError):
        return f"API error {exc}"
    return bounded(f"{type(exc).__name__}: {exc}", MAX_DESCRIBED)


class Gone(Exception):
    """410: the resourceVersion is too old to continue from; list again."""


class ApiSession:
    def __init__(self, configuration: Any, pool_size: int = 32) -> None:
        # pool_size may be changed until the first request (e.g. once the number of
        # watches is known); 0 means no limit.
        self.configuration = configuration
        self.base = str(configuration.host).rstrip("/")
        self._ssl = _ssl_context(configuration) if self.base.startswith("https") else False
        self.pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None
        self._auth: dict[str, str] = {}
        self._auth_read_at = -AUTH_TTL

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # created lazily: it needs the running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=self.pool_size),
                json_serialize=jsoncodec.dumps_text,
                # No cookies, as client-go keeps none: no jar to filter on every request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": JSON, **self._auth_headers()}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def _auth_headers(self) -> dict[str, str]:
        # auth_settings() runs the token refresh hook (in-cluster token file, exec
        # plugins) when one is set; once every few seconds is plenty, as a projected
        # token is renewed long before it expires.
        now = time.monotonic()
        if now - self._auth_read_at > AUTH_TTL:
            self._auth = {
                setting["key"]: setting["value"]
                for setting in self.configuration.auth_settings().values()
                if setting.get("in") == "header" and setting.get("value")
            }
            self._auth_read_at = now
        return self._auth

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = JSON,
        timeout: float = 30.0,
        decode: bool = True,
    ) -> dict[str, Any]:
        """The response's JSON body; {} when `decode` is False (the caller needs none)."""
        data = jsoncodec.dumps(body) if body is not None else None
        try:
            async with self.session.request(
                method,
                self.base + path,
                data=data,
                params=params,
                headers=self._headers(content_type if data is not None else None),
                timeout=_timeout(timeout),
            ) as response:
                payload = await response.read()
                if response.status == 401:
                    self._auth_read_at = -AUTH_TTL  # read the credentials again next time
                if response.status >= 400:
                    raise _error(response.status, response.reason or "", payload, response.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(0, "Unreachable", type(exc).__name__) from None
        result: dict[str, Any] = jsoncodec.loads(payload) if payload and decode else {}
        return result

    async def watch(
        self, path: str, params: Mapping[str, str], idle_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request, until the server ends it. A connection
        silent for `idle_timeout` seconds (no event, no bookmark) raises TimeoutError."""
        async with self.session.get(
            self.base + path,
            params={**params, "watch": "true"},
            headers=self._headers(),
            # The server ends the request after timeoutSeconds; this finds a dead one.
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=idle_timeout),
        ) as response:
            if response.status == 410:
                raise Gone()
            if response.status >= 400:
                payload = await response.read()
                raise _error(response.status, response.reason or "", payload, response.headers)
            # Lines can be far longer than aiohttp's readline limit (a Secret holds up to
            # 1 MiB), so split the chunks ourselves.
            parts: list[bytes] = []  # of the line not complete yet
            async for chunk in response.content.iter_any():
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    parts.append(chunk[start:end])
                    line = b"".join(parts)
                    parts.clear()
                    start = end + 1
                    if line.strip():
                        yield jsoncodec.loads(line)
                if start < len(chunk):
                    parts.append(chunk[start:])


@functools.cache
def _timeout(total: float) -> aiohttp.ClientTimeout:
    """One (immutable) ClientTimeout per total, rather than a new one per request."""
    return aiohttp.ClientTimeout(total=total)


def _error(
    status: int, reason: str, payload: bytes, headers: Mapping[str, str] | None = None
) -> ApiError:
    message = reason
    causes: tuple[str, ...] = ()
    kind = ""
    with contextlib.suppress(ValueError, AttributeError, TypeError):
        body = jsoncodec.loads(payload)
        message = body.get("message") or reason
        details = body.get("details") or {}
        kind = str(details.get("kind") or "")
        # A StatusCause's type is serialised as "reason".
        causes = tuple(str(cause.get("reason", "")) for cause in details.get("causes") or ())
    retry_after = parse_retry_after((headers or {}).get("Retry-After"))
    return ApiError(status, reason, str(message), causes, kind=kind, retry_after=retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the API server sends whole seconds; an HTTP date is
    not worth supporting here and is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _ssl_context(configuration: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
