"""HTTP calls of the tests to a real identity provider (Hydra, Keycloak): token requests
as the clients credsmith registers make them, and admin API calls.

urllib, and (status, JSON body) back: a test asserts on both, and a refused request is an
answer, not an exception.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any

import jwt

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def call(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, Any]:
    """(status, JSON body or None); an HTTP error status is returned, not raised. A JSON
    or form body sets the Content-Type unless `headers` name one (a JSON Patch)."""
    data = None
    headers = dict(headers or {})
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers.setdefault("Content-Type", "application/json")
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw.strip() else None
    except ValueError:
        return status, None


def token_with_secret(
    token_url: str, client_id: str, secret: str, scope: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A client_credentials request with client_secret_basic (RFC 6749 2.3.1: both parts
    form-encoded before Basic, which the providers decode)."""
    user = urllib.parse.quote(client_id, safe="")
    password = urllib.parse.quote(secret, safe="")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return _token(token_url, form, {"Authorization": f"Basic {basic}"})


def token_with_assertion(
    token_url: str,
    client_id: str,
    private_key_pem: str,
    *,
    kid: str,
    algorithm: str,
    scope: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """A client_credentials request with private_key_jwt (RFC 7523): a client assertion
    signed by PyJWT with the client's private key, for the token endpoint."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
    }
    assertion = jwt.encode(claims, private_key_pem, algorithm=algorithm, headers={"kid": kid})
    form = {
        "grant_type": "client_credentials",
        # Optional beside an assertion (RFC 7521 4.2); Hydra and Keycloak both take it.
        "client_id": client_id,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
        **({"scope": scope} if scope else {}),
    }
    return _token(token_url, form, {})


def _token(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A token endpoint answers with a JSON object; anything else reads as {}."""
    status, body = call("POST", url, form=form, headers=headers)
    return status, body if isinstance(body, dict) else {}
