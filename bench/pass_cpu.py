"""The CPU of one reconcile pass, without a cluster: what the bulk issue asks of `reconcile`.

    .venv/bin/python bench/pass_cpu.py            # per-pass CPU, issue and steady passes
    .venv/bin/python bench/pass_cpu.py --profile  # and where it goes (cProfile, top 30)

The resource is the bench's (phases.sac: the README tour's ServiceAccountCredential with a
templated url). *issue*: the first pass, no Secret yet (the one pass a bulk issue makes per
credential). *steady*: a pass over the Secret and status it wrote (a restart, a resync, a
change elsewhere): it reads the state back and checks it (trust.py) before writing nothing.
Process CPU time (`time.process_time`), so the machine's other load matters little.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from phases import sac

from credsmith import API_VERSION
from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot, SecretSnapshot
from credsmith.reconcile.state_mac import StateKey

NOW = datetime(2026, 12, 6, 22, 0, 0, tzinfo=UTC)
KEY = StateKey.generate()


def resource(name: str, status: dict[str, Any] | None = None) -> ResourceSnapshot:
    body = sac(name)
    return ResourceSnapshot(
        api_version=API_VERSION,
        kind=body["kind"],
        namespace="bulk",
        name=name,
        uid=str(uuid.uuid4()),
        generation=1,
        labels={},
        annotations={},
        spec=body["spec"],
        status=status or {},
        resource_version="1",
    )


def written(decision: Decision, version: str) -> SecretSnapshot:
    """The Secret as the API server would return it after the write."""
    assert decision.secret is not None
    manifest: dict[str, Any] = {**decision.secret}
    manifest["metadata"] = {**manifest["metadata"], "resourceVersion": version}
    return SecretSnapshot.from_api(manifest)


def passes(n: int) -> tuple[float, float]:
    """CPU seconds per pass: (issue, steady)."""
    resources = [resource(f"sac-{i:05d}") for i in range(n)]
    started = time.process_time()
    decisions = [
        reconcile(SERVICE_ACCOUNT_CREDENTIAL, r, None, NOW, state_key=KEY) for r in resources
    ]
    issue = (time.process_time() - started) / n
    settled = [
        (replace(r, status=dict(d.status)), written(d, str(i + 2)))
        for i, (r, d) in enumerate(zip(resources, decisions, strict=True))
    ]
    started = time.process_time()
    for r, s in settled:
        decision = reconcile(SERVICE_ACCOUNT_CREDENTIAL, r, s, NOW, state_key=KEY)
        assert decision.secret is None, "a steady pass writes nothing"
    steady = (time.process_time() - started) / n
    return issue, steady


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="passes of each kind")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest is shown")
    parser.add_argument("--profile", action="store_true", help="cProfile one run, top 30")
    args = parser.parse_args()
    passes(50)  # warm: imports, compiled templates
    runs = [passes(args.n) for _ in range(args.repeat)]
    issue, steady = min(r[0] for r in runs), min(r[1] for r in runs)
    print(f"reconcile, N={args.n}, best of {args.repeat}:")
    print(f"  issue pass (no Secret yet)  {issue * 1e3:6.3f} ms CPU")
    print(f"  steady pass (reads, checks) {steady * 1e3:6.3f} ms CPU")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(passes, args.n)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
