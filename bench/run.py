"""credsmith benchmark: the operator against the floor of the API work it must do.

Starts its own local control plane in a temporary directory, installs the CRDs,
runs the operator as a separate process and measures, in this order:

  floor     N Secret creates + N status patches made directly by this process
            (operator stopped), at the fastest of several concurrencies
  latency   create one resource at a time -> Ready seen by a watch (operator idle)
  bulk      N resources created at once -> all Ready; ratio to the floor
  memory    the operator's peak and settled RSS at each size
  idle      requests to the operator's resources per minute once converged
  restart   a new operator process with N Ready resources: time until a new one
            is Ready, and writes made to the existing ones
  unrelated with --unrelated-secrets: a fresh operator's RSS with and without that many
            unlabelled Secrets in the cluster (unrelated.py)
  consumers the operator's RSS with and without spec.consumers, in a namespace of
            5000 unrelated Deployments (consumers_rss.py)
  storm     only with --storm-size N: N credentials with a short period created at
            once, and how their first rotations spread (storm.py)

Prints one table and writes bench/results/latest.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cluster_setup
import consumers_rss
import phases
import storm
import unrelated
from kubeclient import Api, Credentials
from procs import OperatorProcess

from credsmith.api.durations import parse_go_duration

BENCH_DIR = Path(__file__).resolve().parent
CHECKOUT = BENCH_DIR.parent
MB = 1024 * 1024  # MiB: the table prints MiB

TARGETS = {
    "bulk_over_floor": 1.5,  # at N=1000 and 5000
    "latency_p50_ms": 150,
    "latency_p99_ms": 500,
    "idle_writes_per_minute": 0,
    "restart_writes_to_existing": 0,
    "peak_rss_mb_at_5000": 150,
}


def _csv_ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=_csv_ints,
        default=[100, 1000, 5000],
        help="N for the floor and bulk issue (default 100,1000,5000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="N=100 only (floor, bulk, memory, idle and restart at 100), "
        "a 20 s idle window unless --idle-seconds is given",
    )
    parser.add_argument(
        "--memory-sizes",
        type=_csv_ints,
        default=None,
        help="N at which to record the operator's memory (default 1000,5000; "
        "sizes not in --sizes get a bulk issue of their own, without a floor)",
    )
    parser.add_argument(
        "--idle-size",
        type=int,
        default=None,
        help="the bulk size after which idle and restart are measured "
        "(default 1000, else the largest of --sizes)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=None, help="the idle window (default 60)"
    )
    parser.add_argument(
        "--restarts",
        type=int,
        default=1,
        help="restarts measured after the idle window (the table shows the median)",
    )
    parser.add_argument(
        "--restarts-after-sync",
        type=int,
        default=0,
        help="more restarts, each creating its new resource only once the operator has "
        "listed everything (it then arrives while the N existing ones await their pass)",
    )
    parser.add_argument(
        "--unrelated-secrets",
        type=int,
        default=0,
        help="after the restarts: a fresh operator's RSS without, then with, this many "
        "unlabelled Secrets in a namespace of their own (default 0: not measured)",
    )
    parser.add_argument("--latency-count", type=int, default=200)
    parser.add_argument(
        "--latency-gap",
        type=float,
        default=0.1,
        help="pause between the one-at-a-time creates, so the operator idles",
    )
    parser.add_argument(
        "--floor-concurrency",
        type=_csv_ints,
        default=[8, 16, 32, 64],
        help="concurrencies tried for the floor (the fastest is reported)",
    )
    parser.add_argument(
        "--floor-sweep-max",
        type=int,
        default=1000,
        help="above this N only the two fastest concurrencies of the largest "
        "swept N are tried (saves minutes at 5000)",
    )
    parser.add_argument(
        "--floor-clients",
        type=lambda t: t.split(","),
        default=["aiohttp", "kubernetes"],
        help="client stacks tried for the floor: aiohttp (asyncio) and "
        "kubernetes (the operator's: the sync client in threads)",
    )
    parser.add_argument(
        "--floor-modes",
        type=lambda t: set(t.split(",")),
        default={"events", "scenario"},
        help="extra floors at the fastest setting: events (+ one Event per "
        "resource), scenario (+ creating the resources too); '' for none",
    )
    parser.add_argument(
        "--skip",
        type=lambda t: set(t.split(",")),
        default=set(),
        help="comma-separated phases to leave out: floor, latency, bulk (bulk, memory, "
        "idle and restart), idle (idle and restart), consumers; for investigations, "
        "not for recorded results",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="the operator's --workers (default: its own default)",
    )
    parser.add_argument(
        "--consumers-unrelated",
        type=int,
        default=None,
        help="unrelated Deployments in the consumers phase's namespace (default 5000; "
        "500 with --quick)",
    )
    parser.add_argument(
        "--operator-metrics",
        choices=["off", "aggregate", "per-resource"],
        default="off",
        help="the operator's /metrics: off (--metrics-port=0, as in the recorded results), "
        "aggregate (--no-resource-metrics) or per-resource; scraped once before the memory "
        "of each bulk size is read",
    )
    parser.add_argument(
        "--storm-size",
        type=int,
        default=0,
        help="the rotation storm phase: N credentials with period --storm-period created "
        "at once, and when each rotates (storm.py); 0 (default): not run",
    )
    parser.add_argument("--storm-period", default="2m", help="the storm's rotation.period")
    parser.add_argument("--ready-timeout", type=float, default=900)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the operator with py-spy during latency and bulk issue "
        "(pip install py-spy into the venv); raw stacks in results/profiles/",
    )
    parser.add_argument(
        "--profile-rate", type=int, default=100, help="py-spy samples per second (--profile)"
    )
    parser.add_argument(
        "--profile-mode",
        choices=("gil", "native"),
        default="gil",
        help="py-spy: sample the thread holding the GIL, or threads on a CPU with their C "
        "frames (native: a CPU profile, on a quiet machine)",
    )
    parser.add_argument(
        "--operator-source",
        type=Path,
        default=None,
        help="run the operator from DIR/operator (PYTHONPATH) instead of this checkout, "
        "e.g. `git archive COMMIT operator verifier | tar -x -C DIR`: before/after runs "
        "with one bench",
    )
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "latest.json")
    parser.add_argument(
        "--keep", action="store_true", help="keep the control plane's temporary directory"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [100]
        args.memory_sizes = args.memory_sizes or [100]
        args.idle_seconds = args.idle_seconds or 20.0
        args.consumers_unrelated = args.consumers_unrelated or 500
    args.consumers_unrelated = args.consumers_unrelated or 5000
    args.memory_sizes = args.memory_sizes if args.memory_sizes is not None else [1000, 5000]
    args.idle_seconds = args.idle_seconds or 60.0
    if args.idle_size is None:
        args.idle_size = 1000 if 1000 in args.sizes else max(args.sizes)
    return args


# ---- the machine ------------------------------------------------------------------------


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def machine() -> dict[str, Any]:
    meminfo = dict(
        line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line
    )
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(meminfo["MemTotal"].split()[0]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": _git("rev-parse", "HEAD"),
        "tracked_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


# ---- the run ----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def start_cluster(state_dir: Path) -> Any:
    from credsmith.api.crd import render_crds_yaml
    from credsmith.dev.cluster import LocalCluster, build_binaries

    cluster = LocalCluster(build_binaries(CHECKOUT), state_dir)
    cluster.start()
    env = cluster.kubectl_env()
    kubectl = str(cluster.kubectl)
    subprocess.run(
        [kubectl, "apply", "--server-side", "-f", "-"],
        input=render_crds_yaml(),
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            kubectl,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/serviceaccountcredentials.credsmith.io",
            "crd/apiclients.credsmith.io",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return cluster


async def bench(args: argparse.Namespace, cluster: Any, results: dict[str, Any]) -> None:
    credentials = Credentials.from_kubeconfig(cluster.kubeconfig)
    log_dir = args.output.parent / f"{args.output.stem}-logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    async with Api(credentials) as api:
        operator_kubeconfig = await cluster_setup.operator_identity(api, cluster.state_dir)
        waited = await cluster_setup.wait_for_garbage_collector(api)
        log(f"garbage collector watches the custom resources ({waited:.0f}s)")
        operator = OperatorProcess(
            operator_kubeconfig,
            log_dir,
            args.workers,
            metrics=args.operator_metrics,
            profile_rate=args.profile_rate,
            profile_mode=args.profile_mode,
            source=args.operator_source,
        )
        ctx = phases.Context(
            credentials=credentials,
            admin_kubeconfig=cluster.kubeconfig,
            api=api,
            operator=operator,
            cluster_pid=cluster.process.pid,
            results_dir=args.output.parent,
            ready_timeout=args.ready_timeout,
            profile=args.profile,
            log=log,
        )
        await api.create_namespace(phases.CANARY_NAMESPACE)
        try:
            await _phases(args, ctx, results)
        finally:
            operator.stop()


async def _floor(args: argparse.Namespace, ctx: phases.Context, results: dict[str, Any]) -> None:
    """Every client x concurrency at N <= --floor-sweep-max; above, the two fastest
    combinations of the largest swept N. Then the extra modes at the fastest one."""
    trials: dict[int, list[dict[str, Any]]] = results.setdefault("floor_trials", {})
    best: dict[int, dict[str, Any]] = results.setdefault("floor", {})
    for n in sorted(args.sizes):
        swept = [m for m in best if m <= args.floor_sweep_max]
        if n > args.floor_sweep_max and swept:
            ranked = sorted(trials[max(swept)], key=lambda t: t["seconds"])
            combos = [(t["client"], t["concurrency"]) for t in ranked[:2]]
        else:
            combos = [(c, k) for c in args.floor_clients for k in args.floor_concurrency]
        for client, concurrency in combos:
            trial = await phases.floor_trial(ctx, n, concurrency, client=client)
            trials.setdefault(n, []).append(trial)
            log(
                f"floor N={n} {client} c={concurrency}: {trial['seconds']:.2f}s "
                f"({trial['requests_per_second']:.0f} req/s, others "
                f"{_others(trial['cpu'])} CPUs)"
            )
        best[n] = min(trials[n], key=lambda t: t["seconds"])
        for mode in ("events", "scenario"):
            if mode in args.floor_modes:
                client, concurrency = best[n]["client"], best[n]["concurrency"]
                trial = await phases.floor_trial(ctx, n, concurrency, mode=mode, client=client)
                results.setdefault(f"floor_{mode}", {})[n] = trial
                log(f"floor ({mode}) N={n} {client} c={concurrency}: {trial['seconds']:.2f}s")


async def _phases(args: argparse.Namespace, ctx: phases.Context, results: dict[str, Any]) -> None:
    # 1. The floor, operator stopped.
    if "floor" not in args.skip:
        await _floor(args, ctx, results)
    best: dict[int, dict[str, Any]] = results.get("floor", {})

    # 2. Latency, one at a time, on a fresh idle operator.
    if "latency" not in args.skip:
        started = await phases.start_operator(ctx)
        results["operator_start"] = started
        log(f"operator up: first Ready {started['start_to_first_ready_s']}s after start")
        results["latency"] = await phases.latency(ctx, args.latency_count, args.latency_gap)
        lat = results["latency"]["apply_to_ready"]
        log(f"latency: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms")
        ctx.operator.stop()

    # 3. Bulk issue (and memory, idle, restart), each size on a fresh operator.
    bulk_sizes = set() if "bulk" in args.skip else set(args.sizes) | set(args.memory_sizes)
    for n in sorted(bulk_sizes):
        baseline = await phases.start_operator(ctx)
        concurrency = best[n]["concurrency"] if n in best else _nearest_best(best, n)
        run = await phases.bulk(ctx, n, concurrency)
        run["baseline"] = baseline
        if n in best:
            run["over_floor"] = round(run["seconds"] / best[n]["seconds"], 2)
            run["cpu_over_floor"] = round(_cpu_ours(run["cpu"]) / _cpu_ours(best[n]["cpu"]), 2)
        for mode in ("events", "scenario"):
            if n in results.get(f"floor_{mode}", {}):
                floor = results[f"floor_{mode}"][n]
                run[f"over_floor_{mode}"] = round(run["seconds"] / floor["seconds"], 2)
        results.setdefault("bulk", {})[n] = run
        log(
            f"bulk N={n}: {run['seconds']:.2f}s"
            + (f" = {run['over_floor']}x floor" if "over_floor" in run else "")
            + f", peak RSS {run['memory'].get('VmHWM', 0) / MB:.0f} MiB, "
            f"others {_others(run['cpu'])} CPUs"
        )
        if n == args.idle_size and "idle" not in args.skip:
            results["idle"] = idle = await phases.idle(ctx, args.idle_seconds)
            idle["n"] = n
            log(
                f"idle at N={n}: {idle['writes_per_minute']} writes/min, "
                f"{idle['reads_per_minute']} reads/min; the operator's own: "
                f"{idle['operator_requests_per_minute']}"
            )
            for i in range(args.restarts + args.restarts_after_sync):
                name = "restart-new" if i == 0 else f"restart-new-{i + 1}"
                after_sync = i >= args.restarts
                restart = await phases.restart(ctx, run["namespace"], name, after_sync)
                restart["n"] = n
                results.setdefault("restarts", []).append(restart)
                log(
                    f"restart at N={n}: new one Ready {restart['start_to_new_ready_s']}s "
                    f"after start ({restart['create_to_new_ready_s']}s after its create; "
                    f"synced at {restart['start_to_synced_s']}s"
                    + (", created then" if after_sync else "")
                    + f"); existing objects changed: {restart['existing_objects_changed']}"
                )
            # The median restart (the machine is shared: one of several may be unlucky).
            ranked = sorted(
                results["restarts"][: args.restarts], key=lambda r: r["start_to_new_ready_s"]
            )
            results["restart"] = ranked[len(ranked) // 2]
            if args.unrelated_secrets:
                results["unrelated_secrets"] = found = await unrelated.measure(
                    ctx, run["namespace"], args.unrelated_secrets, concurrency
                )
                log(f"unrelated Secrets: RSS with/without {found['rss_ratio']}")
        ctx.operator.stop()
        run["cleanup_seconds"] = round(await ctx.api.delete_namespace(run["namespace"]), 1)

    # 4. Memory with spec.consumers among many unrelated Deployments, fresh operators.
    if "consumers" not in args.skip:
        results["consumers_rss"] = await consumers_rss.measure(ctx, args.consumers_unrelated)
    # 5. Rotation storm (only when asked: it waits a period), on a fresh operator.
    if args.storm_size:
        await phases.start_operator(ctx)
        period = args.storm_period
        result = await storm.rotation_storm(
            ctx, args.storm_size, period, int(parse_go_duration(period).total_seconds())
        )
        results["storm"] = result
        rotated = result["rotated"]
        log(
            f"rotation storm N={args.storm_size}: rotatedAt over {rotated['span_s']} s, "
            f"busiest second {rotated['max_in_one_second']}"
        )
        ctx.operator.stop()
        result["cleanup_seconds"] = round(await ctx.api.delete_namespace(result["namespace"]), 1)
    results["profiles"] = ctx.profiles


def _restarts(restarts: list[dict[str, Any]]) -> str:
    at_start = [r for r in restarts if not r.get("after_sync")]
    after = [r for r in restarts if r.get("after_sync")]
    text = ""
    if len(at_start) > 1:
        times = ", ".join(f"{r['start_to_new_ready_s']:.2f}" for r in at_start)
        text += f"; median of {len(at_start)} restarts: {times} s"
    if at_start and "start_to_synced_s" in at_start[0]:
        synced = ", ".join(f"{r['start_to_synced_s']:.2f}" for r in at_start)
        text += f"; listed everything (synced) at {synced} s"
    if after:
        times = ", ".join(f"{r['create_to_new_ready_s']:.2f}" for r in after)
        text += f"; created once synced, create->Ready: {times} s"
    return text


def _nearest_best(best: dict[int, dict[str, Any]], n: int) -> int:
    if not best:
        return 32
    nearest = min(best, key=lambda m: abs(m - n))
    concurrency: int = best[nearest]["concurrency"]
    return concurrency


def _cpu_ours(cpu: dict[str, float]) -> float:
    """CPU seconds of the apiserver, the operator and the bench: the work itself."""
    return cpu.get("apiserver", 0) + cpu.get("operator", 0) + cpu.get("bench", 0)


def _others(cpu: dict[str, float]) -> str:
    """Other processes' CPU use during a phase, in CPUs (0.5 = half a core)."""
    return f"{cpu['others'] / cpu['wall']:.2f}" if cpu.get("wall") else "-"


