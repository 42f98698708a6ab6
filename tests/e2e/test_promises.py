"""Promises kept and no annotation makes a loop (issue 21; design behaviours 13 and 14),
against the local control plane.

- A rotation requested while the previous value is still promised waits (Reconciling,
  RotationWaiting) until previousExpiresAt: the first value stays in the Secret and verifies
  in the registry until then; then revision 3 happens, once.
- Requested rotations obey the 1m floor: two requests a second apart rotate once, and the
  second only a minute after the first.
- A `credsmith.io/revision` of 2^31 - 1 with a wrong fingerprint makes at most one re-issue
  (at the revision status records + 1: a planted revision fails the state's MAC and is not
  followed), where the operator used to re-issue on every pass. A state the operator itself
  wrote at the last revision stalls (RevisionExhausted): unit-tested in
  test_reconcile_promises.py, as no one but the operator can write such a state here.

Secret values are compared outside `assert` statements (see test_trust.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, load_registry, wait_for
from tests.e2e.test_trust import (
    api_client,
    apply,
    condition,
    datetime_of,
    events,
    get,
    sacred,
    same,
    secret_data,
    wait_revision,
)

ROTATE = "credsmith.io/rotate"
REVISION = "credsmith.io/revision"
FINGERPRINT = "credsmith.io/fingerprint"
LAST_REVISION = 2**31 - 1


def request_rotation(cluster: Cluster, namespace: str, ref: str, value: str) -> None:
    cluster.kubectl("annotate", "--overwrite", "-n", namespace, ref, f"{ROTATE}={value}")


def waiting(obj: dict[str, Any]) -> dict[str, Any] | None:
    found = condition(obj, "Reconciling")
    if found and found["status"] == "True" and found["reason"] == "RotationWaiting":
        return found
    return None


def test_a_second_rotation_inside_the_overlap_waits_for_the_first_values_promise(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    # An overlap longer than the 1m floor: the promise, not the floor, ends the wait.
    apply(cluster, namespace, api_client("kept", rotation={"overlap": "75s"}))
    wait_revision(custom, namespace, "ApiClient", "kept", 1)
    first = secret_data(core, exposure, namespace, "kept")
    client_id = first["client_id"]

    request_rotation(cluster, namespace, "apiclient/kept", "r1")
    rotated = wait_revision(custom, namespace, "ApiClient", "kept", 2, 30)
    promised = datetime_of(rotated["status"]["previousExpiresAt"])
    second = secret_data(core, exposure, namespace, "kept")

    def first_verifies() -> bool:
        found = load_registry(core, namespace, "reg", tmp_path).verify(
            client_id, first["client_secret"]
        )
        return found is not None and found.name == "kept"

    wait_for(first_verifies, 30, what="the first value listed as the previous one")

    request_rotation(cluster, namespace, "apiclient/kept", "r2")

    # Until the promise: revision 2, the first value in the Secret and verifying.
    checks = 0
    while time.time() < promised - 3:
        if checks == 5:  # the request is seen by now: status says the rotation waits
            obj = get(custom, namespace, "ApiClient", "kept")
            found = waiting(obj)
            assert found is not None, "no Reconciling=True RotationWaiting"
            assert rotated["status"]["previousExpiresAt"] in found["message"]  # until when
            assert "promised" in found["message"]  # ... and why
            assert condition(obj, "Ready")["status"] == "True"  # type: ignore[index]
        obj = get(custom, namespace, "ApiClient", "kept")
        assert obj["status"]["revision"] == 2, "rotated before the previous value's promise"
        data = secret_data(core, exposure, namespace, "kept")
        kept = same(data.get("client_secret_previous", ""), first["client_secret"])
        assert kept, "the first value left the Secret before its promise"
        assert first_verifies(), "the first value stopped verifying before its promise"
        checks += 1
        time.sleep(1)
    assert checks >= 10

    # Then revision 3, once, with the second value as the previous one.
    third = wait_revision(custom, namespace, "ApiClient", "kept", 3, promised - time.time() + 30)
    assert datetime_of(third["status"]["rotatedAt"]) >= promised - 1
    assert third["status"]["lastRotateRequest"] == "r2"
    assert waiting(third) is None
    data = secret_data(core, exposure, namespace, "kept")
    moved = same(data["client_secret_previous"], second["client_secret"])
    assert moved, "the previous value is not the second one"
    time.sleep(5)
    assert get(custom, namespace, "ApiClient", "kept")["status"]["revision"] == 3
    rotations = [e for e in events(core, namespace, "kept") if e.reason == "Rotated"]
    assert sum(e.count or 1 for e in rotations) == 2


def test_two_rotate_requests_within_a_minute_rotate_once_then_after_the_floor(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("floored"))
    wait_revision(custom, namespace, "ServiceAccountCredential", "floored", 1)
    request_rotation(cluster, namespace, "sacred/floored", "r1")
    rotated = wait_revision(custom, namespace, "ServiceAccountCredential", "floored", 2, 30)
    rotated_at = datetime_of(rotated["status"]["rotatedAt"])
    secret_data(core, exposure, namespace, "floored")

    time.sleep(1)
    request_rotation(cluster, namespace, "sacred/floored", "r2")
    looked = 0
    while time.time() < rotated_at + 55:
        obj = get(custom, namespace, "ServiceAccountCredential", "floored")
        assert obj["status"]["revision"] == 2, "a second rotation within the 1m floor"
        if looked == 10:  # the request is seen by now: status says the rotation waits
            found = waiting(obj)
            assert found is not None, "no Reconciling=True RotationWaiting"
            assert "at most once per 1m" in found["message"]
        looked += 1
        time.sleep(1)
    assert looked > 10

    third = wait_revision(custom, namespace, "ServiceAccountCredential", "floored", 3, 60)
    assert datetime_of(third["status"]["rotatedAt"]) >= rotated_at + 60
    assert third["status"]["lastRotateRequest"] == "r2"
    secret_data(core, exposure, namespace, "floored")
    time.sleep(5)
    status = get(custom, namespace, "ServiceAccountCredential", "floored")["status"]
    assert status["revision"] == 3


def test_a_planted_last_revision_with_a_wrong_fingerprint_makes_no_loop(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("looped"))
    wait_revision(custom, namespace, "ServiceAccountCredential", "looped", 1)
    before = secret_data(core, exposure, namespace, "looped")

    planted = {REVISION: str(LAST_REVISION), FINGERPRINT: "sha256:0000000000000000"}
    core.patch_namespaced_secret("looped", namespace, {"metadata": {"annotations": planted}})

    # 40 s of passes (an annotation edit a second sets one off each: the operator's own
    # Secret write does not): every value the Secret holds meanwhile is recorded, counted.
    values = [before["client_secret"]]
    deadline = time.monotonic() + 40
    tick = 0
    while time.monotonic() < deadline:
        tick += 1
        cluster.kubectl(
            "annotate", "--overwrite", "-n", namespace, "sacred/looped", f"e2e.test/tick={tick}"
        )
        current = secret_data(core, exposure, namespace, "looped")["client_secret"]
        if not any(same(current, seen) for seen in values):
            values.append(current)
        time.sleep(0.5)
    assert tick >= 20
    reissues = len(values) - 1
    assert reissues <= 1, f"{reissues} re-issues in 40 s"
    reissued = [e for e in events(core, namespace, "looped") if e.reason == "Reissued"]
    assert sum(e.count or 1 for e in reissued) <= 1

    obj = get(custom, namespace, "ServiceAccountCredential", "looped")
    assert obj["status"]["revision"] == 2, "the planted revision was followed"
    ready = condition(obj, "Ready")
    assert ready is not None
    assert ready["status"] == "True"
    assert exposure.leaks(ready["message"]) == []
