"""The operator-wide allow-list of identity provider URLs (--identity-provider-url-allow). Pure.

The allow-list is for clusters where tenants create IdentityProviders: without it a tenant
could point the operator at any address it can reach (an internal admin API, the cloud's
metadata endpoint) and read the outcome in status. A prefix is compared by parts, not as
text: `https://hydra.example` allows `https://hydra.example/admin` but not
`https://hydra.example.evil.test` nor `https://hydra.example:8443`. A path with a dot
segment (`..`, `.`, percent-encoded or not) is never allowed: it is sent as written and a
server or proxy resolves it, so `https://gw/a/../b` would reach `/b` under a prefix `/a`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from credsmith.api.status import Reason

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
    if parts is None or _has_dot_segment(parts[3]):
        return False
    for prefix in prefixes:
        allowed = _parts(prefix)
        if allowed is None or allowed[:3] != parts[:3]:
            continue
        base = allowed[3].rstrip("/")
        if not base or parts[3] == base or parts[3].startswith(base + "/"):
            return True
    return False


def _has_dot_segment(path: str) -> bool:
    """Whether the path, percent-decoded, has a `.` or `..` segment (`\\` counted as `/`,
    as some servers do)."""
    segments = unquote(path).replace("\\", "/").split("/")
    return any(segment in (".", "..") for segment in segments)


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