# ---- the report -------------------------------------------------------------------------


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.0f} MiB"


def _check(value: float | None, target: float) -> str:
    if value is None:
        return ""
    return "yes" if value <= target else "NO"


def _rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(measure, value, target met, others' CPUs, detail)"""
    rows: list[tuple[str, str, str, str, str]] = []
    add = rows.append
    for n, trial in sorted(results.get("floor", {}).items()):
        tried = len(results["floor_trials"][n])
        add(
            (
                f"floor N={n}",
                f"{trial['seconds']:.2f} s",
                "",
                _others(trial["cpu"]),
                f"{trial['requests_per_second']:.0f} req/s, {trial['client']} c="
                f"{trial['concurrency']} (fastest of {tried}); CPU: apiserver "
                f"{trial['cpu']['apiserver']:.1f}s, client {trial['cpu']['bench']:.1f}s",
            )
        )
        for mode, label in (("events", "floor + Events"), ("scenario", "floor, all writes")):
            if ev := results.get(f"floor_{mode}", {}).get(n):
                add(
                    (
                        f"  {label} N={n}",
                        f"{ev['seconds']:.2f} s",
                        "",
                        _others(ev["cpu"]),
                        phases.FLOOR_MODES[mode][0],
                    )
                )
    for n, run in sorted(results.get("bulk", {}).items()):
        per = run["operator_requests_per_resource"]
        add(
            (
                f"bulk issue N={n}",
                f"{run['seconds']:.2f} s",
                "",
                _others(run["cpu"]),
                f"{run['per_second']:.0f}/s; creates done at {run['creates_done_s']:.1f}s; "
                f"operator {run['operator_cpu_ms_per_resource']} ms CPU, "
                f"{per['writes']:g} writes + {per['reads']:g} reads per resource",
            )
        )
        if "over_floor" in run:
            target = TARGETS["bulk_over_floor"] if n >= 1000 else None
            extra = [f"CPU (apiserver+operator+client) {run['cpu_over_floor']}x the floor's"]
            if "over_floor_events" in run:
                extra.append(f"{run['over_floor_events']}x floor + Events")
            if "over_floor_scenario" in run:
                extra.append(f"{run['over_floor_scenario']}x all writes")
            add(
                (
                    f"  bulk/floor N={n}",
                    f"{run['over_floor']:.2f}x",
                    _check(run["over_floor"], target) if target else "",
                    "",
                    "; ".join(extra),
                )
            )
    if lat := results.get("latency"):
        a = lat["apply_to_ready"]
        add(
            (
                f"apply->Ready p50 ({lat['count']}, one at a time)",
                f"{a['p50_ms']:.0f} ms",
                _check(a["p50_ms"], TARGETS["latency_p50_ms"]),
                _others(lat["cpu"]),
                f"the create request alone: p50 {lat['create_request']['p50_ms']:.0f} ms",
            )
        )
        add(
            (
                "apply->Ready p99",
                f"{a['p99_ms']:.0f} ms",
                _check(a["p99_ms"], TARGETS["latency_p99_ms"]),
                "",
                f"p90 {a['p90_ms']:.0f} ms, max {a['max_ms']:.0f} ms",
            )
        )
    if idle := results.get("idle"):
        by_verb = ", ".join(f"{k} {v:g}" for k, v in idle["by_verb_per_minute"].items()) or "none"
        own = idle["operator_requests_per_minute"]
        add(
            (
                f"idle writes/min at N={idle['n']}",
                f"{idle['writes_per_minute']:g}",
                _check(idle["writes_per_minute"], 0),
                _others(idle["cpu"]),
                f"all clients, over {idle['window_s']:.0f}s: {by_verb}",
            )
        )
        add(
            (
                f"idle reads/min at N={idle['n']}",
                f"{idle['reads_per_minute']:g}",
                "",
                "",
                f"the operator's own: {own['writes']:g} writes, {own['reads']:g} reads, "
                f"{own['other']:g} other per minute; its CPU {idle['operator_cpu_s']}s",
            )
        )
        flows = idle.get("by_flow_schema_per_minute") or {}
        add(
            (
                "  all requests by flow schema",
                "",
                "",
                "",
                ", ".join(f"{k} {v:g}" for k, v in flows.items()) or "none",
            )
        )
    if restart := results.get("restart"):
        changed = restart["existing_objects_changed"]
        beyond = restart["writes_beyond_new_resource"]
        own = restart["operator_requests"]
        add(
            (
                f"restart at N={restart['n']}: new one Ready",
                f"{restart['start_to_new_ready_s']:.2f} s",
                "",
                "",
                "from the new process's start; the resource is created as it starts"
                + _restarts(results.get("restarts") or []),
            )
        )
        add(
            (
                "  writes to existing",
                f"{changed}",
                _check(changed + sum(abs(v) for v in beyond.values()), 0),
                "",
                f"of {restart['existing_objects']} objects, by resourceVersion; apiserver "
                f"writes beyond the new one's: {beyond or 'none'}; the operator's own: "
                f"{own['writes']:g} writes, {own['reads']:g} reads",
            )
        )
    if found := results.get("unrelated_secrets"):
        a, b = found["without"]["memory"], found["with"]["memory"]
        ratio = found["rss_ratio"]
        add(
            (
                f"RSS with {found['count']} unrelated Secrets",
                f"{ratio}x",
                _check(abs(ratio - 1) if ratio is not None else None, 0.05),
                "",
                f"a fresh operator, settled: {_mb(a.get('VmRSS'))} without, "
                f"{_mb(b.get('VmRSS'))} with them (peak {_mb(a.get('VmHWM'))} / "
                f"{_mb(b.get('VmHWM'))}); the running one after they were created: "
                f"{_mb(found['running_after_create'].get('VmRSS'))}",
            )
        )
    for n, run in sorted(results.get("bulk", {}).items()):
        mem = run["memory"]
        base = run["baseline"]["memory"]
        per = (mem.get("VmRSS", 0) - base.get("VmRSS", 0)) / n
        target = TARGETS["peak_rss_mb_at_5000"]
        add(
            (
                f"operator peak RSS N={n}",
                _mb(mem.get("VmHWM")),
                _check(mem.get("VmHWM", 0) / MB, target) if n == 5000 else "",
                "",
                f"settled {_mb(mem.get('VmRSS'))}; idle before the bulk {_mb(base.get('VmRSS'))}: "
                f"+{per / 1024:.1f} KiB per resource" + _scraped(run.get("metrics_scrape")),
            )
        )
    rows += consumers_rss.rows(results.get("consumers_rss"))
    rows += storm.rows(results.get("storm"))
    return rows


def _scraped(scrape: dict[str, int] | None) -> str:
    if not scrape:
        return ""
    return (
        f"; /metrics {scrape['bytes'] / 1024:.0f} KiB, "
        f"{scrape['credential_samples']} credsmith_credential_* samples"
    )


def table(results: dict[str, Any]) -> str:
    m = results["machine"]
    rows = _rows(results)
    header = (
        f"credsmith bench  {m['date']}  commit {m['commit'][:12]}"
        f"{' (+ uncommitted changes)' if m['tracked_changes'] else ''}"
        f"{_operator_source(results)}\n"
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}; load avg before {results['load_before']}, "
        f"after {results.get('load_after')}; run took {results.get('wall_s', 0) / 60:.1f} min\n"
        "others = CPUs used by other processes on the machine during the phase\n"
    )
    if results.get("error"):
        header += f"INCOMPLETE: {results['error']}\n"
    if not rows:
        return header
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{'measure':<{width[0]}}  {'value':>{width[1]}}  ok   others  detail"]
    for name, value, ok, others, detail in rows:
        lines.append(f"{name:<{width[0]}}  {value:>{width[1]}}  {ok:<3}  {others:>6}  {detail}")
    return header + "\n".join(lines)


def _operator_source(results: dict[str, Any]) -> str:
    source = results.get("args", {}).get("operator_source")
    return f"; the operator from {source}" if source else ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "targets": TARGETS,
        "load_before": load(),
    }
    log(
        f"credsmith bench: sizes {args.sizes}, memory {args.memory_sizes}, "
        f"operator metrics {args.operator_metrics}, "
        f"load {results['load_before']}"
    )
    started = time.monotonic()
    state_dir = Path(tempfile.mkdtemp(prefix="credsmith-bench-"))
    cluster = None
    status = 0
    try:
        cluster = start_cluster(state_dir)
        log(f"control plane up (state in {state_dir})")
        asyncio.run(bench(args, cluster, results))
    except KeyboardInterrupt:
        results["error"] = "interrupted"
        status = 130
    except Exception as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        log(f"bench failed: {results['error']}")
        status = 1
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(state_dir, ignore_errors=True)
        results["load_after"] = load()
        results["wall_s"] = round(time.monotonic() - started, 1)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(table(results))
    print(f"\nwritten: {args.output}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
