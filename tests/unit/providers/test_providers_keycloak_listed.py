"""Clients Keycloak lists, as the operator reads them: anyone with the realm's admin can write
a client's attributes, so a marker that is not of our shape is no marker (never an exception
in the worker), and a listed entry without Keycloak's shape is skipped. A local aiohttp
server stands in for the admin API; Keycloak itself: tests/e2e/test_provider_keycloak.py."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from aiohttp import web

from credsmith.providers import keycloak as kc
from credsmith.providers import keycloak_answers as answers_
from credsmith.providers import keycloak_rep as rep_
from credsmith.providers.base import MarkedClient, Marker, Owner, ProviderError, ProviderReason
from tests.unit.providers.keycloak_stand_in import ADMIN_PATH, TOKEN_PATH, against

MARKER = Marker("prov-uid", Owner("ApiClient", "team-a", "billing", "owner-uid"), revision=3)
OURS = rep_.marker_attributes(MARKER)


def forged(key: str, value: Any) -> dict[str, Any]:
    return {"attributes": {**OURS, key: value}}


def test_our_marker_reads_back() -> None:
    assert rep_.marker_of({"attributes": OURS}) == MARKER
    assert rep_.marker_of(forged(rep_.REVISION, "")) == Marker(MARKER.provider_uid, MARKER.owner)


@pytest.mark.parametrize(
    "rep",
    [
        {"attributes": ["credsmith.io/owner-uid"]},
        {"attributes": "owner-uid"},
        forged(rep_.REVISION, ["3"]),
        forged(rep_.REVISION, {"n": 3}),
        forged(rep_.REVISION, "three"),
        forged(rep_.REVISION, "-1"),
        forged(rep_.REVISION, "²"),  # str.isdigit() takes it, int() refuses it
        forged(rep_.REVISION, "①"),
        forged(rep_.REVISION, "9" * 4301),  # past int()'s digits limit
        forged(rep_.REVISION, 3),
        forged(rep_.OWNER_UID, ["owner-uid"]),
        forged(rep_.OWNER_UID, ""),
        forged(rep_.PROVIDER_UID, ""),
        forged(rep_.OWNER_NAME, 7),
        forged(rep_.OWNER_KIND, None),
    ],
)
def test_a_marker_not_of_our_shape_is_none_and_not_ours(rep: dict[str, Any]) -> None:
    assert rep_.marker_of(rep) is None
    assert not rep_.is_ours(rep, MARKER)


def listed_by(pages: list[Any]) -> list[MarkedClient] | ProviderError:
    """KeycloakClient.list_marked() against an admin API that answers GET /clients with
    `pages` (one a call): what it listed, or the ProviderError it raised."""
    answers = iter(pages) if len(pages) > 1 else itertools.repeat(pages[0])

    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": "t", "expires_in": 300})

    async def clients(request: web.Request) -> web.Response:
        answer = next(answers)
        if isinstance(answer, bytes):
            return web.Response(body=answer, content_type="application/json")
        return web.json_response(answer)

    def routes(app: web.Application) -> None:
        app.router.add_post(TOKEN_PATH, token)
        app.router.add_get(f"{ADMIN_PATH}/clients", clients)

    return against(routes, lambda client: client.list_marked(MARKER.provider_uid))


def test_listed_entries_without_keycloaks_shape_are_skipped() -> None:
    page = [
        "billing",
        ["billing"],
        {"id": 5, "clientId": "numeric-id", "attributes": OURS},
        {"id": "u1", "clientId": ["listed"], "attributes": OURS},
        {"id": "u2", "attributes": OURS},
        {"id": "u3", "clientId": "forged-revision", **forged(rep_.REVISION, ["3"])},
        {"id": "u4", "clientId": "theirs", "attributes": {"theirs": "1"}},
        {"id": "u5", "clientId": "billing", "attributes": OURS},
    ]
    assert listed_by([page]) == [MarkedClient(client_id="billing", marker=MARKER)]


@pytest.mark.parametrize("answer", [{"clients": []}, "[]", None])
def test_a_list_answer_that_is_no_list_is_a_provider_error(answer: Any) -> None:
    error = listed_by([answer])
    assert isinstance(error, ProviderError)
    assert error.reason is ProviderReason.ERROR
    assert "not a list" in error.message


def test_a_listing_that_does_not_advance_is_a_provider_error() -> None:
    # A server (or a proxy) that ignores `first` answers the same full page for ever.
    page = [{"id": f"u{n}", "clientId": f"c{n}", "attributes": OURS} for n in range(kc.PAGE)]
    error = listed_by([page])
    assert isinstance(error, ProviderError)
    assert error.reason is ProviderReason.ERROR
    assert "never ends" in error.message


def test_json_nested_past_the_stack_is_no_answer() -> None:
    error = listed_by([b"[" * 5000 + b"]" * 5000])
    assert isinstance(error, ProviderError)
    assert "not a list" in error.message


def test_scopes_not_of_keycloaks_shape_are_skipped_and_no_list_is_an_error() -> None:
    listed = [{"name": "read", "id": "s1"}, {"name": "write"}, {"id": "s3"}, "read", {"name": 1}]
    assert answers_.scope_ids(listed) == {"read": "s1"}
    with pytest.raises(ProviderError, match="not a list"):
        answers_.scope_ids({"read": "s1"})


def test_a_secret_keycloak_echoes_is_taken_out_before_the_cut() -> None:
    secret = "S" * 20 + "T" * 20
    body = {"errorMessage": f"{secret} " + "d" * 170, "error": "invalid secret"}
    error = answers_.failure("POST", "https://kc.invalid/clients", 400, body, ("", secret))
    assert error.reason is ProviderReason.REJECTED
    assert "S" * 5 not in error.message
    assert "T" * 5 not in error.message
    assert f": 400 {answers_.HIDDEN} ddd" in error.message
