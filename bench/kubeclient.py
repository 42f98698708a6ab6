"""A small asyncio client for the apiserver (aiohttp), for the benchmark's own traffic.

The bench needs many concurrent requests from one process (the floor, bulk creates)
and watches that timestamp what they see; aiohttp does both without threads. It reads
the kubeconfig the local control plane writes (a server, its CA, a bearer token).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

GROUP, VERSION = "credsmith.io", "v1alpha1"
PLURAL = "serviceaccountcredentials"
KIND = "ServiceAccountCredential"

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
RETRIES_429 = 30


class ApiError(Exception):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: {status} {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str
    token: str
    ca_pem: str

    @classmethod
    def from_kubeconfig(cls, path: Path) -> Credentials:
        config = yaml.safe_load(path.read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        return cls(cluster["server"], user["token"], ca)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem)


def sac_path(namespace: str, name: str = "", subresource: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def is_ready(obj: Mapping[str, Any]) -> bool:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True")
    return False


class Api:
    """One aiohttp session; `limit` bounds its concurrent connections."""

    def __init__(self, credentials: Credentials, limit: int = 64) -> None:
        self.credentials = credentials
        self.base = credentials.server.rstrip("/")
        connector = aiohttp.TCPConnector(ssl=credentials.ssl_context(), limit=limit)
        self.session = aiohttp.ClientSession(
            connector=connector,
            headers={"Authorization": f"Bearer {credentials.token}"},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None),
        )

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = JSON,
        *,
        decode: bool = True,
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> Any:
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": content_type} if data is not None else {}
        for attempt in range(RETRIES_429):
            async with self.session.request(
                method, self.base + path, data=data, headers=headers
            ) as response:
                raw = await response.read()
                if response.status == 429 and attempt < RETRIES_429 - 1:
                    # e.g. "storage is (re)initializing" right after a CRD is established
                    await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
                    continue
                if response.status not in ok:
                    raise ApiError(response.status, method, path, raw.decode(errors="replace"))
                return json.loads(raw) if decode and raw else None
        raise AssertionError("unreachable")

    # ---- objects ------------------------------------------------------------------

    async def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.request("POST", "/api/v1/namespaces", body, decode=False)

    async def delete_namespace(self, name: str, timeout: float = 600) -> float:
        """Delete a namespace and wait until it is gone; return the seconds it took."""
        started = time.monotonic()
        try:
            await self.request("DELETE", f"/api/v1/namespaces/{name}", decode=False)
        except ApiError as exc:
            if exc.status == 404:
                return 0.0
            raise
        deadline = started + timeout
        while time.monotonic() < deadline:
            listing = await self.request(
                "GET", f"/api/v1/namespaces?fieldSelector=metadata.name%3D{name}"
            )
            if not listing["items"]:
                return time.monotonic() - started
            rv = listing["metadata"]["resourceVersion"]
            path = (
                f"/api/v1/namespaces?watch=1&fieldSelector=metadata.name%3D{name}"
                f"&resourceVersion={rv}&timeoutSeconds=30"
            )
            async for kind, _ in self.watch(path):
                if kind == "DELETED":
                    return time.monotonic() - started
        raise TimeoutError(f"namespace {name} still exists after {timeout:.0f}s")

    async def create_sac(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("POST", sac_path(namespace), body)
        return result

    async def list_json(self, path: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", path)
        return result

    async def metrics(self) -> dict[tuple[str, str], float]:
        """apiserver_request_total summed by (verb, resource[/subresource])."""
        return parse_request_totals(await self.metrics_text())

    async def metrics_text(self) -> str:
        async with self.session.get(self.base + "/metrics") as response:
            text: str = await response.text()
        return text

    async def flows(self) -> dict[str, float]:
        """apiserver_flowcontrol_dispatched_requests_total by flow schema: requests
        attributed to a client identity (each WATCH counts once, when it starts)."""
        return parse_flows(await self.metrics_text())

    async def watch(self, path: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield (type, object) from a watch until the server ends it."""
        async with self.session.get(self.base + path) as response:
            if response.status != 200:
                body = await response.text()
                raise ApiError(response.status, "WATCH", path, body)
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:end], buffer[end + 1 :]
                    if line.strip():
                        event = json.loads(line)
                        yield event["type"], event["object"]


