"""The measurements. Each takes the shared context and returns a JSON-able dict."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster_setup import operator_requests
from kubeclient import (
    GROUP,
    KIND,
    MERGE_PATCH,
    PLURAL,
    VERSION,
    Api,
    Credentials,
    ReadyWatch,
    sac_path,
)
from procs import CpuMeter, OperatorProcess

# What each bench resource asks for: the README's tour, minus the labels.
TEMPLATE_URL = "https://{{ clientId }}:{{ clientSecret }}@api.example.com"

OPERATOR_RESOURCES = (
    "secrets",
    "serviceaccountcredentials",
    "serviceaccountcredentials/status",
    "apiclients",
    "apiclients/status",
    "events",
)
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE", "DELETECOLLECTION")
READ_VERBS = ("GET", "LIST", "WATCH")

CANARY_NAMESPACE = "bench-canary"


def sac(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {
            "serviceAccount": name,
            "rotation": {"period": "720h", "overlap": "24h"},
            "secretTemplate": {"data": {"url": TEMPLATE_URL}},
        },
    }


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(n)]


@dataclass
class Context:
    credentials: Credentials
    admin_kubeconfig: Path
    api: Api  # shared session for watches, lists, metrics
    operator: OperatorProcess
    cluster_pid: int
    results_dir: Path
    ready_timeout: float
    profile: bool = False
    log: Callable[[str], None] = print
    canaries: int = 0
    profiles: list[str] = field(default_factory=list)

    def meter(self) -> CpuMeter:
        pids = {"apiserver": self.cluster_pid}
        if self.operator.process is not None:
            pids["operator"] = self.operator.pid
        return CpuMeter(pids)


async def run_pool(
    credentials: Credentials,
    concurrency: int,
    items: Iterable[Any],
    work: Callable[[Api, Any], Awaitable[None]],
) -> float:
    """Run `work` over `items` with `concurrency` workers on their own connections."""
    queue = list(items)
    queue.reverse()
    async with Api(credentials, limit=concurrency) as api:

        async def worker() -> None:
            while queue:
                await work(api, queue.pop())

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.monotonic() - started


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        # nearest-rank: the smallest value with at least q of the samples at or below it
        index = max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))
        return round(ordered[index] * 1e3, 1)

    return {
        "p50_ms": at(0.50),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1e3, 1),
        "mean_ms": round(statistics.fmean(ordered) * 1e3, 1),
    }


# ---- floor -----------------------------------------------------------------------------


FLOOR_MODES = {
    # mode: (what is timed, requests per resource)
    "floor": ("Secret create + status patch, on pre-created resources", 2),
    "events": ("Secret create + status patch + Event, on pre-created resources", 3),
    "scenario": ("resource create + Secret create + status patch + Event", 4),
}


@dataclass
class FloorItem:
    name: str
    secret: dict[str, Any]
    status: dict[str, Any]
    event: dict[str, Any] | None
    body: dict[str, Any]  # the resource to create (scenario mode)


def _floor_items(resources: list[dict[str, Any]], events: bool) -> list[FloorItem]:
    """The operator's own pure decision for each: the same Secret, status and Event."""
    from credsmith.reconcile.credential import reconcile
    from credsmith.reconcile.kinds import SERVICE_ACCOUNT_CREDENTIAL
    from credsmith.reconcile.snapshots import ResourceSnapshot
    from credsmith.reconcile.state_mac import StateKey

    now = datetime.now(UTC)
    state_key = StateKey.generate()  # the floor writes what the operator would, MAC included
    items = []
    for body in resources:
        snapshot = ResourceSnapshot.from_api(body)
        decision = reconcile(SERVICE_ACCOUNT_CREDENTIAL, snapshot, None, now, state_key=state_key)
        assert decision.secret is not None
        event = None
        if events:
            first = decision.events[0]
            event = _event_body(body, first.type, first.reason, first.message)
        items.append(
            FloorItem(
                name=snapshot.name,
                secret=dict(decision.secret),
                status={"status": dict(decision.status)},
                event=event,
                body=sac(snapshot.name),
            )
        )
    return items


