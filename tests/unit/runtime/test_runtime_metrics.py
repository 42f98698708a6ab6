"""Metrics follow the Decisions: issued, rotated, ready, next rotation; series are dropped."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from credsmith.api.status import Reason
from credsmith.reconcile.snapshots import Decision, Event
from credsmith.runtime.metrics import Metrics
from credsmith.runtime.refusals import Refusal, refused_status

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


LABELS = {"namespace": "ns", "name": "a", "kind": KEY[0]}
PER_RESOURCE = (
    "credsmith_credential_ready",
    "credsmith_credential_next_rotation_timestamp_seconds",
    "credsmith_credential_rotated_timestamp_seconds",
    "credsmith_credential_previous_expiration_timestamp_seconds",
    "credsmith_credential_consumers_lagging",
)


def rotated_status() -> dict[str, object]:
    return {
        "conditions": [{"type": "Ready", "status": "True"}],
        "nextRotationAt": "2026-12-22T21:08:52Z",
        "rotatedAt": "2026-12-21T21:08:52Z",
        "previousExpiresAt": "2026-12-21T21:18:52Z",
        "consumers": [
            {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True},
            {"kind": "Deployment", "name": "api", "revision": 2, "rolledOut": False},
            {"kind": "StatefulSet", "name": "db", "revision": 1, "rolledOut": False},
        ],
    }


def test_per_resource_series_follow_the_status() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.record(KEY, Decision(status=rotated_status()), 0.01)
    assert value(registry, "credsmith_credential_ready", **LABELS) == 1
    assert value(registry, PER_RESOURCE[1], **LABELS) == 1797973732
    assert value(registry, PER_RESOURCE[2], **LABELS) == 1797973732 - 86400
    assert value(registry, PER_RESOURCE[3], **LABELS) == 1797973732 - 86400 + 600
    assert value(registry, "credsmith_credential_consumers_lagging", **LABELS) == 2

    # The previous value retired, every consumer rolled out, not Ready: the series that no
    # longer apply go (absent, not 0); lagging is 0 while there are consumers.
    status = rotated_status()
    del status["previousExpiresAt"], status["nextRotationAt"]
    status["conditions"] = [{"type": "Ready", "status": "False"}]
    status["consumers"] = [{"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True}]
    metrics.record(KEY, Decision(status=status), 0.01)
    assert value(registry, "credsmith_credential_ready", **LABELS) == 0
    assert value(registry, PER_RESOURCE[1], **LABELS) is None
    assert value(registry, PER_RESOURCE[3], **LABELS) is None
    assert value(registry, "credsmith_credential_consumers_lagging", **LABELS) == 0
    del status["consumers"]
    metrics.record(KEY, Decision(status=status), 0.01)
    assert value(registry, "credsmith_credential_consumers_lagging", **LABELS) is None
    assert value(registry, PER_RESOURCE[2], **LABELS) == 1797973732 - 86400


def test_per_resource_series_go_with_the_resource_and_only_with_it() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    other = ("ApiClient", "ns", "a")
    metrics.record(KEY, Decision(status=rotated_status()), 0.01)
    metrics.record(other, Decision(status=rotated_status()), 0.01)
    metrics.forget(KEY)
    for name in PER_RESOURCE:
        assert value(registry, name, **LABELS) is None, name
        assert value(registry, name, namespace="ns", name="a", kind="ApiClient") is not None
    legacy = "credsmith_next_rotation_timestamp_seconds"
    assert value(registry, legacy, kind=KEY[0], namespace="ns", name="a") is None
    assert value(registry, legacy, kind="ApiClient", namespace="ns", name="a") == 1797973732


def test_per_resource_series_can_be_switched_off() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, per_resource=False)
    metrics.record(KEY, Decision(status=rotated_status()), 0.01)
    names = {m.name for m in registry.collect()}
    assert not names & {n.removesuffix("_total") for n in PER_RESOURCE}
    assert value(registry, "credsmith_ready", kind=KEY[0]) == 1


def test_a_refused_write_shows_per_resource_with_the_status_it_left() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.record(KEY, Decision(status=rotated_status()), 0.01)
    refusal = Refusal(Reason.QUOTA_EXCEEDED, "exceeded quota", permanent=True)
    before = rotated_status()
    before["conditions"] = [
        {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-12-21T21:08:52Z",
            "reason": "Rotated",
            "message": "Rotated to revision 2",
        }
    ]
    refused = refused_status(before, 1, refusal, datetime.now(UTC))
    metrics.show(KEY, refused)
    assert value(registry, "credsmith_credential_ready", **LABELS) == 0
    assert value(registry, "credsmith_not_ready", kind=KEY[0]) == 1
    assert value(registry, PER_RESOURCE[2], **LABELS) == 1797973732 - 86400  # kept


def test_registration_and_provider_readiness_series() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    series = {"kind": KEY[0], "namespace": "ns", "name": "a"}
    metrics.show(KEY, ready_status("True"))
    assert value(registry, "credsmith_credential_registered", **series) is None  # no provider
    status = {**ready_status("False"), "identityProvider": {"registered": False}}
    metrics.show(KEY, status)
    assert value(registry, "credsmith_credential_registered", **series) == 0
    status = {**ready_status("True"), "identityProvider": {"registered": True, "clientId": "c"}}
    metrics.show(KEY, status)
    assert value(registry, "credsmith_credential_registered", **series) == 1

    provider = ("ClusterIdentityProvider", "", "hydra")
    labels = {"kind": provider[0], "namespace": "", "name": "hydra"}
    metrics.provider_ready(provider, True)
    assert value(registry, "credsmith_identity_provider_ready", **labels) == 1
    metrics.provider_ready(provider, False)
    assert value(registry, "credsmith_identity_provider_ready", **labels) == 0
    metrics.provider_ready(provider, None)  # deleted: the series goes
    assert value(registry, "credsmith_identity_provider_ready", **labels) is None
    metrics.provider_ready(provider, None)  # and going twice is fine
