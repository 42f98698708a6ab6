"""The operator's memory with spec.consumers, in a namespace of 5000 unrelated Deployments.

The operator caches no workloads (no informer on Deployments): it reads a credential's
consumers when that credential is reconciled, named ones by GET and selected ones by a
label-selected list, and again only while a rollout is in flight. So its RSS should not
depend on how many Deployments the cluster holds. This phase measures that:

  setup  one namespace with --unrelated Deployments (replicas 0, a trivial pod template)
         and --credentials more, the consumers-to-be, each with a label `app` of its own
  run A  a fresh operator; --credentials ServiceAccountCredentials without consumers,
         created at once; all Ready; then one rotation of each (credsmith.io/rotate)
  run B  A's credentials deleted; a fresh operator; as many credentials WITH consumers
         (half by name, half by a selector that picks exactly one Deployment); all Ready;
         one rotation of each, until every consumer Deployment carries its rollout
         annotation; then --hold seconds while the operator polls the rollouts

For each run: VmRSS once Ready and settled (3 s without writes), after the rotation, and at
the end of the hold; VmHWM at the end. The control plane's deployment controller, at
kube-controller-manager's default client rate, is still creating the unrelated Deployments'
ReplicaSets during the runs, so no consumer's rollout completes: in run B every credential
keeps polling its consumer every 10 s (the worst case; see bench/README.md).

Part of `bench/run.py` (skipped with `--skip consumers`), or alone on its own control plane:
`.venv/bin/python bench/consumers_rss.py` (run.py with the other phases skipped; its flags,
e.g. `--consumers-unrelated 1000`, pass through). See bench/README.md.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any

import phases
from cluster_setup import operator_requests
from kubeclient import MERGE_PATCH, Api, ReadyWatch, sac_path

NAMESPACE = "consumers-rss"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
CONSUMER_LABEL = "bench-consumer"
ANNOTATION_PREFIX = "serviceaccountcredential.credsmith.io/"
WATCHED = (*phases.OPERATOR_RESOURCES, "deployments")
MB = 1024 * 1024


def deployment(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
            },
        },
    }


def credential(name: str, run: str, consumer: str | None, by_selector: bool) -> dict[str, Any]:
    body = phases.sac(name)
    body["metadata"]["labels"] = {"bench-run": run}
    if consumer is not None:
        ref: dict[str, Any] = {"kind": "Deployment"}
        if by_selector:
            ref["selector"] = {"matchLabels": {"app": consumer}}
        else:
            ref["name"] = consumer
        body["spec"]["consumers"] = [ref]
    return body


async def create_deployments(ctx: phases.Context, unrelated: int, consumers: int) -> float:
    bodies = [deployment(n, {"app": n}) for n in phases.names("unrelated", unrelated)]
    bodies += [
        deployment(n, {"app": n, CONSUMER_LABEL: "yes"})
        for n in phases.names("consumer", consumers)
    ]

    async def create(api: Api, body: dict[str, Any]) -> None:
        await api.request("POST", DEPLOYMENTS, body, decode=False)

    return await phases.run_pool(ctx.credentials, 32, bodies, create)


async def writes(api: Api) -> dict[tuple[str, str], float]:
    totals = await api.metrics()
    return {k: v for k, v in totals.items() if k[1] in WATCHED and k[0] in phases.WRITE_VERBS}


async def settle(ctx: phases.Context, quiet: float = 3.0, timeout: float = 120.0) -> float:
    """Until no writes to the operator's resources or to Deployments for `quiet` seconds."""
    started = time.monotonic()
    last = await writes(ctx.api)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < quiet and time.monotonic() - started < timeout:
        await asyncio.sleep(0.5)
        ctx.operator.check()
        current = await writes(ctx.api)
        if current != last:
            last, quiet_since = current, time.monotonic()
    return round(time.monotonic() - started, 1)


async def rotate_all(ctx: phases.Context, wanted: list[str], with_consumers: bool) -> float:
    """Set credsmith.io/rotate on each; wait until each has status.revision 2 and, with
    consumers, until every consumer Deployment carries a rollout annotation."""
    value = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"metadata": {"annotations": {"credsmith.io/rotate": value}}}
    started = time.monotonic()

    async def rotate(api: Api, name: str) -> None:
        await api.request("PATCH", sac_path(NAMESPACE, name), patch, MERGE_PATCH, decode=False)

    await phases.run_pool(ctx.credentials, 16, wanted, rotate)
    names = set(wanted)
    while time.monotonic() - started < ctx.ready_timeout:
        ctx.operator.check()
        listing = await ctx.api.list_json(sac_path(NAMESPACE))
        rotated = {
            i["metadata"]["name"]
            for i in listing["items"]
            if (i.get("status") or {}).get("revision", 0) >= 2
        }
        rolled = len(names) if not with_consumers else await _rolled(ctx.api)
        if names <= rotated and rolled >= len(names):
            return round(time.monotonic() - started, 2)
        await asyncio.sleep(1.0)
    raise TimeoutError("the rotation did not reach every credential and consumer")


