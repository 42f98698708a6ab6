"""The HTTP session: credentials, errors and watch-stream framing, against a local
aiohttp server (plain HTTP) standing in for the transport only."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from credsmith.runtime.session import ApiError, ApiSession, Gone


class Configuration:
    """The two things ApiSession reads of a kubernetes-client Configuration."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.token = "first"
        self.reads = 0

    def auth_settings(self) -> dict[str, dict[str, str]]:
        self.reads += 1
        return {
            "BearerToken": {"in": "header", "key": "authorization", "value": f"Bearer {self.token}"}
        }


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def serve(handler: Handler, test: Callable[[ApiSession, Configuration], Awaitable[None]]) -> None:
    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        configuration = Configuration(f"http://127.0.0.1:{port}")
        session = ApiSession(configuration)
        try:
            await test(session, configuration)
        finally:
            await session.close()
            await runner.cleanup()

    asyncio.run(main())


def test_requests_carry_the_token_read_once_and_again_after_a_401() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") == "Bearer first" and len(seen) > 2:
            return web.json_response({"message": "Unauthorized"}, status=401)
        return web.json_response({"ok": True})

    async def test(session: ApiSession, configuration: Configuration) -> None:
        assert await session.request("GET", "/version") == {"ok": True}
        await session.request("GET", "/version")
        assert configuration.reads == 1  # not once per request
        configuration.token = "second"  # rotated on disk
        with pytest.raises(ApiError) as failed:
            await session.request("GET", "/version")
        assert failed.value.status == 401
        assert await session.request("GET", "/version") == {"ok": True}

    serve(handler, test)
    assert seen == ["Bearer first", "Bearer first", "Bearer first", "Bearer second"]


def test_errors_carry_the_api_servers_message_and_unreachable_is_status_0() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"message": 'secrets "x" already exists'}, status=409)

    async def test(session: ApiSession, configuration: Configuration) -> None:
        with pytest.raises(ApiError) as failed:
            await session.request("POST", "/api/v1/namespaces/a/secrets", body={"a": 1})
        assert (failed.value.status, failed.value.message) == (409, 'secrets "x" already exists')
        session.base = "http://127.0.0.1:1"  # nothing listens there
        with pytest.raises(ApiError) as unreachable:
            await session.request("GET", "/version")
        assert unreachable.value.status == 0

    serve(handler, test)


def test_watch_splits_events_longer_than_aiohttps_line_limit() -> None:
    big = {"type": "ADDED", "object": {"data": {"k": "x" * 1_500_000}}}
    small = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "7"}}}

    async def handler(request: web.Request) -> web.StreamResponse:
        assert request.query["watch"] == "true"
        response = web.StreamResponse()
        await response.prepare(request)
        payload = (json.dumps(big) + "\n" + json.dumps(small) + "\n").encode()
        for start in range(0, len(payload), 7000):  # split across chunks, mid-line
            await response.write(payload[start : start + 7000])
        await response.write_eof()
        return response

    async def test(session: ApiSession, configuration: Configuration) -> None:
        events: list[dict[str, Any]] = [
            event async for event in session.watch("/api/v1/secrets", {}, idle_timeout=10)
        ]
        assert events == [big, small]

    serve(handler, test)


def test_watch_from_an_expired_version_raises_gone() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"code": 410}, status=410)

    async def test(session: ApiSession, configuration: Configuration) -> None:
        with pytest.raises(Gone):
            async for _ in session.watch("/api/v1/secrets", {"resourceVersion": "1"}, 10):
                pass

    serve(handler, test)
