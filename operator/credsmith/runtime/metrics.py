"""Prometheus metrics of the operator (prometheus-client, its own HTTP server)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from credsmith.runtime.controller import Controller

ISSUED = Counter(
    "credsmith_issued_total", "Credentials issued (first issue and re-issue)", ["kind"]
)
ROTATED = Counter("credsmith_rotated_total", "Credentials rotated", ["kind"])
ERRORS = Counter("credsmith_reconcile_errors_total", "Failed reconcile passes", ["kind"])
RECONCILE_SECONDS = Histogram(
    "credsmith_reconcile_duration_seconds", "Time of one reconcile pass", ["kind"]
)
QUEUE_DEPTH = Gauge("credsmith_queue_depth", "Keys waiting for a worker")
SCHEDULED = Gauge("credsmith_scheduled_keys", "Keys with a scheduled wake-up (rotation, expiry)")


def start_metrics_server(port: int, controller: Controller) -> None:
    QUEUE_DEPTH.set_function(lambda: len(controller.queue))
    SCHEDULED.set_function(lambda: controller.queue.scheduled)
    start_http_server(port)
