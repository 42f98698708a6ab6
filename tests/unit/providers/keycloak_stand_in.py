"""A local aiohttp server standing in for Keycloak's token endpoint and admin API, with
answers a real Keycloak never gives (Keycloak itself: tests/e2e/test_provider_keycloak.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from credsmith.providers.base import ProviderError
from credsmith.providers.keycloak import KeycloakClient

REALM = "machines"
TOKEN_PATH = f"/realms/{REALM}/protocol/openid-connect/token"
ADMIN_PATH = f"/admin/realms/{REALM}"
T = TypeVar("T")


def against(
    routes: Callable[[web.Application], None], call: Callable[[KeycloakClient], Awaitable[T]]
) -> T | ProviderError:
    """`call(client)` for a KeycloakClient of a server that `routes` set up: what it
    returned, or the ProviderError it raised."""

    async def main() -> T | ProviderError:
        app = web.Application()
        routes(app)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        client = KeycloakClient(
            f"http://127.0.0.1:{runner.addresses[0][1]}", REALM, "credsmith", "s3cret"
        )
        try:
            return await call(client)
        except ProviderError as error:
            return error
        finally:
            await client.close()
            await runner.cleanup()

    return asyncio.run(main())
