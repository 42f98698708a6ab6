"""Metrics follow the Decisions: issued, rotated, ready, next rotation; series are dropped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from credsmith.reconcile.snapshots import Decision, Event
from credsmith.runtime.metrics import Metrics

KEY = ("ServiceAccountCredential", "ns", "a")


def ready_status(ready: str, next_rotation: str | None = None) -> dict[str, object]:
    status: dict[str, object] = {"conditions": [{"type": "Ready", "status": ready}]}
    if next_rotation:
        status["nextRotationAt"] = next_rotation
    return status


def value(registry: CollectorRegistry, metric: str, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


def test_metrics_follow_decisions_and_forget_deleted_resources() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    kind = {"kind": KEY[0]}
    issued = Decision(
        status=ready_status("True", "2026-12-22T21:08:52Z"),
        events=(Event("Normal", "Issued", "Issued revision 1"),),
    )
    metrics.record(KEY, issued, 0.01)
    metrics.record(KEY, Decision(status=ready_status("True", "2026-12-22T21:08:52Z")), 0.01)
    assert value(registry, "credsmith_issued_total", **kind) == 1
    assert value(registry, "credsmith_ready", **kind) == 1
    series = {"kind": KEY[0], "namespace": "ns", "name": "a"}
    assert value(registry, "credsmith_next_rotation_timestamp_seconds", **series) == 1797973732

    rotated = Decision(status=ready_status("False"), events=(Event("Normal", "Rotated", "r"),))
    metrics.record(KEY, rotated, 0.01)
    assert value(registry, "credsmith_rotated_total", **kind) == 1
    assert value(registry, "credsmith_ready", **kind) == 0
    assert value(registry, "credsmith_not_ready", **kind) == 1
    assert value(registry, "credsmith_next_rotation_timestamp_seconds", **series) is None

    metrics.failed(KEY)
    assert value(registry, "credsmith_reconcile_errors_total", **kind) == 1
    assert value(registry, "credsmith_reconcile_duration_seconds_count", **kind) == 3
    metrics.forget(KEY)
    assert value(registry, "credsmith_not_ready", **kind) == 0
