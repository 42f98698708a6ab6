"""Health endpoints, served by every replica (a standby too).

- /healthz (liveness): 200 while the operator's loops make progress: every watch loop
  running and trying, and workers taking keys when keys wait (heartbeats, see
  Controller.liveness_problem); 500 with the reason otherwise, so the kubelet
  restarts a wedged process. An unreachable API server is not a reason to restart
  the operator, so it does not fail this probe.
- /readyz: 200 when the API server answers (GET /version, not a resource read) and,
  on the leader, once its caches hold their first listings; 503 with the reason
  otherwise: what the operator can do right now.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web


class Health:
    def __init__(self, probe_api: Callable[[], Awaitable[None]] | None = None) -> None:
        self.role = "starting"  # starting | standby | leader
        self.probe_api = probe_api
        # Set by the leader's controller: why it should be restarted (None: it should
        # not), and whether its caches have synced.
        self.liveness: Callable[[], str | None] | None = None
        self.synced: Callable[[], bool] | None = None

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
        problem = self.liveness() if self.liveness is not None else None
        if problem is not None:
            body = {"status": "stuck", "role": self.role, "problem": problem}
            return web.Response(status=500, text=json.dumps(body))
        return web.Response(text=json.dumps({"status": "ok", "role": self.role}))

    async def _readyz(self, request: web.Request) -> web.Response:
        del request
        body: dict[str, str] = {"role": self.role, "apiserver": "ok"}
        status = 200
        if self.role == "leader" and self.synced is not None and not self.synced():
            body["caches"] = "not synced yet"
            status = 503
        if self.probe_api is not None:
            try:
                await self.probe_api()
            except Exception as exc:
                body["apiserver"] = f"unreachable: {type(exc).__name__}"
                status = 503
        return web.Response(status=status, text=json.dumps(body))