async def _rolled(api: Api) -> int:
    """Consumer Deployments whose pod template carries a credential's rollout annotation."""
    listing = await api.list_json(f"{DEPLOYMENTS}?labelSelector={CONSUMER_LABEL}%3Dyes")
    count = 0
    for item in listing["items"]:
        template = item["spec"]["template"].get("metadata") or {}
        if any(k.startswith(ANNOTATION_PREFIX) for k in template.get("annotations") or {}):
            count += 1
    return count


async def _controller_backlog(api: Api) -> dict[str, int]:
    """How far the deployment controller has got with the namespace's Deployments: how many
    it has not yet observed at their current generation (consumers, and all)."""
    listing = await api.list_json(DEPLOYMENTS)
    behind = {"consumers": 0, "all": 0}
    for item in listing["items"]:
        seen = (item.get("status") or {}).get("observedGeneration", 0)
        if seen < item["metadata"].get("generation", 0):
            behind["all"] += 1
            if (item["metadata"].get("labels") or {}).get(CONSUMER_LABEL) == "yes":
                behind["consumers"] += 1
    return behind


async def _consumer_reasons(api: Api, wanted: list[str]) -> dict[str, int]:
    """The ConsumersRolledOut condition's reasons over the run's credentials."""
    listing = await api.list_json(sac_path(NAMESPACE))
    reasons: dict[str, int] = {}
    for item in listing["items"]:
        if item["metadata"]["name"] not in wanted:
            continue
        for condition in (item.get("status") or {}).get("conditions") or ():
            if condition.get("type") == "ConsumersRolledOut":
                reason = f"{condition.get('status')} {condition.get('reason')}"
                reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


