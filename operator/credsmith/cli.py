"""The `credsmith` command: run the operator, print CRDs, run a local dev setup, rotate."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Sequence
from datetime import timedelta

from credsmith import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="credsmith", description="Issue client credentials declaratively, as Secrets."
    )
    parser.add_argument("--version", action="version", version=f"credsmith {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator against the current cluster")
    _operator_flags(run)
    run.set_defaults(handler=_run)

    crds = commands.add_parser("crds", help="print the CustomResourceDefinitions (YAML)")
    crds.add_argument("--output-dir", help="write one file per CRD here instead of printing")
    crds.add_argument(
        "--check", action="store_true", help="with --output-dir: fail if the files are stale"
    )
    crds.set_defaults(handler=_crds)

    dev = commands.add_parser(
        "dev",
        help="start the local control plane, install the CRDs, run the operator and examples",
    )
    dev.add_argument(
        "--state-dir",
        default=None,
        help="control plane state and kubeconfig (default: .dev/ in the checkout)",
    )
    dev.add_argument(
        "--no-operator",
        action="store_true",
        help="start only the control plane with the CRDs (run the operator from your editor)",
    )
    dev.add_argument("--no-examples", action="store_true", help="do not apply examples/")
    dev.add_argument("--fresh", action="store_true", help="start from an empty cluster")
    dev.add_argument(
        "--identity-provider",
        choices=["hydra"],
        default=None,
        help="also start an identity provider on loopback (Ory Hydra, in memory)",
    )
    dev.add_argument(
        "--exit-when-ready",
        action="store_true",
        help="stop everything once the examples are Ready (a smoke test)",
    )
    _operator_flags(dev, for_dev=True)
    dev.set_defaults(handler=_dev)

    rotate = commands.add_parser(
        "rotate", help="request a rotation: set the credsmith.io/rotate annotation"
    )
    rotate.add_argument("target", metavar="KIND/NAME", help="e.g. sacred/payments or apiclient/x")
    rotate.add_argument("-n", "--namespace", default=None)
    rotate.add_argument("--kubeconfig", default=None)
    rotate.set_defaults(handler=_rotate)

    args = parser.parse_args(argv)
    handler = args.handler
    try:
        result: int = handler(args)
    except Exception as exc:
        # A cluster it cannot use (403, 404, no kubeconfig, no answer): one line, exit 1.
        from credsmith.cli_errors import EXPECTED, describe

        if not isinstance(exc, EXPECTED):
            raise
        message = describe(exc, getattr(args, "kubeconfig", None))
        print(f"credsmith {args.command}: {message}", file=sys.stderr)
        return 1
    return result


def _operator_flags(parser: argparse.ArgumentParser, *, for_dev: bool = False) -> None:
    if not for_dev:
        parser.add_argument(
            "-n",
            "--namespace",
            action="append",
            dest="namespaces",
            default=[],
            help="watch this namespace (repeat for more; default: all namespaces)",
        )
        parser.add_argument("--kubeconfig", default=None, help="default: in-cluster or $KUBECONFIG")
        parser.add_argument(
            "--leader-elect",
            action=argparse.BooleanOptionalAction,
            default=bool(os.environ.get("KUBERNETES_SERVICE_HOST")),
            help="take part in Lease-based leader election (default: on inside a cluster)",
        )
        parser.add_argument(
            "--leader-election-namespace",
            default=os.environ.get("POD_NAMESPACE", "default"),
            help="namespace of the Lease (default: $POD_NAMESPACE, else default)",
        )
        parser.add_argument("--leader-election-id", default="credsmith-operator", help="Lease name")
        parser.add_argument(
            "--lease-duration",
            type=float,
            default=15.0,
            help="seconds a standby waits on an unrenewed Lease before taking over",
        )
        parser.add_argument(
            "--state-key-namespace",
            default=os.environ.get("POD_NAMESPACE", "default"),
            help=(
                "namespace of the Secret holding the key that authenticates the state on "
                "credential Secrets; created there on first start (default: $POD_NAMESPACE, "
                "else default)"
            ),
        )
        parser.add_argument(
            "--state-key-name",
            default="credsmith-state-key",
            help="name of that Secret (the operator needs get and create on it)",
        )
        parser.add_argument(
            "--identity-provider-url-allow",
            action="append",
            dest="identity_provider_url_allow",
            default=[],
            metavar="PREFIX",
            help=(
                "an identity provider's URLs must start with this prefix (scheme, host and "
                "port equal, path under it; repeat for more; default: any URL). A provider "
                "outside it is Ready=False, URLNotAllowed, and is never called"
            ),
        )
        parser.add_argument(
            "--cluster-identity-providers",
            action=argparse.BooleanOptionalAction,
            default=True,
            help=(
                "watch ClusterIdentityProviders and the namespaces' labels (cluster-wide "
                "list and watch; turn off where the operator has only namespaced Roles)"
            ),
        )
        parser.add_argument(
            "--cache-sync-timeout",
            type=float,
            default=120.0,
            help="seconds the first listings may take; exit if they take longer",
        )
    parser.add_argument("--workers", type=int, default=16, help="concurrent reconciles")
    parser.add_argument(
        "--consumer-roll-window",
        type=_roll_window,
        default="10s",
        metavar="DURATION",
        help=(
            "credentials that share a consumer and rotate within this window roll it once "
            "(a Go duration; 0 rolls each at once)"
        ),
    )
    parser.add_argument(
        "--metrics-port", type=int, default=0 if for_dev else 8080, help="0 disables"
    )
    parser.add_argument(
        "--no-resource-metrics",
        dest="resource_metrics",
        action="store_false",
        help="serve only the per-kind metrics, not the credsmith_credential_* series",
    )
    parser.add_argument(
        "--liveness-port", type=int, default=0 if for_dev else 8081, help="0 disables"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )


def _roll_window(value: str) -> timedelta:
    from credsmith.api.durations import parse_go_duration

    try:
        window = parse_go_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if window < timedelta(0) or window > timedelta(minutes=10):
        raise argparse.ArgumentTypeError(f"{value!r}: between 0 and 10m")
    return window


def _setup_logging(level: str) -> None:
    # The format shows no file, line, function, thread or process: skip finding them for
    # every record (the logging HOWTO's "Optimization"; a line per credential in a bulk).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _run(args: argparse.Namespace) -> int:
    from credsmith.runtime.operator import OperatorOptions, run_operator

    _setup_logging(args.log_level)
    options = OperatorOptions(
        namespaces=args.namespaces,
        kubeconfig=args.kubeconfig,
        workers=args.workers,
        metrics_port=args.metrics_port or None,
        resource_metrics=args.resource_metrics,
        liveness_port=args.liveness_port or None,
        leader_elect=args.leader_elect,
        leader_election_namespace=args.leader_election_namespace,
        leader_election_id=args.leader_election_id,
        lease_duration=args.lease_duration,
        state_key_namespace=args.state_key_namespace,
        state_key_name=args.state_key_name,
        cache_sync_timeout=args.cache_sync_timeout,
        consumer_roll_window=args.consumer_roll_window,
        identity_provider_url_allow=args.identity_provider_url_allow,
        cluster_identity_providers=args.cluster_identity_providers,
        identity=os.environ.get("POD_NAME") or socket.gethostname(),
    )
    import uvloop

    from credsmith.runtime.controller import CacheSyncTimeout
    from credsmith.runtime.leader import LostLeadership

    try:
        with contextlib.suppress(KeyboardInterrupt):
            # uvloop: ~30% less CPU per API request than asyncio's own loop and TLS
            # (bench/http_cpu.py; bench/README.md, "Operator CPU per credential").
            uvloop.run(run_operator(options))
    except CacheSyncTimeout as exc:
        logging.getLogger("credsmith").error("stopping: %s", exc)
        return 1
    except LostLeadership as exc:
        # Crash-only: a replica that lost the Lease exits and restarts as a standby.
        logging.getLogger("credsmith").error("stopping: %s", exc)
        return 1
    return 0


def _crds(args: argparse.Namespace) -> int:
    from pathlib import Path

    from credsmith.api.crd import render_crds_yaml, stale_crds, write_crds

    if args.output_dir is None:
        sys.stdout.write(render_crds_yaml())
        return 0
    directory = Path(args.output_dir)
    if args.check:
        stale = stale_crds(directory)
        for path in stale:
            print(f"stale: {path} (run `credsmith crds --output-dir {directory}`)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_crds(directory):
        print(path)
    return 0


def _dev(args: argparse.Namespace) -> int:
    from credsmith.dev.session import run_dev

    _setup_logging(args.log_level)
    return run_dev(args)


def _rotate(args: argparse.Namespace) -> int:
    from credsmith.runtime.rotate import request_rotation

    kind, _, name = args.target.partition("/")
    if not name:
        print("credsmith rotate: expected KIND/NAME, e.g. sacred/payments", file=sys.stderr)
        return 2
    try:
        resource, value = request_rotation(kind, name, args.namespace, args.kubeconfig)
    except LookupError as exc:
        print(f"credsmith rotate: {exc}", file=sys.stderr)
        return 1
    print(f"{resource} rotation requested (credsmith.io/rotate={value})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