def _set_uid(item: FloorItem, uid: str) -> None:
    for owner in item.secret["metadata"].get("ownerReferences", ()):
        owner["uid"] = uid
    if item.event is not None:
        item.event["involvedObject"]["uid"] = uid


async def floor_trial(
    ctx: Context, n: int, concurrency: int, *, mode: str = "floor", client: str = "aiohttp"
) -> dict[str, Any]:
    """The operator's minimum API work for N resources, done by this process with the
    operator stopped (see FLOOR_MODES). Only those requests are timed."""
    assert ctx.operator.process is None, "the floor is measured with the operator stopped"
    namespace = f"floor-{n}-{mode}-{client[:4]}-c{concurrency}"
    await ctx.api.create_namespace(namespace)
    if mode == "scenario":
        # Created in the timed part; the uid goes into the Secret's ownerReference then.
        resources = [
            {
                **sac(name),
                "metadata": {"name": name, "namespace": namespace, "uid": "-", "generation": 1},
            }
            for name in names("floor", n)
        ]
    else:
        resources = []

        async def create(api: Api, name: str) -> None:
            resources.append(await api.create_sac(namespace, sac(name)))

        await run_pool(ctx.credentials, 32, names("floor", n), create)
    items = _floor_items(resources, events=mode != "floor")
    create_first = mode == "scenario"
    meter = ctx.meter()
    if client == "aiohttp":

        async def write(api: Api, item: FloorItem) -> None:
            if create_first:
                created = await api.create_sac(namespace, item.body)
                _set_uid(item, created["metadata"]["uid"])
            await api.request(
                "POST", f"/api/v1/namespaces/{namespace}/secrets", item.secret, decode=False
            )
            await api.request(
                "PATCH",
                sac_path(namespace, item.name, "status"),
                item.status,
                MERGE_PATCH,
                decode=False,
            )
            if item.event is not None:
                await api.request(
                    "POST", f"/api/v1/namespaces/{namespace}/events", item.event, decode=False
                )

        seconds = await run_pool(ctx.credentials, concurrency, items, write)
    else:
        seconds = await asyncio.to_thread(
            _kubernetes_pool, ctx.admin_kubeconfig, namespace, concurrency, items, create_first
        )
    cpu = meter.stop()
    cleanup = await ctx.api.delete_namespace(namespace)
    requests = n * FLOOR_MODES[mode][1]
    return {
        "n": n,
        "mode": mode,
        "client": client,
        "concurrency": concurrency,
        "seconds": round(seconds, 3),
        "requests_per_second": round(requests / seconds, 1),
        "cpu": cpu,
        "cleanup_seconds": round(cleanup, 1),
    }


def _kubernetes_pool(
    kubeconfig: Path, namespace: str, concurrency: int, items: list[FloorItem], create_first: bool
) -> float:
    """The same requests with the sync kubernetes client, one call per thread, responses
    not deserialised (the operator's client stack until it moved to aiohttp)."""
    import json
    import threading

    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = concurrency
    api = client.ApiClient(configuration)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    queue = list(reversed(items))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                if create_first:
                    response = custom.create_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, item.body, _preload_content=False
                    )
                    _set_uid(item, json.loads(response.data)["metadata"]["uid"])
                json.loads(
                    core.create_namespaced_secret(
                        namespace, item.secret, _preload_content=False
                    ).data
                )
                json.loads(
                    custom.patch_namespaced_custom_object_status(
                        GROUP,
                        VERSION,
                        namespace,
                        PLURAL,
                        item.name,
                        item.status,
                        _preload_content=False,
                    ).data
                )
                if item.event is not None:
                    json.loads(
                        core.create_namespaced_event(
                            namespace, item.event, _preload_content=False
                        ).data
                    )
        except BaseException as exc:
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    api.close()
    if errors:
        raise errors[0]
    return seconds


def _event_body(resource: dict[str, Any], type_: str, reason: str, message: str) -> dict[str, Any]:
    meta = resource["metadata"]
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": "credsmith"},
        "reportingComponent": "credsmith.io/operator",
        "reportingInstance": "credsmith",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


