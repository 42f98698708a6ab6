"""Rotation without downtime: scheduled, on request, across restarts; and idle is free."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from credsmith.reconcile.consumers import rotation_spread
from credsmith.registry import ClientRegistry
from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    load_registry,
    manifest,
    present,
    wait_for,
)

PLURAL = "serviceaccountcredentials"


def sacred(name: str, **spec: Any) -> dict[str, Any]:
    return manifest("ServiceAccountCredential", name, {"serviceAccount": name, **spec})


def status_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    status: dict[str, Any] = obj.get("status") or {}
    return status


def data_of(
    core: client.CoreV1Api, exposure: Exposure, namespace: str, name: str
) -> dict[str, str]:
    secret = core.read_namespaced_secret(name, namespace)
    return exposure.record_secret(client.ApiClient().sanitize_for_serialization(secret))


def at(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def uid_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> str:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    return str(obj["metadata"]["uid"])


def assert_due(status: dict[str, Any], uid: str, period: float) -> None:
    """nextRotationAt is a period after rotatedAt plus the resource's spread (both written
    with whole seconds: within one second of the exact sum)."""
    spread = rotation_spread(uid, timedelta(seconds=period)).total_seconds()
    assert 0 <= spread <= period / 10
    due = at(status["rotatedAt"]) + period + spread
    assert -1 <= at(status["nextRotationAt"]) - due <= 1, (status, spread)


def wait_revision(
    custom: client.CustomObjectsApi, namespace: str, name: str, revision: int, timeout: float
) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (s := status_of(custom, namespace, name)).get("revision") == revision and s,
        timeout,
        interval=0.2,
        what=f"revision {revision}",
    )
    return found


def test_scheduled_rotation_keeps_the_previous_value_for_the_overlap(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    # The shortest period the schema allows (1m); the overlap ends well before the next.
    body = sacred("timed", rotation={"period": "1m", "overlap": "20s"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    first = wait_revision(custom, namespace, "timed", 1, 60)
    uid = uid_of(custom, namespace, "timed")
    assert_due(first, uid, 60)  # a period, and the spread (up to 6 s here)
    v1 = data_of(core, exposure, namespace, "timed")["client_secret"]

    second = wait_revision(custom, namespace, "timed", 2, 90)
    seen = time.time()
    assert abs(seen - at(first["nextRotationAt"])) < 5  # on time
    data = data_of(core, exposure, namespace, "timed")
    v2 = data["client_secret"]
    assert v2 != v1
    assert data["client_secret_previous"] == v1  # both valid during the overlap
    assert at(second["previousExpiresAt"]) == at(second["rotatedAt"]) + 20
    assert_due(second, uid, 60)

    def previous_gone() -> bool:
        return "client_secret_previous" not in data_of(core, exposure, namespace, "timed")

    wait_for(previous_gone, 35, interval=0.2, what="the previous value to expire")
    assert abs(time.time() - at(second["previousExpiresAt"])) < 5
    assert data_of(core, exposure, namespace, "timed")["client_secret"] == v2
    # Status follows the Secret (it is written second).
    wait_for(
        lambda: "previousExpiresAt" not in status_of(custom, namespace, "timed"),
        10,
        what="status without previousExpiresAt",
    )
    assert status_of(custom, namespace, "timed")["revision"] == 2  # expiry is no rotation

    # The schedule goes on from the rotation: the next one a period later, on time.
    wait_revision(custom, namespace, "timed", 3, 60)
    assert abs(time.time() - at(second["nextRotationAt"])) < 5

    def rotated_events() -> int:
        found = core.list_namespaced_event(namespace, field_selector="involvedObject.name=timed")
        return [e.reason for e in found.items].count("Rotated")

    # The Event is posted after the status patch that the wait above saw.
    wait_for(lambda: rotated_events() >= 2, 10, what="the second Rotated Event")
    assert rotated_events() == 2


def test_rotate_annotation_rotates_once_per_value(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    body = sacred("manual")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    wait_revision(custom, namespace, "manual", 1, 60)
    v1 = data_of(core, exposure, namespace, "manual")["client_secret"]

    body["metadata"]["annotations"] = {"credsmith.io/rotate": "2026-11-22"}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    status = wait_revision(custom, namespace, "manual", 2, 30)
    assert status["lastRotateRequest"] == "2026-11-22"
    v2 = data_of(core, exposure, namespace, "manual")["client_secret"]
    assert v2 != v1

    # The same value again (and any other apply) does not rotate again.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    body["metadata"]["labels"] = {"touched": "yes"}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    time.sleep(3)
    assert status_of(custom, namespace, "manual")["revision"] == 2
    assert data_of(core, exposure, namespace, "manual")["client_secret"] == v2

    # `credsmith rotate` sets a new value: one more rotation.
    rotate = subprocess.run(
        [sys.executable, "-m", "credsmith.cli", "rotate", "sacred/manual", "-n", namespace],
        env=cluster.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert rotate.returncode == 0, rotate.stderr
    # Requested rotations obey the 1m floor: this one waits for a minute after the last.
    wait_revision(custom, namespace, "manual", 3, 90)


def test_operator_down_across_a_due_rotation_rotates_once_on_start(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    body = sacred("sleeper", rotation={"period": "1m"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    first = wait_revision(custom, namespace, "sleeper", 1, 60)
    operator.stop()
    # Sleep past the due time, and then some (but less than two periods).
    time.sleep(max(0.0, at(first["nextRotationAt"]) - time.time()) + 5)
    assert status_of(custom, namespace, "sleeper")["revision"] == 1
    started = time.time()
    operator.start()
    second = wait_revision(custom, namespace, "sleeper", 2, 30)
    # Rotated when it started, and scheduled a whole period from that rotation, not from
    # the missed due time (which would make it due again at once).
    assert at(second["rotatedAt"]) >= started - 1
    assert_due(second, uid_of(custom, namespace, "sleeper"), 60)
    time.sleep(10)  # a second rotation for the missed due time would have come by now
    assert status_of(custom, namespace, "sleeper")["revision"] == 2  # once, not twice
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=sleeper")
    assert [e.reason for e in events.items].count("Rotated") == 1


@pytest.mark.serial  # counts the API server's writes to Secrets and Events, from every client
def test_idle_operator_makes_no_writes(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    names = [f"idle-{i:03d}" for i in range(200)]
    for name in names:
        body = sacred(name, rotation={"period": "720h", "overlap": "1h"})
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def converged() -> bool:
        items = cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        )["items"]
        return len(items) == 200 and all(
            (i.get("status") or {}).get("revision") == 1 for i in items
        )

    wait_for(converged, 180, interval=1, what="200 issued")
    time.sleep(5)  # the last Events and status writes settle
    before = operator_requests(cluster)
    assert before[("POST", "secrets")] >= 200  # the counts are real: the issuing is in them
    time.sleep(60)
    after = operator_requests(cluster)
    writes = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert writes == {}, f"requests while idle: {writes}"


OPERATOR_RESOURCES = {"secrets", "serviceaccountcredentials", "apiclients", "events"}
WRITE_VERBS = {"POST", "PUT", "PATCH", "APPLY"}


def operator_requests(cluster: Cluster) -> dict[tuple[str, str], float]:
    """apiserver_request_total for the operator's resources, by (verb, resource): writes.
    (Reads are not counted: the namespace controller lists them while it deletes the
    namespaces of earlier tests.)"""
    counts: dict[tuple[str, str], float] = {}
    for line in cluster.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        labels = {k: v.strip('"') for k, v in labels.items()}
        verb, resource = labels.get("verb", ""), labels.get("resource", "")
        if resource in OPERATOR_RESOURCES and verb in WRITE_VERBS:
            key = (
                verb,
                resource + ("/" + labels["subresource"] if labels.get("subresource") else ""),
            )
            counts[key] = counts.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return counts


def test_api_client_registry_verifies_both_secrets_during_the_overlap(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    body = manifest(
        "ApiClient",
        "dashboard",
        {
            "displayName": "Dashboard",
            "registry": {"name": "clients"},
            "rotation": {"overlap": "15s"},
        },
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))

    def registry() -> ClientRegistry | None:
        try:
            found: ClientRegistry = load_registry(core, namespace, "clients", tmp_path)
        except client.ApiException:
            return None
        return found

    def verifies(client_id: str, value: str) -> bool:
        found = registry()
        return found is not None and found.verify(client_id, value) is not None

    wait_for(lambda: (s := status_of_client(custom, namespace)) and s.get("revision") == 1, 60)
    old = data_of(core, exposure, namespace, "dashboard")
    wait_for(lambda: verifies(old["client_id"], old["client_secret"]), 30, what="registered")

    body["metadata"]["annotations"] = {"credsmith.io/rotate": "now"}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    wait_for(lambda: status_of_client(custom, namespace).get("revision") == 2, 30)
    new = data_of(core, exposure, namespace, "dashboard")
    assert new["client_secret"] != old["client_secret"]
    wait_for(lambda: verifies(new["client_id"], new["client_secret"]), 30, what="new registered")
    assert verifies(old["client_id"], old["client_secret"])  # both, during the overlap
    expires = at(status_of_client(custom, namespace)["previousExpiresAt"])

    wait_for(lambda: not verifies(old["client_id"], old["client_secret"]), 30, what="old expired")
    assert time.time() >= expires - 1
    assert verifies(new["client_id"], new["client_secret"])

    # The verifier stops accepting the old value at expiry by itself; the operator then
    # drops the previous hash from the document at its next pass.
    def document() -> bytes:
        return base64.b64decode(
            present(core.read_namespaced_secret("clients", namespace).data)["clients.json"]
        )

    wait_for(lambda: b"previousSecret" not in document(), 15, what="previous hash removed")


def status_of_client(custom: client.CustomObjectsApi, namespace: str) -> dict[str, Any]:
    obj = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "apiclients", "dashboard"),
    )
    status: dict[str, Any] = obj.get("status") or {}
    return status


# The expiry must come within 5 s of its time across a restart of the operator: a busy
# CPU stretches the restart (Python's imports alone took 9 s at a load of 20).
@pytest.mark.serial
@pytest.mark.timing
def test_restart_during_an_overlap_still_removes_the_previous_value_on_time(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    body = sacred("overlapping", rotation={"overlap": "12s"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    wait_revision(custom, namespace, "overlapping", 1, 60)
    body["metadata"]["annotations"] = {"credsmith.io/rotate": "once"}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    rotated = wait_revision(custom, namespace, "overlapping", 2, 30)
    assert "client_secret_previous" in data_of(core, exposure, namespace, "overlapping")

    operator.stop()
    time.sleep(3)
    operator.start()  # the schedule is rebuilt from what is stored, not remembered

    def previous_gone() -> bool:
        return "client_secret_previous" not in data_of(core, exposure, namespace, "overlapping")

    wait_for(previous_gone, 30, interval=0.2, what="the previous value to expire")
    assert abs(time.time() - at(rotated["previousExpiresAt"])) < 5
    assert status_of(custom, namespace, "overlapping")["revision"] == 2
