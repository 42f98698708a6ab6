"""Per-resource series (labels `namespace`, `name`, `kind`), made from each resource's last
reconciled status when Prometheus scrapes.

A prometheus-client Gauge child per resource and metric would keep six objects with a lock
each for every credential; here a resource costs one small tuple, and dropping it (the
resource is gone) drops every series at once. A series that does not apply (no previous
value, no consumers) is absent rather than 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from credsmith.api.status import parse_timestamp

Key = tuple[str, str, str]  # (kind, namespace, name)

LABELS = ("namespace", "name", "kind")
# Kept from before the per-resource series, with its labels in their old order.
LEGACY_NEXT_ROTATION = "credsmith_next_rotation_timestamp_seconds"


class Series(NamedTuple):
    """One resource's values; None: the series does not apply."""

    ready: bool
    next_rotation: float | None
    rotated: float | None
    previous_expiration: float | None
    consumers_lagging: int | None
    registered: bool | None = None


# name, help, the Series field it shows
METRICS = (
    (
        "credsmith_credential_ready",
        "1 if the credential's Ready condition is True, else 0",
        "ready",
    ),
    (
        "credsmith_credential_next_rotation_timestamp_seconds",
        "When the credential rotates next (Unix time; status.nextRotationAt)",
        "next_rotation",
    ),
    (
        "credsmith_credential_rotated_timestamp_seconds",
        "When the credential's current value was made (Unix time; status.rotatedAt)",
        "rotated",
    ),
    (
        "credsmith_credential_previous_expiration_timestamp_seconds",
        "When the previous value stops being valid (Unix time; status.previousExpiresAt); "
        "absent without a previous value",
        "previous_expiration",
    ),
    (
        "credsmith_credential_consumers_lagging",
        "Consumers (status.consumers) whose rollout to the current revision has not finished; "
        "absent without consumers",
        "consumers_lagging",
    ),
    (
        "credsmith_credential_registered",
        "1 if the credential's identity provider holds it (status.identityProvider.registered), "
        "else 0; absent without spec.identityProvider",
        "registered",
    ),
)


def series_of(ready: bool, status: Mapping[str, Any]) -> Series:
    consumers = status.get("consumers")
    lagging = (
        sum(1 for c in consumers if not (isinstance(c, Mapping) and c.get("rolledOut") is True))
        if isinstance(consumers, list) and consumers
        else None
    )
    provider = status.get("identityProvider")
    registered = provider.get("registered") is True if isinstance(provider, Mapping) else None
    return Series(
        ready,
        _timestamp(status.get("nextRotationAt")),
        _timestamp(status.get("rotatedAt")),
        _timestamp(status.get("previousExpiresAt")),
        lagging,
        registered,
    )


class ResourceSeries(Collector):
    def __init__(self, per_resource: bool = True) -> None:
        self.per_resource = per_resource
        self._rows: dict[Key, Series] = {}

    def set(self, key: Key, series: Series) -> None:
        self._rows[key] = series

    def forget(self, key: Key) -> None:
        self._rows.pop(key, None)

    def __len__(self) -> int:
        return len(self._rows)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = list(self._rows.items())  # a scrape runs in the server's thread
        legacy = GaugeMetricFamily(
            LEGACY_NEXT_ROTATION,
            "When each credential rotates next (Unix time)",
            labels=("kind", "namespace", "name"),
        )
        for key, row in rows:
            if row.next_rotation is not None:
                legacy.add_metric(key, row.next_rotation)
        yield legacy
        if not self.per_resource:
            return
        for name, help_text, field in METRICS:
            family = GaugeMetricFamily(name, help_text, labels=LABELS)
            for (kind, namespace, resource), row in rows:
                value = getattr(row, field)
                if value is not None:
                    family.add_metric((namespace, resource, kind), float(value))
            yield family


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value).timestamp()
    except ValueError:  # anyone who may write status may write any text there
        return None
