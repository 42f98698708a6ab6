"""HydraClient's HTTP plumbing against a local aiohttp server standing in for what may sit
in front of Hydra's admin API (a proxy that logs in, redirects, or fails): the answers a
bare Hydra never gives. Hydra itself: tests/e2e/test_provider_hydra.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.http_body import MAX_BODY
from credsmith.providers.hydra import HydraClient

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_against(handler: Handler, prefix: str = "") -> tuple[ProviderError, list[str]]:
    """HydraClient.check() against `handler` (at the path `prefix`); the error and the paths
    it was asked for."""
    asked: list[str] = []

    async def recording(request: web.Request) -> web.StreamResponse:
        asked.append(request.path)
        return await handler(request)

    async def main() -> ProviderError:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recording)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        client = HydraClient(f"http://127.0.0.1:{runner.addresses[0][1]}{prefix}")
        try:
            with pytest.raises(ProviderError) as caught:
                await client.check()
            return caught.value
        finally:
            await client.close()
            await runner.cleanup()

    return asyncio.run(main()), asked


def test_a_redirect_is_not_followed() -> None:
    async def handler(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    error, asked = check_against(handler)
    assert error.reason is ProviderReason.ERROR
    assert "302" in error.message
    assert asked == ["/admin/clients"]


@pytest.mark.parametrize(
    ("status", "reason"),
    [(401, ProviderReason.LOGIN_REFUSED), (403, ProviderReason.FORBIDDEN)],
)
def test_a_refused_login_and_a_forbidden_call_keep_the_error_text(
    status: int, reason: ProviderReason
) -> None:
    async def handler(request: web.Request) -> web.Response:
        body = {"error": "access_denied", "error_description": "token\nexpired"}
        return web.json_response(body, status=status)

    error, _ = check_against(handler)
    assert error.reason is reason
    assert error.message.endswith(f"/admin/clients: {status} access_denied: token expired")


def test_an_answer_that_is_not_hydras_is_not_quoted() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>internal-host.corp secrets</html>")

    error, _ = check_against(handler)
    assert error.reason is ProviderReason.ERROR
    assert error.message.endswith("/admin/clients: 502")


def test_an_answer_too_long_is_not_read_whole() -> None:
    # A tenant's IdentityProvider may name any URL: gigabytes read whole would take the
    # operator's memory. The answer is read up to a bound, then refused.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        chunk = b"[" + b" " * (1024 * 1024)
        try:
            for _ in range(MAX_BODY // len(chunk) + 4):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading, as it should
        return response

    error, _ = check_against(handler)
    assert error.reason is ProviderReason.ERROR
    assert error.message.endswith("/admin/clients: 200, an answer longer than 8 MiB")


def test_an_empty_page_ends_the_listing_whatever_its_next_link_says() -> None:
    # What a Hydra holding no client answers (tests/e2e/test_provider_hydra.py shows it
    # with a real one): an empty list, and a `next` link to a page past the end, always.
    asked: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        asked.append(request.query_string)
        offset = int(request.query.get("page_token", "0")) + 100
        link = f'</admin/clients?page_size=100&page_token={offset}>; rel="next"'
        return web.json_response([], headers={"Link": link})

    async def main() -> list[object]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        client = HydraClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
        try:
            return list(await client.list_marked("provider-uid"))
        finally:
            await client.close()
            await runner.cleanup()

    assert asyncio.run(main()) == []
    assert asked == ["page_size=100"]


# What the ASCII control characters miss: a C1 control (CSI), a line separator, NEL, a
# right-to-left override and a zero-width space.
UNPRINTABLE = "\x9b31m\u2028\x85\u202e\u200b"


def test_the_error_text_is_printable_whatever_hydra_answers() -> None:
    async def handler(request: web.Request) -> web.Response:
        body = {
            "error": f"access{UNPRINTABLE}denied",
            "error_description": "x" * 300 + f". The particular{UNPRINTABLE}hint.",
        }
        return web.json_response(body, status=401)

    error, _ = check_against(handler)
    assert error.message.isprintable()
    assert error.message.endswith(": 401 access 31m denied: …The particular 31m hint.")


def test_a_long_url_leaves_room_for_the_status_and_hydras_hint() -> None:
    # A long address (or client ID in the path) is cut, not what follows it.
    async def handler(request: web.Request) -> web.Response:
        body = {
            "error": "invalid_request",
            "error_description": "The request is malformed. " * 8 + "The particular hint.",
        }
        return web.json_response(body, status=400)

    error, _ = check_against(handler, prefix="/" + "p" * 400)
    assert error.reason is ProviderReason.REJECTED
    assert len(error.message) <= ProviderError.MAX_MESSAGE
    assert "p" * 200 not in error.message
    assert "…: 400 invalid_request: …" in error.message
    assert error.message.endswith("The particular hint.")


def test_a_secret_echoed_is_taken_out_before_any_cut() -> None:
    secret = "S" * 20 + "T" * 20
    client = HydraClient("http://hydra.invalid")
    # A cut at the message's bound must not leave a part of the secret behind.
    description = f"{secret} " + "d" * 140 + "."
    with pytest.raises(ProviderError) as caught:
        client._raise_for(
            400, {"error": "x", "error_description": description}, "PUT", "u", secret=secret
        )
    assert "S" * 5 not in caught.value.message
    assert "T" * 5 not in caught.value.message
    assert caught.value.message.endswith("*** " + "d" * 140 + ".")
