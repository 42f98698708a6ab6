"""What the operator keeps per credential, without a cluster: the Python heap (tracemalloc)
of the informer caches (the resource and its Secret, as decoded from API bodies like the API
server's, each parsed on its own as a watch event is), the work queue's scheduled rotation,
and the per-resource metrics row; by allocation site.

    .venv/bin/python bench/cache_memory.py [N] [--top K]

The bodies are the operator's own: the pure reconcile of a bench resource (bench/phases.py's
`sac`) decides the Secret and the status; the API server's metadata (uid, resourceVersion,
creationTimestamp, managedFields) is added as a real one adds it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tracemalloc
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from phases import sac

from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.reconcile.state_mac import StateKey
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.workqueue import WorkQueue

KIB = 1024
NAMESPACE = "bulk-5000"


def _fields(manager: str, operation: str, subresource: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "time": "2026-12-06T22:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:spec": {".": {}}},
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def bodies(n: int) -> list[tuple[dict[str, Any], dict[str, Any], Any]]:
    """(resource body, Secret body, the decision) per credential, as the API serves them."""
    now = datetime.now(UTC)
    key = StateKey.generate()
    out = []
    for i in range(n):
        body = sac(f"sac-{i:05d}")
        meta = body["metadata"]
        meta.update(
            namespace=NAMESPACE,
            uid=str(uuid.uuid4()),
            resourceVersion=str(100000 + 3 * i),
            generation=1,
            creationTimestamp="2026-12-06T22:00:00Z",
        )
        decision = reconcile(
            SERVICE_ACCOUNT_CREDENTIAL, ResourceSnapshot.from_api(body), None, now, state_key=key
        )
        assert decision.secret is not None
        resource = {**body, "status": dict(decision.status)}
        resource["metadata"] = {
            **meta,
            "resourceVersion": str(100002 + 3 * i),
            "managedFields": [
                _fields("python", "Update"),
                _fields("credsmith", "Update", "status"),
            ],
        }
        secret = json.loads(json.dumps(decision.secret))
        secret["metadata"].update(
            uid=str(uuid.uuid4()),
            resourceVersion=str(100001 + 3 * i),
            creationTimestamp="2026-12-06T22:00:01Z",
            managedFields=[_fields("credsmith", "Update")],
        )
        out.append((resource, secret, decision))
    return out


def measure(n: int, top: int, metrics: bool) -> None:
    made = bodies(n)
    # As the watch delivers them: each body is its own json.loads (no keys shared).
    lines = [(json.dumps(r), json.dumps(s), d) for r, s, d in made]
    del made
    gc.collect()
    tracemalloc.start(8)
    before = tracemalloc.take_snapshot()
    resources: dict[tuple[str, str], ResourceSnapshot] = {}
    secrets: dict[tuple[str, str], SecretSnapshot] = {}
    queue: WorkQueue[tuple[str, str, str]] = WorkQueue()
    rows = Metrics(per_resource=True) if metrics else None
    for resource_line, secret_line, decision in lines:
        resource = ResourceSnapshot.from_api(json.loads(resource_line))
        secret = SecretSnapshot.from_api(json.loads(secret_line))
        resources[(resource.namespace, resource.name)] = resource
        secrets[(secret.namespace, secret.name)] = secret
        key = (resource.kind, resource.namespace, resource.name)
        if decision.requeue_at is not None:
            queue.add_at(key, decision.requeue_at.timestamp())
        if rows is not None:
            rows.record(key, decision, 0.01)
    gc.collect()
    after = tracemalloc.take_snapshot()
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"N={n}: {total / KIB:.0f} KiB retained, {total / n:.0f} bytes per credential")
    for stat in after.compare_to(before, "lineno")[:top]:
        if stat.size_diff <= 0:
            continue
        frame = stat.traceback[0]
        print(
            f"  {stat.size_diff / n:7.0f} B/cred  {stat.count_diff / n:5.1f} blocks/cred  "
            f"{Path(frame.filename).name}:{frame.lineno}"
        )
    tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=5000)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--metrics", action="store_true", help="with per-resource metrics rows")
    args = parser.parse_args()
    measure(args.n, args.top, args.metrics)


if __name__ == "__main__":
    main()