# ---- the operator -------------------------------------------------------------------


async def start_operator(ctx: Context) -> dict[str, Any]:
    """Start a fresh operator process and wait until it has issued a canary resource:
    then its watches are up and it is idle. Returns startup time and baseline memory."""
    ctx.operator.start()
    ctx.canaries += 1
    name = f"canary-{ctx.canaries:02d}"
    watch = ReadyWatch(ctx.api, CANARY_NAMESPACE)
    await watch.start()
    try:
        await ctx.api.create_sac(CANARY_NAMESPACE, sac(name))
        ready = await _wait(ctx, watch.wait_for(name, ctx.ready_timeout))
    finally:
        await watch.stop()
    startup = ready - ctx.operator.started_at
    await settle(ctx)
    return {"start_to_first_ready_s": round(startup, 2), "memory": ctx.operator.memory()}


async def _wait(ctx: Context, awaitable: Awaitable[float]) -> float:
    """Await, but fail early if the operator process dies."""
    task = asyncio.ensure_future(awaitable)
    while True:
        done, _ = await asyncio.wait({task}, timeout=1.0)
        if done:
            return task.result()
        try:
            ctx.operator.check()
        except RuntimeError:
            task.cancel()
            raise


async def operator_writes(api: Api) -> dict[tuple[str, str], float]:
    totals = await api.metrics()
    return {k: v for k, v in totals.items() if k[1] in OPERATOR_RESOURCES and k[0] in WRITE_VERBS}


async def settle(ctx: Context, quiet: float = 3.0, timeout: float = 120.0) -> float:
    """Wait until no writes to the operator's resources for `quiet` seconds."""
    started = time.monotonic()
    last = await operator_writes(ctx.api)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet:
        if time.monotonic() - started > timeout:
            break
        await asyncio.sleep(0.5)
        current = await operator_writes(ctx.api)
        if current != last:
            last, quiet_since = current, time.monotonic()
    return time.monotonic() - started


# ---- latency --------------------------------------------------------------------------


async def latency(ctx: Context, count: int, gap: float) -> dict[str, Any]:
    """One resource at a time: create -> Ready as seen by a watch."""
    namespace = "latency"
    await ctx.api.create_namespace(namespace)
    watch = ReadyWatch(ctx.api, namespace)
    await watch.start()
    samples, create_rtts = [], []
    profile = _start_profile(ctx, "latency")
    meter = ctx.meter()
    try:
        for name in names("lat", count):
            await asyncio.sleep(gap)  # the previous one's Event is posted; the operator idles
            started = time.monotonic()
            await ctx.api.create_sac(namespace, sac(name))
            create_rtts.append(time.monotonic() - started)
            ready = await _wait(ctx, watch.wait_for(name, 60))
            samples.append(ready - started)
    finally:
        cpu = meter.stop()
        ctx.operator.stop_profiler()
        await watch.stop()
    cleanup = await ctx.api.delete_namespace(namespace)
    return {
        "count": count,
        "apply_to_ready": percentiles(samples),
        "create_request": percentiles(create_rtts),
        "cpu": cpu,
        "profile": profile,
        "cleanup_seconds": round(cleanup, 1),
    }


def _start_profile(ctx: Context, label: str, attach_wait: float = 0.5) -> str | None:
    if not ctx.profile:
        return None
    path = ctx.results_dir / "profiles" / f"{label}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if ctx.operator.start_profiler(path, attach_wait):
        ctx.profiles.append(str(path))
        return str(path)
    ctx.log("  (--profile: py-spy not found in the venv or on PATH; not profiling)")
    return None


# ---- bulk -----------------------------------------------------------------------------