def parse_request_totals(text: str) -> dict[tuple[str, str], float]:
    totals: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, _, value = line[len("apiserver_request_total{") :].rpartition("} ")
        labels = _labels(labels_text)
        resource = labels.get("resource", "")
        if labels.get("subresource"):
            resource += "/" + labels["subresource"]
        key = (labels.get("verb", ""), resource)
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in text.split('",'):
        key, _, raw = part.partition("=")
        labels[key.strip(",")] = raw.strip('"')
    return labels


def parse_flows(text: str) -> dict[str, float]:
    prefix = "apiserver_flowcontrol_dispatched_requests_total{"
    flows: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            labels_text, _, value = line[len(prefix) :].rpartition("} ")
            schema = _labels(labels_text).get("flow_schema", "")
            flows[schema] = flows.get(schema, 0.0) + float(value)
    return flows


def parse_watchers(text: str, resource: str) -> float:
    """Open WATCH requests on a resource (apiserver_longrunning_requests)."""
    prefix = "apiserver_longrunning_requests{"
    total = 0.0
    for line in text.splitlines():
        if line.startswith(prefix):
            labels_text, _, value = line[len(prefix) :].rpartition("} ")
            labels = _labels(labels_text)
            if labels.get("verb") == "WATCH" and labels.get("resource") == resource:
                total += float(value)
    return total


@dataclass
class ReadyWatch:
    """A watch on one namespace's ServiceAccountCredentials that timestamps Ready.

    `ready[name]` is the monotonic time at which this process first saw the object
    with Ready=True, taken as each watch event is decoded.
    """

    api: Api
    namespace: str
    ready: dict[str, float] = field(default_factory=dict)
    events: int = 0
    _waiters: dict[str, asyncio.Future[float]] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _started: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        listing = await self.api.list_json(sac_path(self.namespace))
        for item in listing["items"]:
            if is_ready(item):
                self.ready.setdefault(item["metadata"]["name"], time.monotonic())
        self._task = asyncio.create_task(self._run(listing["metadata"]["resourceVersion"]))

    async def _run(self, rv: str) -> None:
        while True:
            path = (
                sac_path(self.namespace)
                + f"?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=3600"
            )
            async for kind, obj in self.api.watch(path):
                if kind == "ERROR":
                    raise RuntimeError(f"watch error: {obj}")
                rv = obj["metadata"]["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                self.events += 1
                name = obj["metadata"]["name"]
                if name not in self.ready and kind != "DELETED" and is_ready(obj):
                    now = time.monotonic()
                    self.ready[name] = now
                    if (waiter := self._waiters.pop(name, None)) and not waiter.done():
                        waiter.set_result(now)
                    self._changed.set()

    async def wait_for(self, name: str, timeout: float) -> float:
        if name in self.ready:
            return self.ready[name]
        waiter = self._waiters.setdefault(name, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(self._guarded(waiter), timeout)

    async def wait_all(self, names: set[str], timeout: float) -> float:
        """Wait until every name was seen Ready; return the latest of their times."""
        deadline = time.monotonic() + timeout
        while not names <= self.ready.keys():
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                missing = len(names - self.ready.keys())
                raise TimeoutError(f"{missing} of {len(names)} not Ready after {timeout:.0f}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 1.0))
        return max(self.ready[name] for name in names)

    async def _guarded(self, waiter: asyncio.Future[float]) -> float:
        while True:
            self._check_alive()
            done, _ = await asyncio.wait({waiter}, timeout=1.0)
            if done:
                return waiter.result()

    def _check_alive(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # re-raise the watch's error
            raise RuntimeError("the watch ended")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
