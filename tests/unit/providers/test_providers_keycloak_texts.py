"""What KeycloakClient puts into a ProviderError's message (status, Events, the plain-text
log) from what it did not choose: the admin client ID read from a Secret, the internal ids
Keycloak lists. Keycloak's HTTP answers are stood in for (no Keycloak, no server): the calls
it is asked for are recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.keycloak import KeycloakClient

FORGED = "admin\n2026-12-07 05:00:00,000 INFO credsmith.providers: forged\u202e"


def _answering(client: KeycloakClient, answer: Any) -> list[str]:
    """`client` whose every request is answered by `answer(method, url)`; the URLs asked."""
    asked: list[str] = []

    async def request(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        asked.append(url)
        return answer(method, url)  # type: ignore[no-any-return]

    client._request = request  # type: ignore[method-assign]
    return asked


def test_a_refused_admin_client_id_is_named_printable_and_bounded() -> None:
    client = KeycloakClient("https://kc.invalid", "r", FORGED + "x" * 500, "s")
    _answering(client, lambda method, url: (401, {"error": "invalid_client"}))
    with pytest.raises(ProviderError) as refused:
        asyncio.run(client.check())
    assert refused.value.reason is ProviderReason.LOGIN_REFUSED
    assert refused.value.message.isprintable()
    assert "admin 2026-12-07 05:00:00,000 INFO credsmith.providers: forged" in refused.value.message
    assert "x" * 100 not in refused.value.message
    assert refused.value.message.endswith(
        ": 401 invalid_client (at https://kc.invalid/realms/r/protocol/openid-connect/token)"
    )


def test_a_long_address_is_cut_not_the_status_and_keycloaks_text() -> None:
    client = KeycloakClient("https://kc.invalid", "r" * 400, "admin", "s")
    _answering(client, lambda method, url: (401, {"error": "invalid_client"}))
    with pytest.raises(ProviderError) as refused:
        asyncio.run(client.check())
    assert len(refused.value.message) <= ProviderError.MAX_MESSAGE
    assert "r" * 200 not in refused.value.message
    assert "admin client admin: 401 invalid_client (at https://kc.invalid/realms/r" in (
        refused.value.message
    )


def test_a_listed_internal_id_is_one_quoted_segment_of_the_path_and_of_the_message() -> None:
    listed = "../../users/x?y\n\u202e"

    def answer(method: str, url: str) -> tuple[int, Any]:
        if url.endswith("/token"):
            return 200, {"access_token": "t", "expires_in": 60}
        if method == "GET":
            return 200, [{"clientId": "c", "id": listed}]
        return 400, {"errorMessage": "no"}

    client = KeycloakClient("https://kc.invalid", "r", "admin", "s")
    asked = _answering(client, answer)
    with pytest.raises(ProviderError) as failed:
        asyncio.run(client.delete_if("c", lambda marker: True))
    quoted = "..%2F..%2Fusers%2Fx%3Fy%0A%E2%80%AE"
    assert asked[-1] == f"https://kc.invalid/admin/realms/r/clients/{quoted}"
    assert failed.value.message == f"Keycloak DELETE {asked[-1]}: 400 no"


def test_a_url_in_a_failure_is_printable_and_bounded() -> None:
    client = KeycloakClient("https://kc.invalid/\u202e" + "p" * 600, "r", "admin", "s")
    _answering(client, lambda method, url: (500, None))
    with pytest.raises(ProviderError) as failed:
        asyncio.run(client.check())
    assert failed.value.message.isprintable()
    assert failed.value.message.endswith("…: 500")  # the URL cut, not the status