async def bulk(ctx: Context, n: int, concurrency: int) -> dict[str, Any]:
    """Create N resources at once with the operator running; first create -> all Ready."""
    namespace = f"bulk-{n}"
    await ctx.api.create_namespace(namespace)
    watch = ReadyWatch(ctx.api, namespace)
    await watch.start()
    wanted = names("sac", n)
    profile = _start_profile(ctx, f"bulk-{n}")
    requests_before = await operator_requests(ctx.api)
    meter = ctx.meter()
    started = time.monotonic()
    creates_done = 0.0

    async def create(api: Api, name: str) -> None:
        await api.create_sac(namespace, sac(name))

    async def create_all() -> None:
        nonlocal creates_done
        await run_pool(ctx.credentials, concurrency, wanted, create)
        creates_done = time.monotonic() - started

    try:
        creating = asyncio.create_task(create_all())
        last = await _wait(ctx, watch.wait_all(set(wanted), ctx.ready_timeout))
        await creating
    finally:
        cpu = meter.stop()
        ctx.operator.stop_profiler()
        await watch.stop()
    seconds = last - started
    since_start = sorted(watch.ready[name] - started for name in wanted)
    settled = await settle(ctx)
    requests = _flow_delta(requests_before, await operator_requests(ctx.api))
    # With --operator-metrics, one scrape before the memory is read: the per-resource
    # samples are made at scrape time, so the peak includes what a scrape costs.
    scrape = await asyncio.to_thread(ctx.operator.scrape)
    return {
        "n": n,
        "namespace": namespace,
        "create_concurrency": concurrency,
        "seconds": round(seconds, 3),
        "creates_done_s": round(creates_done, 3),
        "first_ready_s": round(since_start[0], 3),
        "half_ready_s": round(since_start[len(since_start) // 2], 3),
        "per_second": round(n / seconds, 1),
        "watch_events": watch.events,
        "cpu": cpu,
        "operator_cpu_ms_per_resource": round(cpu.get("operator", 0) * 1e3 / n, 2),
        # every request the operator made, until it settled (its own identity, via APF)
        "operator_requests": requests,
        "operator_requests_per_resource": {k: round(v / n, 2) for k, v in requests.items()},
        "settle_s": round(settled, 1),
        "metrics_scrape": scrape,
        "memory": ctx.operator.memory(),
        "profile": profile,
    }


# ---- idle -----------------------------------------------------------------------------


async def idle(ctx: Context, seconds: float) -> dict[str, Any]:
    """Requests to the operator's resources while it idles, from apiserver_request_total.
    Nothing else of ours runs meanwhile (no watches or kubectl of the bench)."""
    settled = await settle(ctx)
    before = await ctx.api.metrics()
    requests_before = await operator_requests(ctx.api)
    flows_before = await ctx.api.flows()
    meter = ctx.meter()
    await asyncio.sleep(seconds)
    cpu = meter.stop()
    requests = _flow_delta(requests_before, await operator_requests(ctx.api))
    # Who made them: every client's requests by flow schema (all resources).
    flows = _flow_delta(flows_before, await ctx.api.flows())
    after = await ctx.api.metrics()
    delta = _delta(before, after)
    per_minute = {f"{v} {r}": round(c * 60 / seconds, 2) for (v, r), c in sorted(delta.items())}
    writes = sum(c for (v, _), c in delta.items() if v in WRITE_VERBS)
    reads = sum(c for (v, _), c in delta.items() if v in READ_VERBS)
    return {
        "window_s": seconds,
        "settle_s": round(settled, 1),
        "writes_per_minute": round(writes * 60 / seconds, 2),
        "reads_per_minute": round(reads * 60 / seconds, 2),
        "by_verb_per_minute": per_minute,
        "operator_requests_per_minute": {
            k: round(v * 60 / seconds, 2) for k, v in requests.items()
        },
        "by_flow_schema_per_minute": {
            k: round(v * 60 / seconds, 2) for k, v in sorted(flows.items()) if v
        },
        "operator_cpu_s": cpu.get("operator"),
        "cpu": cpu,
    }


def _flow_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}


def _delta(
    before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    delta = {}
    for key, value in after.items():
        if key[1] in OPERATOR_RESOURCES and value != before.get(key, 0.0):
            delta[key] = value - before.get(key, 0.0)
    return delta


# ---- restart --------------------------------------------------------------------------


async def _versions(ctx: Context, namespace: str) -> dict[str, str]:
    versions = {}
    sacs = await ctx.api.list_json(sac_path(namespace))
    for item in sacs["items"]:
        versions[f"sacred/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    secrets = await ctx.api.list_json(
        f"/api/v1/namespaces/{namespace}/secrets"
        "?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcredsmith"
    )
    for item in secrets["items"]:
        versions[f"secret/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return versions


async def _synced(ctx: Context) -> float:
    """When the running operator's log first says it is watching (its caches hold their
    first listings and its workers start), polled: monotonic time, within 50 ms."""
    path = ctx.operator.log_dir / f"operator-{ctx.operator.starts:02d}.log"
    while True:
        try:
            if b"Watching: " in path.read_bytes():
                return time.monotonic()
        except OSError:
            pass
        await asyncio.sleep(0.05)


async def restart(
    ctx: Context, namespace: str, name: str = "restart-new", after_sync: bool = False
) -> dict[str, Any]:
    """Restart with N Ready resources; create a new one as the new process starts (or,
    with `after_sync`, once it has listed everything: then the new one arrives while the
    N existing ones wait for their first pass). Writes to the existing ones:
    resourceVersions before/after, and the apiserver's write counters (less the new
    resource's own create, Secret, status and Event)."""
    await settle(ctx)
    versions_before = await _versions(ctx, namespace)
    stop_seconds = ctx.operator.stop()
    before = await ctx.api.metrics()
    requests_before = await operator_requests(ctx.api)
    watch = ReadyWatch(ctx.api, namespace)
    await watch.start()
    profile = None
    synced: asyncio.Future[float] | None = None
    try:
        ctx.operator.start()
        started = ctx.operator.started_at
        # (py-spy attaches while the new process imports; it slows the start a little)
        profile = _start_profile(ctx, "restart", attach_wait=0)
        synced = asyncio.ensure_future(_synced(ctx))
        if after_sync:
            await _wait(ctx, synced)
        created = time.monotonic()
        await ctx.api.create_sac(namespace, sac(name))
        ready = await _wait(ctx, watch.wait_for(name, ctx.ready_timeout))
        # The new one may be Ready before every listing has ended (runtime/early.py).
        synced_at = await _wait(ctx, asyncio.wait_for(synced, ctx.ready_timeout))
    finally:
        if synced is not None:
            synced.cancel()
        ctx.operator.stop_profiler()
        await watch.stop()
    settled = await settle(ctx, quiet=5.0)
    requests = _flow_delta(requests_before, await operator_requests(ctx.api))
    after = await ctx.api.metrics()
    versions_after = await _versions(ctx, namespace)
    changed = sorted(key for key, rv in versions_before.items() if versions_after.get(key) != rv)
    delta = {
        f"{v} {r}": c for (v, r), c in sorted(_delta(before, after).items()) if v in WRITE_VERBS
    }
    # The new resource's own writes: the bench's create, then the operator's Secret,
    # status patch and Issued Event.
    expected = {
        "POST serviceaccountcredentials": 1,
        "POST secrets": 1,
        "PATCH serviceaccountcredentials/status": 1,
        "POST events": 1,
    }
    extra = {k: v - expected.get(k, 0) for k, v in delta.items() if v != expected.get(k, 0)}
    return {
        "existing_objects": len(versions_before),
        "stop_s": round(stop_seconds, 2),
        "start_to_new_ready_s": round(ready - started, 3),
        "start_to_synced_s": round(synced_at - started, 3),
        "after_sync": after_sync,
        "create_to_new_ready_s": round(ready - created, 3),
        "writes": delta,
        "writes_beyond_new_resource": extra,
        # the operator's own requests from its start until settled (the new one's
        # Secret, status and Event are 3 writes; reads: its LISTs and WATCHes)
        "operator_requests": requests,
        "existing_objects_changed": len(changed),
        "changed_examples": changed[:10],
        "settle_s": round(settled, 1),
        "memory_after_restart": ctx.operator.memory(),
        "profile": profile,
    }
