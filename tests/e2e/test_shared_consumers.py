"""Shared consumers rolled once (issue 24): credentials that share a workload and rotate
within the operator's --consumer-roll-window roll it with one write, on the real API server
and its Deployment controller (KWOK nodes)."""

from __future__ import annotations

import functools
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.e2e.cluster import (
    Cluster,
    Operator,
    delete_deny_policy,
    deny_policy,
    present,
    wait_for,
    wait_policy_in_force,
)
from tests.e2e.test_consumers import (
    apply,
    consumers_at,
    deployment,
    events,
    replica_sets,
    sacred,
    secret_keys,
    status_of,
    template_annotations,
)

NAMES = ("alpha", "beta", "gamma")
# The field manager of the one write (README: Consumers follow rotation).
SHARED_ROLLOUT_MANAGER = "credsmith-shared-rollout"


def _complete(
    apps: client.AppsV1Api, namespace: str, name: str, annotations: dict[str, str]
) -> bool:
    """The Deployment rolled out to a template with these annotations, every replica
    updated and available (as `kubectl rollout status` judges it)."""
    found = apps.read_namespaced_deployment(name, namespace)
    status, wanted = found.status, found.spec.replicas
    return (
        dict(present(found.spec.template.metadata).annotations or {}) == annotations
        and (present(status).observed_generation or 0)
        >= present(present(found.metadata).generation)
        and present(status).updated_replicas == wanted
        and present(status).replicas == wanted
        and present(status).available_replicas == wanted
    )