async def one_run(
    ctx: phases.Context, run: str, n: int, with_consumers: bool, hold: float
) -> dict[str, Any]:
    """A fresh operator; n credentials created at once, Ready, rotated once, then held."""
    baseline = await phases.start_operator(ctx)
    requests_before = await operator_requests(ctx.api)
    writes_before = await writes(ctx.api)
    meter = ctx.meter()
    consumers = phases.names("consumer", n)
    wanted = phases.names(f"run{run.lower()}", n)
    bodies = [
        credential(name, run, consumers[i] if with_consumers else None, i >= n // 2)
        for i, name in enumerate(wanted)
    ]
    watch = ReadyWatch(ctx.api, NAMESPACE)
    await watch.start()
    started = time.monotonic()

    async def create(api: Api, body: dict[str, Any]) -> None:
        await api.create_sac(NAMESPACE, body)

    try:
        await phases.run_pool(ctx.credentials, 16, bodies, create)
        await phases._wait(ctx, watch.wait_all(set(wanted), ctx.ready_timeout))
    finally:
        await watch.stop()
    ready_s = round(time.monotonic() - started, 2)
    settled = await settle(ctx)
    at_ready = ctx.operator.memory()
    rotated_s = await rotate_all(ctx, wanted, with_consumers)
    settled_rotation = await settle(ctx)
    at_rotated = ctx.operator.memory()
    await asyncio.sleep(hold)
    ctx.operator.check()
    at_end = ctx.operator.memory()
    cpu = meter.stop()
    requests = phases._flow_delta(requests_before, await operator_requests(ctx.api))
    after = await writes(ctx.api)
    written = {
        f"{v} {r}": c - writes_before.get((v, r), 0.0)
        for (v, r), c in sorted(after.items())
        if c != writes_before.get((v, r), 0.0)
    }
    return {
        "run": run,
        "credentials": n,
        "consumers": with_consumers,
        "idle_memory": baseline["memory"],
        "ready_s": ready_s,
        "settle_s": settled,
        "memory_ready": at_ready,
        "rotation_s": rotated_s,
        "settle_after_rotation_s": settled_rotation,
        "memory_rotated": at_rotated,
        "hold_s": hold,
        "memory_end": at_end,
        "rolled_consumers": await _rolled(ctx.api) if with_consumers else 0,
        "consumer_conditions": await _consumer_reasons(ctx.api, wanted),
        "deployments_not_observed": await _controller_backlog(ctx.api),
        "operator_requests": requests,
        "writes": written,
        "cpu": cpu,
    }


async def _delete_run(ctx: phases.Context, run: str) -> float:
    """Delete a run's credentials and wait until they and their Secrets are gone."""
    started = time.monotonic()
    selector = f"labelSelector=bench-run%3D{run}"
    await ctx.api.request("DELETE", f"{sac_path(NAMESPACE)}?{selector}", decode=False)
    secrets = (
        f"/api/v1/namespaces/{NAMESPACE}/secrets"
        "?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcredsmith"
    )
    while time.monotonic() - started < 300:
        left = await ctx.api.list_json(f"{sac_path(NAMESPACE)}?{selector}")
        owned = await ctx.api.list_json(secrets)
        if not left["items"] and not owned["items"]:
            return round(time.monotonic() - started, 1)
        await asyncio.sleep(1.0)
    raise TimeoutError(f"run {run}'s credentials or Secrets are still there")


async def measure(
    ctx: phases.Context, unrelated: int = 5000, n: int = 100, hold: float = 30.0
) -> dict[str, Any]:
    """Runs A and B (see the module's docstring); the operator must be stopped."""
    assert ctx.operator.process is None
    started = time.monotonic()
    await ctx.api.create_namespace(NAMESPACE)
    meter = ctx.meter()
    create_s = await create_deployments(ctx, unrelated, n)
    setup_cpu = meter.stop()
    ctx.log(
        f"consumers: {unrelated + n} Deployments created in {create_s:.1f}s "
        f"(others {_others(setup_cpu)} CPUs)"
    )
    runs = {}
    for run, with_consumers in (("A", False), ("B", True)):
        result = await one_run(ctx, run, n, with_consumers, hold)
        ctx.operator.stop()
        runs[run] = result
        ctx.log(
            f"consumers run {run}: RSS ready {_mb(result['memory_ready'], 'VmRSS')}, "
            f"rotated {_mb(result['memory_rotated'], 'VmRSS')}, end "
            f"{_mb(result['memory_end'], 'VmRSS')}, peak {_mb(result['memory_end'], 'VmHWM')}; "
            f"others {_others(result['cpu'])} CPUs; Deployments not yet observed by their "
            f"controller {result['deployments_not_observed']}"
        )
        if run == "A":
            result["delete_s"] = await _delete_run(ctx, "A")
    a, b = runs["A"], runs["B"]
    ratios = {
        key: round(b[stage].get(field, 0) / a[stage][field], 3)
        for key, stage, field in (
            ("rss_ready", "memory_ready", "VmRSS"),
            ("rss_rotated", "memory_rotated", "VmRSS"),
            ("rss_end", "memory_end", "VmRSS"),
            ("hwm", "memory_end", "VmHWM"),
        )
        if a[stage].get(field)
    }
    cleanup = await ctx.api.delete_namespace(NAMESPACE)
    return {
        "unrelated_deployments": unrelated,
        "consumer_deployments": n,
        "credentials": n,
        "create_deployments_s": round(create_s, 1),
        "setup_cpu": setup_cpu,
        "runs": runs,
        "b_over_a": ratios,
        "cleanup_s": round(cleanup, 1),
        "wall_s": round(time.monotonic() - started, 1),
    }


# ---- the report -------------------------------------------------------------------------


def _mb(memory: dict[str, int], key: str) -> str:
    return f"{memory[key] / MB:.1f} MiB" if key in memory else "-"


def _others(cpu: dict[str, float]) -> str:
    return f"{cpu['others'] / cpu['wall']:.2f}" if cpu.get("wall") else "-"


def rows(result: dict[str, Any] | None) -> list[tuple[str, str, str, str, str]]:
    """Table rows for run.py: (measure, value, ok, others, detail)."""
    if not result:
        return []
    out = []
    count = result["unrelated_deployments"]
    for run in ("A", "B"):
        r = result["runs"][run]
        own = r["operator_requests"]
        half = r["credentials"] // 2
        what = (
            f"with consumers ({half} named, the rest by selector)"
            if r["consumers"]
            else "no consumers"
        )
        detail = (
            f"{r['credentials']} credentials {what}, {count} unrelated Deployments; RSS idle "
            f"{_mb(r['idle_memory'], 'VmRSS')}, Ready {_mb(r['memory_ready'], 'VmRSS')}, "
            f"rotated {_mb(r['memory_rotated'], 'VmRSS')}, after {r['hold_s']:.0f}s "
            f"{_mb(r['memory_end'], 'VmRSS')}; operator {own.get('reads', 0):g} reads, "
            f"{own.get('writes', 0):g} writes"
        )
        out.append(
            (
                f"consumers RSS run {run}: peak",
                _mb(r["memory_end"], "VmHWM"),
                "",
                _others(r["cpu"]),
                detail,
            )
        )
    ratio = result["b_over_a"]
    out.append(
        (
            "  consumers RSS B/A",
            f"{ratio.get('rss_end', 0):.3f}",
            "yes" if max(ratio.values(), default=9) <= 1.10 else "NO",
            "",
            f"settled RSS after the rotation {ratio.get('rss_rotated', 0):.3f}, Ready "
            f"{ratio.get('rss_ready', 0):.3f}; peak {ratio.get('hwm', 0):.3f} (bound 1.10)",
        )
    )
    return out


# ---- on its own -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """This phase alone: run.py with every other phase skipped (its own control plane,
    operator identity and table); run.py's flags pass through."""
    import run as bench_run

    output = bench_run.BENCH_DIR / "results" / "consumers-rss.json"
    base = ["--skip", "floor,latency,bulk,idle", "--output", str(output)]
    return bench_run.main([*base, *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    raise SystemExit(main())
