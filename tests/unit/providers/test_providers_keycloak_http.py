"""KeycloakClient's HTTP plumbing against a local aiohttp server standing in for what may
sit in front of Keycloak (a proxy that redirects): answers a bare Keycloak never gives.
Keycloak itself: tests/e2e/test_provider_keycloak.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.keycloak import KeycloakClient

ADMIN_SECRET = "kc-admin-secret-never-elsewhere"


def check_against(redirect: Callable[[str], str]) -> tuple[ProviderError, list[str], list[str]]:
    """KeycloakClient.check() against a server whose every answer redirects to
    `redirect(elsewhere's base URL)`; the error, the paths the redirecting server was asked
    for, and the bodies the server redirected to received."""
    asked: list[str] = []
    received: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        received.append(await request.text())
        return web.json_response({"access_token": "t", "expires_in": 60})

    async def main() -> ProviderError:
        target = web.Application()
        target.router.add_route("*", "/{tail:.*}", elsewhere)
        target_runner = web.AppRunner(target)
        await target_runner.setup()
        await web.TCPSite(target_runner, "127.0.0.1", 0).start()
        base = f"http://127.0.0.1:{target_runner.addresses[0][1]}"

        async def redirecting(request: web.Request) -> web.Response:
            asked.append(request.path)
            raise web.HTTPTemporaryRedirect(redirect(base) + request.path)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", redirecting)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        client = KeycloakClient(
            f"http://127.0.0.1:{runner.addresses[0][1]}", "machines", "credsmith", ADMIN_SECRET
        )
        try:
            with pytest.raises(ProviderError) as caught:
                await client.check()
            return caught.value
        finally:
            await client.close()
            await runner.cleanup()
            await target_runner.cleanup()

    error = asyncio.run(main())
    return error, asked, received


def test_a_redirect_is_not_followed_and_the_admin_secret_stays() -> None:
    # The operator's allow-list holds for the URL called, not where it points; a 307 keeps
    # the method and the form (the admin client's secret) for whoever it points at.
    error, asked, received = check_against(lambda elsewhere: elsewhere)
    assert received == []
    assert asked == ["/realms/machines/protocol/openid-connect/token"]
    assert error.reason is ProviderReason.ERROR
    assert "307" in error.message
    assert ADMIN_SECRET not in error.message


@pytest.mark.parametrize(
    "url", ["http://a\\b:4445", "http://[::1:4445", "http://a:99999", "http://a:x"]
)
def test_a_url_the_schema_lets_through_but_none_can_call_is_a_provider_error(url: str) -> None:
    # The CRD's URL pattern admits these; the call must still end in status, not a crash.
    from credsmith.providers.hydra import HydraClient

    async def main() -> None:
        for client in (HydraClient(url), KeycloakClient(url, "r", "id", ADMIN_SECRET)):
            try:
                with pytest.raises(ProviderError) as caught:
                    await client.check()
            finally:
                await client.close()
            assert caught.value.reason is ProviderReason.REJECTED
            assert "not a URL that can be called" in caught.value.message

    asyncio.run(main())
