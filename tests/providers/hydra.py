"""Ory Hydra for the tests: a real `hydra serve all --dev` (credsmith.dev.hydra.LocalHydra,
built by tests/cluster/build.sh), and token requests against it.

Fixtures (import them into a conftest, as tests/e2e/conftest.py does):

- `hydra`: one Hydra per pytest process, so each xdist worker has its own (in-memory,
  ready in about a second); tests share it, so each uses client IDs of its own.
- `fresh_hydra`: a Hydra of the test's own, which the test may stop and start.

Token requests use urllib and return (status, JSON body): a test asserts on both, and a
failed request is an answer, not an exception.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest

from credsmith.dev.cluster import build_binaries
from credsmith.dev.hydra import HYDRA_BINARY, LocalHydra


@pytest.fixture(scope="session")
def hydra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHydra]:
    """This pytest process's Hydra (each xdist worker starts its own)."""
    with LocalHydra(
        build_binaries() / HYDRA_BINARY, tmp_path_factory.mktemp("hydra") / "hydra.log"
    ) as found:
        yield found


@pytest.fixture
def fresh_hydra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHydra]:
    """A Hydra of this test's own: it may stop it (stop() is idempotent)."""
    with LocalHydra(
        build_binaries() / HYDRA_BINARY, tmp_path_factory.mktemp("hydra") / "hydra.log"
    ) as found:
        yield found


def token_with_secret(
    token_url: str, client_id: str, secret: str, scope: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A client_credentials request with client_secret_basic (RFC 6749 2.3.1: both parts
    form-encoded before Basic, which Hydra decodes)."""
    user = urllib.parse.quote(client_id, safe="")
    password = urllib.parse.quote(secret, safe="")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return _post(token_url, form, {"Authorization": f"Basic {basic}"})


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
    assertion = jwt.encode(
        {
            "iss": client_id,
            "sub": client_id,
            "aud": token_url,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 60,
        },
        private_key_pem,
        algorithm=algorithm,
        headers={"kid": kid},
    )
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
        **({"scope": scope} if scope else {}),
    }
    return _post(token_url, form, {})


def admin_call(
    hydra: LocalHydra, method: str, path: str, body: Any = None, *, patch: bool = False
) -> tuple[int, Any]:
    """A call to Hydra's admin API as a person editing it would make (the drift tests)."""
    content_type = "application/json-patch+json" if patch else "application/json"
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{hydra.admin_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Content-Type": content_type},
    )
    return _send(request)


def _post(url: str, form: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    status, body = _send(request)
    return status, body if isinstance(body, dict) else {}


def _send(request: urllib.request.Request) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    return status, json.loads(payload) if payload.strip() else None
