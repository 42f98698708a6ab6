"""`credsmith dev`: the zero-setup path, from nothing to Ready examples.

Builds and starts the local control plane, installs the CRDs, runs the operator in
the foreground and applies examples/. The kubeconfig is written to a stable path
(.dev/kubeconfig in the checkout) so a second terminal can use kubectl meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from types import FrameType

from credsmith.dev.cluster import ClusterError, LocalCluster, build_binaries, find_checkout
from credsmith.dev.hydra import (
    DEV_ADMIN_PORT,
    DEV_PUBLIC_PORT,
    HYDRA_BINARY,
    HYDRA_EXAMPLE,
    LocalHydra,
    hydra_banner,
    token_command,
)


def kubectl(cluster: LocalCluster, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [str(cluster.kubectl), *args],
        input=stdin,
        env=cluster.kubectl_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def install_crds(cluster: LocalCluster) -> None:
    from credsmith.api.crd import render_crds_yaml

    kubectl(cluster, "apply", "--server-side", "-f", "-", stdin=render_crds_yaml())
    kubectl(
        cluster, "wait", "--for=condition=Established", "--timeout=60s",
        "crd/serviceaccountcredentials.credsmith.io", "crd/apiclients.credsmith.io",
        "crd/identityproviders.credsmith.io", "crd/clusteridentityproviders.credsmith.io",
    )  # fmt: skip


def run_dev(args: argparse.Namespace) -> int:
    """Run until done, Ctrl-C or SIGTERM; the control plane (its own process group,
    so a terminal's Ctrl-C does not reach it directly) is stopped in every case."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run_dev(args)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while the operator runs: a clean stop
        print("credsmith dev: stopped")
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (a service manager, `kill`, a CI timeout) does what Ctrl-C does: unwind,
    # so that `with cluster:` stops the control plane instead of leaking it.
    del signum, frame
    raise KeyboardInterrupt


def _run_dev(args: argparse.Namespace) -> int:
    checkout = find_checkout()
    state_dir = Path(args.state_dir) if args.state_dir else checkout / ".dev"
    if args.fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    with_hydra = getattr(args, "identity_provider", None) == "hydra"
    print("credsmith dev: building the local control plane (skipped when current)")
    # No helm: dev never runs it.
    bin_dir = build_binaries(checkout, dev_only=True, hydra=with_hydra)
    cluster = LocalCluster(bin_dir, state_dir)
    print(f"credsmith dev: starting the control plane (state in {state_dir})")
    with cluster, contextlib.ExitStack() as providers:
        install_crds(cluster)
        extra: list[Path] = []
        hydra: LocalHydra | None = None
        if with_hydra:
            hydra = providers.enter_context(
                LocalHydra(
                    bin_dir / HYDRA_BINARY,
                    state_dir / "hydra.log",
                    public_port=DEV_PUBLIC_PORT,
                    admin_port=DEV_ADMIN_PORT,
                )
            )
            print(hydra_banner(hydra))
            extra.append(checkout / HYDRA_EXAMPLE)
        print(
            "credsmith dev: ready. In another terminal:\n"
            f"  export KUBECONFIG={cluster.kubeconfig}\n"
            f"  export PATH={bin_dir}:$PATH   # kubectl, built here\n"
            "  kubectl get sacred,apiclients"
        )
        if args.no_operator:
            print("credsmith dev: control plane only (--no-operator); Ctrl-C stops it")
            if not args.exit_when_ready:
                with contextlib.suppress(KeyboardInterrupt):
                    threading.Event().wait()
            return 0
        examples = None if args.no_examples else [checkout / "examples", *extra]
        after = (
            "credsmith dev: a token from Hydra with what the Secret holds:\n  "
            + token_command(hydra)
            if hydra is not None and examples is not None
            else ""
        )
        return asyncio.run(_operate(cluster, args, examples, after))


async def _operate(
    cluster: LocalCluster, args: argparse.Namespace, examples: list[Path] | None, after: str
) -> int:
    from credsmith.runtime.operator import OperatorOptions, run_operator

    stop = asyncio.Event()
    options = OperatorOptions(
        kubeconfig=str(cluster.kubeconfig),
        workers=args.workers,
        consumer_roll_window=args.consumer_roll_window,
        metrics_port=args.metrics_port or None,
        resource_metrics=args.resource_metrics,
        liveness_port=args.liveness_port or None,
        stop_flag=stop,
    )
    operator = asyncio.create_task(run_operator(options))
    status = 0
    try:
        if examples is not None:
            status = await asyncio.to_thread(_apply_examples, cluster, examples)
            if status == 0 and after:
                print(after, flush=True)
            if args.exit_when_ready:
                stop.set()
        await operator
    except (KeyboardInterrupt, asyncio.CancelledError):
        stop.set()
    return status


def _apply_examples(cluster: LocalCluster, examples: list[Path]) -> int:
    for path in examples:
        print(f"credsmith dev: applying {path}")
        print(kubectl(cluster, "apply", "-f", str(path)), end="")
    try:
        kubectl(
            cluster, "wait", "--for=condition=Ready", "--timeout=120s",
            "serviceaccountcredentials,apiclients", "--all", "--all-namespaces",
        )  # fmt: skip
    except ClusterError as exc:
        print(f"credsmith dev: examples not Ready: {exc}")
        print(kubectl(cluster, "get", "sacred,apiclients", "-A"), end="")
        return 1
    print("credsmith dev: the examples are Ready:")
    print(kubectl(cluster, "get", "sacred,apiclients", "-A"), end="")
    return 0
