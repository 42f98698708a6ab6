"""What the per-resource metrics cost in memory, without a cluster: the Python heap the
operator's Metrics keep for N recorded resources (tracemalloc), with and without the
credsmith_credential_* series, and what one scrape of them allocates at its peak. For
contrast, the same series as prometheus-client Gauge children (one per resource and metric).

    .venv/bin/python bench/metrics_memory.py [N]
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from credsmith.reconcile.snapshots import Decision
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.resource_metrics import LABELS, METRICS, series_of

KIB = 1024


def status(i: int) -> dict[str, object]:
    return {
        "conditions": [{"type": "Ready", "status": "True"}],
        "rotatedAt": "2026-12-01T00:00:00Z",
        "nextRotationAt": "2026-12-31T00:00:00Z",
        "previousExpiresAt": "2026-12-02T00:00:00Z" if i % 2 else None,
        "consumers": [{"kind": "Deployment", "name": "web", "revision": 1, "rolledOut": True}],
    }


def keys(n: int) -> list[tuple[str, str, str]]:
    return [
        ("ServiceAccountCredential", f"team-{i % 50:02d}", f"credential-{i:05d}") for i in range(n)
    ]


def measure(fill: Callable[[CollectorRegistry], None]) -> tuple[int, int, int]:
    """Retained bytes after filling, peak bytes during one scrape, and the scrape's size."""
    gc.collect()
    tracemalloc.start()
    registry = CollectorRegistry()
    fill(registry)
    gc.collect()
    retained = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    text = generate_latest(registry)
    peak = tracemalloc.get_traced_memory()[1] - retained
    tracemalloc.stop()
    return retained, peak, len(text)


def operator_metrics(n: int, per_resource: bool) -> Callable[[CollectorRegistry], None]:
    def fill(registry: CollectorRegistry) -> None:
        metrics = Metrics(registry, per_resource=per_resource)
        for i, key in enumerate(keys(n)):
            metrics.record(key, Decision(status=status(i)), 0.01)

    return fill


def gauge_children(n: int) -> Callable[[CollectorRegistry], None]:
    def fill(registry: CollectorRegistry) -> None:
        gauges = [Gauge(name, text, LABELS, registry=registry) for name, text, _ in METRICS]
        for i, (kind, namespace, name) in enumerate(keys(n)):
            row = series_of(True, status(i))
            for gauge, (_, _, field) in zip(gauges, METRICS, strict=True):
                value = getattr(row, field)
                if value is not None:
                    gauge.labels(namespace, name, kind).set(float(value))

    return fill


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print(f"N={n} resources (Python heap, tracemalloc)")
    print(f"{'':44}{'retained':>12}{'scrape peak':>14}{'/metrics':>12}")
    cases = {
        "Metrics, --no-resource-metrics": operator_metrics(n, False),
        "Metrics, per-resource series (the default)": operator_metrics(n, True),
        "for contrast: Gauge children, 5 per resource": gauge_children(n),
    }
    for label, fill in cases.items():
        retained, peak, size = measure(fill)
        print(f"{label:44}{retained / KIB:>9.0f} KiB{peak / KIB:>10.0f} KiB{size / KIB:>8.0f} KiB")


if __name__ == "__main__":
    main()
