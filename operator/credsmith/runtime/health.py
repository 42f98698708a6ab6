"""Health endpoints, served by every replica (a standby too).

- /healthz (liveness): 200 while the event loop runs. An unreachable API server is
  not a reason to restart the operator, so it does not fail this probe.
- /readyz: 200 when the API server answers (GET /version, not a resource read),
  503 with the reason when it does not: what the operator can do right now.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web


class Health:
    def __init__(self, probe_api: Callable[[], Awaitable[None]] | None = None) -> None:
        self.role = "starting"  # starting | standby | leader
        self.probe_api = probe_api

    async def serve(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - a pod's probe port
        return runner

    async def _healthz(self, request: web.Request) -> web.Response:
        del request
        return web.Response(text=json.dumps({"status": "ok", "role": self.role}))

    async def _readyz(self, request: web.Request) -> web.Response:
        del request
        body: dict[str, str] = {"role": self.role, "apiserver": "ok"}
        status = 200
        if self.probe_api is not None:
            try:
                await self.probe_api()
            except Exception as exc:
                body["apiserver"] = f"unreachable: {type(exc).__name__}"
                status = 503
        return web.Response(status=status, text=json.dumps(body))
