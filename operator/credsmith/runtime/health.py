"""The liveness endpoint: /healthz answers while the event loop runs.

A standby replica (waiting for the Lease) is alive too, so this is our own small
server rather than kopf's, which exists only while kopf runs.
"""

from __future__ import annotations

import json

from aiohttp import web


class Health:
    def __init__(self) -> None:
        self.role = "starting"  # starting | standby | leader

    async def serve(self, port: int) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - a pod's probe port
        return runner

    async def _healthz(self, request: web.Request) -> web.Response:
        del request
        return web.Response(text=json.dumps({"status": "ok", "role": self.role}))
