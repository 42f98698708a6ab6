"""N ApiClients into one registry vs N ServiceAccountCredentials: bulk issue wall time.

`run.py`'s bulk phase (first create -> all Ready, creates at concurrency 32) twice on one
control plane, each on a fresh operator: once with ServiceAccountCredentials, once with
ApiClients that all name one registry (their Ready waits for the registry's write). Goal
(issue 24): the ApiClients within 1.5x. Results in bench/results/registry-scale.json.

    .venv/bin/python bench/registry_scale.py --size 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cluster_setup
import kubeclient
import phases
import run
from kubeclient import GROUP, VERSION, Api, Credentials
from procs import OperatorProcess

REGISTRY = "bench-registry"


def api_client(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ApiClient",
        "metadata": {"name": name},
        "spec": {
            "displayName": f"Client {name}",
            "roles": [{"id": "reports.read", "name": "Read reports"}],
            "registry": {"name": REGISTRY},
        },
    }


def api_client_path(namespace: str, name: str = "", subresource: str = "") -> str:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/apiclients"
    return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")


async def measure(cluster: Any, n: int, results: dict[str, Any], out: Path) -> None:
    credentials = Credentials.from_kubeconfig(cluster.kubeconfig)
    log_dir = out.parent / f"{out.stem}-logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    async with Api(credentials) as api:
        kubeconfig = await cluster_setup.operator_identity(api, cluster.state_dir)
        await cluster_setup.wait_for_garbage_collector(api)
        operator = OperatorProcess(kubeconfig, log_dir, None)
        ctx = phases.Context(
            credentials, cluster.kubeconfig, api, operator, cluster.process.pid, out.parent, 1800
        )
        await api.create_namespace(phases.CANARY_NAMESPACE)
        sac, sac_path = phases.sac, kubeclient.sac_path
        for label in ("ServiceAccountCredential", "ApiClient"):
            if label == "ApiClient":  # the same phase, pointed at ApiClients
                phases.sac = api_client
                kubeclient.sac_path = api_client_path
            try:
                await phases.start_operator(ctx)
                found = await phases.bulk(ctx, n, 32)
            finally:
                operator.stop()
                phases.sac, kubeclient.sac_path = sac, sac_path
            found["load_after"] = run.load()
            results[label] = found
            run.log(
                f"{label} N={n}: {found['seconds']:.1f}s, operator CPU "
                f"{found['operator_cpu_ms_per_resource']} ms each, "
                f"others {run._others(found['cpu'])} CPUs"
            )
            await api.delete_namespace(found["namespace"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument(
        "--output", type=Path, default=run.BENCH_DIR / "results" / "registry-scale.json"
    )
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": run.machine(), "load_before": run.load()}
    state_dir = Path(tempfile.mkdtemp(prefix="credsmith-bench-"))
    cluster = run.start_cluster(state_dir)
    try:
        asyncio.run(measure(cluster, args.size, results, args.output))
    finally:
        cluster.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        results["load_after"] = run.load()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    sac, api = results["ServiceAccountCredential"], results["ApiClient"]
    print(f"ratio ApiClient/SAC: {api['seconds'] / sac['seconds']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