def test_three_credentials_rotated_together_roll_their_shared_consumer_once(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Three rotations requested together: one new ReplicaSet whose template carries the
    three revisions, each credential's status.consumers shows that rollout, and each
    previous value is kept past its overlap until the one rollout has finished (its new pod
    is available only after minReadySeconds, longer than the overlap)."""
    overlap, min_ready = 30, 35
    body = deployment("shared", replicas=1, uses=NAMES)
    body["spec"]["minReadySeconds"] = min_ready
    manifest_file = tmp_path / "shared.json"
    manifest_file.write_text(json.dumps(body))
    cluster.kubectl("apply", "-n", namespace, "-f", str(manifest_file))
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/shared", "--timeout=120s")
    consumers = [{"kind": "Deployment", "name": "shared"}]
    apply(
        cluster,
        namespace,
        *(sacred(name, consumers, rotation={"overlap": f"{overlap}s"}) for name in NAMES),
    )
    for name in NAMES:
        wait_for(
            functools.partial(consumers_at, custom, namespace, name, 1), 60, what=f"{name} rev 1"
        )
    before = {rs.metadata.name for rs in replica_sets(apps, namespace, "shared")}
    assert len(before) == 1

    # One command, three requests a few milliseconds apart: well within the window.
    refs = [f"sacred/{name}" for name in NAMES]
    cluster.kubectl("annotate", "--overwrite", "-n", namespace, *refs, "credsmith.io/rotate=1")

    rolled = {f"serviceaccountcredential.credsmith.io/{name}": "2" for name in NAMES}
    complete_at: float | None = None
    # Revision 1 has no previous value: a Secret counts as retired only once it has been seen
    # holding one (under load a rotation may land after the first look at its Secret).
    held: set[str] = set()
    retired: dict[str, float] = {}
    deadline = time.monotonic() + 2 * overlap + 90
    while time.monotonic() < deadline and (complete_at is None or len(retired) < len(NAMES)):
        now = time.time()
        if complete_at is None and _complete(apps, namespace, "shared", rolled):
            complete_at = now
        for name in NAMES:
            if name in retired:
                continue
            if "client_secret_previous" in secret_keys(core, namespace, name):
                held.add(name)
            elif name in held:
                retired[name] = now
        time.sleep(0.5)
    statuses = {name: status_of(custom, namespace, name) for name in NAMES}
    assert complete_at is not None, (template_annotations(apps, namespace, "shared"), statuses)
    assert held == set(NAMES), statuses
    assert len(retired) == len(NAMES), statuses

    # One rollout: exactly one new ReplicaSet, its template with the three revisions.
    after = replica_sets(apps, namespace, "shared")
    assert len(after) == 2, [
        (rs.metadata.name, rs.spec.template.metadata.annotations) for rs in after
    ]
    (new,) = [rs for rs in after if rs.metadata.name not in before]
    assert dict(new.spec.template.metadata.annotations or {}) == rolled
    assert template_annotations(apps, namespace, "shared") == rolled
    managers = {
        m.manager
        for m in present(
            present(apps.read_namespaced_deployment("shared", namespace).metadata).managed_fields
        )
    }
    assert SHARED_ROLLOUT_MANAGER in managers

    # Each credential's status shows that rollout, and an Event says it rolled.
    rotated_at = []
    for name in NAMES:
        entries = wait_for(
            functools.partial(consumers_at, custom, namespace, name, 2), 60, what=name
        )
        assert entries == [
            {"kind": "Deployment", "name": "shared", "revision": 2, "rolledOut": True}
        ]
        assert events(core, namespace, name, "RollingOut"), name
        rotated_at.append(datetime.fromisoformat(statuses[name]["rotatedAt"]).timestamp())

    # The rollout outlasted the overlap, and each previous value waited for it.
    assert complete_at > max(rotated_at) + overlap, (complete_at, rotated_at)
    for name in NAMES:
        assert retired[name] >= complete_at - 1, (name, retired[name], complete_at, rotated_at)

    # The user's manifest shows no drift.
    diff = cluster.kubectl("diff", "-n", namespace, "-f", str(manifest_file), check=False)
    assert diff.returncode == 0, f"kubectl diff: {diff.stdout}{diff.stderr}"


def test_a_rollout_held_for_the_others_is_not_lost_by_a_restart(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    """A rotation of the other credential that cannot happen (its Secret's writes refused)
    keeps it about to roll: the first credential's rollout is held for it, at most the
    window. Killed during the hold, the operator restarts and rolls it all the same: the
    held rollout was in status as not rolled yet, never as done."""
    window = 30
    apply(cluster, namespace, deployment("both", replicas=1, uses=("held", "stuck")))
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/both", "--timeout=120s")
    consumers = [{"kind": "Deployment", "name": "both"}]
    apply(
        cluster,
        namespace,
        *(sacred(name, consumers, rotation={"overlap": "1h"}) for name in ("held", "stuck")),
    )
    for name in ("held", "stuck"):
        wait_for(
            functools.partial(consumers_at, custom, namespace, name, 1), 60, what=f"{name} rev 1"
        )
    operator.stop()
    operator.start(f"--consumer-roll-window={window}s")
    operator.wait_watching()

    policy = f"deny-stuck-{namespace}"[:63]
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["UPDATE"],
        "resources": ["secrets"],
        "resourceNames": ["stuck"],
    }
    cluster.kubectl(
        "apply", "-f", "-", stdin=deny_policy(policy, namespace, rule, "stuck stays as it is")
    )
    try:
        wait_policy_in_force(cluster, namespace, "secret/stuck")
        cluster.kubectl(
            "annotate", "--overwrite", "-n", namespace, "sacred/held", "sacred/stuck",
            "credsmith.io/rotate=1",
        )  # fmt: skip

        def held() -> dict[str, Any] | None:
            status = status_of(custom, namespace, "held")
            entries = status.get("consumers") or [{}]
            waiting = str(entries[0].get("message", "")).startswith("to be rolled by")
            return status if status.get("revision") == 2 and waiting else None

        status = wait_for(held, 60, what="the rollout held")
        assert status["consumers"][0]["revision"] == 1  # not rolled yet, and status says so
        assert template_annotations(apps, namespace, "both") == {}
        operator.kill()
        assert template_annotations(apps, namespace, "both") == {}

        operator.start(f"--consumer-roll-window={window}s")
        operator.wait_watching()
        restarted = time.monotonic()
        wait_for(lambda: consumers_at(custom, namespace, "held", 2), window + 90, what="rolled")
        # Held again for the other one (still about to rotate), but never past the window.
        assert time.monotonic() - restarted >= window / 2
        assert template_annotations(apps, namespace, "both") == {
            "serviceaccountcredential.credsmith.io/held": "2"
        }
        assert len(replica_sets(apps, namespace, "both")) == 2
        assert status_of(custom, namespace, "stuck").get("revision") == 1
    finally:
        delete_deny_policy(cluster, policy)
