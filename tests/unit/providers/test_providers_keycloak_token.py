"""A Keycloak token answer the operator cannot use ends as a ProviderError, whatever it holds:
any other exception would carry the server's text, unbounded, into a refusal's message, and a
message past the condition's limit failed in the worker that showed it (it stopped the
operator). A local aiohttp server stands in for the token endpoint; Keycloak itself:
tests/e2e/test_provider_keycloak.py."""

from __future__ import annotations

import math
from typing import Any

import pytest
from aiohttp import web

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.keycloak import KeycloakClient
from credsmith.providers.keycloak_answers import token_lifetime
from tests.unit.providers.keycloak_stand_in import TOKEN_PATH, against

FORGED = "9\n2026-12-07 ERROR credsmith: forged line" + "x" * 40_000


def sign_in_answered(answer: dict[str, Any]) -> ProviderError | None:
    """KeycloakClient.check() against a server whose token endpoint answers `answer` and
    whose admin API answers 200 []: the ProviderError raised, or None."""

    async def token(request: web.Request) -> web.Response:
        return web.json_response(answer)

    async def admin(request: web.Request) -> web.Response:
        return web.json_response([])

    def routes(app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, token)
        app.router.add_route("*", "/{tail:.*}", admin)

    return against(routes, KeycloakClient.check)


@pytest.mark.parametrize("expires_in", [FORGED, "60", -5, 0, True, [60], {"s": 60}])
def test_an_expires_in_that_is_not_seconds_is_a_bounded_provider_error(expires_in: Any) -> None:
    error = sign_in_answered({"access_token": "t", "expires_in": expires_in})
    assert error is not None
    assert error.reason == ProviderReason.ERROR
    assert "expires_in" in error.message
    assert "forged" not in error.message
    assert len(error.message) <= ProviderError.MAX_MESSAGE


@pytest.mark.parametrize(
    "answer", [{"access_token": "t", "expires_in": 300}, {"access_token": "t"}]
)
def test_a_token_with_seconds_or_without_expires_in_signs_in(answer: dict[str, Any]) -> None:
    assert sign_in_answered(answer) is None


def test_token_lifetime_takes_only_finite_positive_numbers() -> None:
    assert token_lifetime(None) == 60.0
    assert token_lifetime(300) == 300.0
    assert token_lifetime(0.5) == 0.5
    for value in (math.nan, math.inf, -1, 0, True, "300", b"300"):
        assert token_lifetime(value) is None, value
