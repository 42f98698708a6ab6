"""Prometheus metrics of the operator (prometheus-client, served on its own port)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from credsmith.reconcile.snapshots import Decision
from credsmith.runtime.resource_metrics import Key, ResourceSeries, series_of


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY, per_resource: bool = True) -> None:
        self.issued = Counter(
            "credsmith_issued_total",
            "Credentials issued: first issue and re-issue after loss",
            ["kind"],
            registry=registry,
        )
        self.rotated = Counter(
            "credsmith_rotated_total", "Credentials rotated", ["kind"], registry=registry
        )
        self.errors = Counter(
            "credsmith_reconcile_errors_total",
            "Reconcile passes that failed and were retried",
            ["kind"],
            registry=registry,
        )
        self.duration = Histogram(
            "credsmith_reconcile_duration_seconds",
            "Time of one reconcile pass, API calls included",
            ["kind"],
            registry=registry,
        )
        self.ready = Gauge(
            "credsmith_ready",
            "Resources whose Ready condition is True",
            ["kind"],
            registry=registry,
        )
        self.not_ready = Gauge(
            "credsmith_not_ready",
            "Resources whose Ready condition is not True",
            ["kind"],
            registry=registry,
        )
        # One row per resource, turned into samples at scrape time (resource_metrics.py);
        # per_resource=False keeps only the aggregates (and the older next-rotation series).
        self.resources = ResourceSeries(per_resource)
        registry.register(self.resources)
        self.queue_depth = Gauge(
            "credsmith_queue_depth", "Keys waiting for a worker", registry=registry
        )
        self.scheduled = Gauge(
            "credsmith_scheduled_keys",
            "Keys with a scheduled wake-up (rotation, overlap expiry, retry)",
            registry=registry,
        )
        self.leader = Gauge(
            "credsmith_leader", "1 on the replica that holds the Lease and acts", registry=registry
        )
        self.identity_provider_ready = Gauge(
            "credsmith_identity_provider_ready",
            "1 if the identity provider is reached and authenticated (its Ready), else 0",
            ["namespace", "name", "kind"],
            registry=registry,
        )
        self._ready_state: dict[Key, bool] = {}

    def watch_queue(self, depth: Callable[[], int], scheduled: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)
        self.scheduled.set_function(scheduled)

    def record(self, key: Key, decision: Decision, seconds: float) -> None:
        kind = key[0]
        self.duration.labels(kind).observe(seconds)
        for event in decision.events:
            if event.reason in ("Issued", "Reissued"):
                self.issued.labels(kind).inc()
            elif event.reason == "Rotated":
                self.rotated.labels(kind).inc()
        self.show(key, decision.status)

    def show(self, key: Key, status: Mapping[str, Any]) -> None:
        """The gauges of a resource, from the status it now has."""
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
        self._set_ready(key, ready)
        self.resources.set(key, series_of(ready, status))

    def provider_ready(self, key: Key, ready: bool | None) -> None:
        """An IdentityProvider's (namespace "") ClusterIdentityProvider's Ready; None: gone."""
        kind, namespace, name = key
        if ready is None:
            with contextlib.suppress(KeyError):
                self.identity_provider_ready.remove(namespace, name, kind)
            return
        self.identity_provider_ready.labels(namespace, name, kind).set(1 if ready else 0)

    def failed(self, key: Key) -> None:
        self.errors.labels(key[0]).inc()

    def forget(self, key: Key) -> None:
        """The resource is gone: drop its series."""
        was_ready = self._ready_state.pop(key, None)
        if was_ready is not None:
            (self.ready if was_ready else self.not_ready).labels(key[0]).dec()
        self.resources.forget(key)

    def _set_ready(self, key: Key, ready: bool) -> None:
        before = self._ready_state.get(key)
        if before == ready:
            return
        if before is not None:
            (self.ready if before else self.not_ready).labels(key[0]).dec()
        (self.ready if ready else self.not_ready).labels(key[0]).inc()
        self._ready_state[key] = ready


def start_metrics_server(port: int) -> None:
    start_http_server(port)
