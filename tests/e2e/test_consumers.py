"""Consumers follow rotation: real rollouts on the local control plane (kube-scheduler, the
workload controllers and KWOK nodes), the previous value kept while one lags, and the
workloads' manifests free of drift."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from credsmith.reconcile.consumers import CREATION_MARGIN, rotation_spread
from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    annotation_refused,
    delete_deny_policy,
    deny_policy,
    holds_for,
    manifest,
    present,
    wait_for,
    wait_policy_in_force,
)

SACRED = "serviceaccountcredentials"


def deployment(
    name: str, replicas: int = 2, uses: tuple[str, ...] = (), **labels: str
) -> dict[str, Any]:
    """A Deployment whose pods read the Secrets `uses` names (envFrom): only a workload that
    uses a credential's Secret is rolled for it."""
    match = {"app": name}
    container: dict[str, Any] = {"name": "app", "image": "registry.invalid/app:1"}
    if uses:
        container["envFrom"] = [{"secretRef": {"name": secret}} for secret in uses]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {**match, **labels}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": match},
            # New pods before old ones go: a rollout that cannot start new pods stalls.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": match},
                # KWOK runs no containers: any image name will do.
                "spec": {"containers": [container]},
            },
        },
    }


def sacred(name: str, consumers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return manifest(
        "ServiceAccountCredential",
        name,
        {"serviceAccount": name, "consumers": consumers, **spec},
    )


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=body)


def status_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, SACRED, name)
    )
    return dict(obj.get("status") or {})


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or () if c.get("type") == type_]
    return dict(found[0]) if found else {}


def consumers_at(
    custom: client.CustomObjectsApi, namespace: str, name: str, revision: int
) -> list[dict[str, Any]] | None:
    """status.consumers once every entry is rolled out to `revision`."""
    status = status_of(custom, namespace, name)
    entries = status.get("consumers")
    if status.get("revision") != revision or not entries:
        return None
    done = all(e["revision"] == revision and e["rolledOut"] for e in entries)
    return list(entries) if done else None


def rotate(cluster: Cluster, namespace: str, ref: str, value: str) -> None:
    cluster.kubectl("annotate", "--overwrite", "-n", namespace, ref, f"credsmith.io/rotate={value}")


def replica_sets(apps: client.AppsV1Api, namespace: str, app: str) -> list[Any]:
    return list(apps.list_namespaced_replica_set(namespace, label_selector=f"app={app}").items)


def template_annotations(apps: client.AppsV1Api, namespace: str, name: str) -> dict[str, str]:
    found = apps.read_namespaced_deployment(name, namespace)
    return dict(present(found.spec.template.metadata).annotations or {})


def events(core: client.CoreV1Api, namespace: str, name: str, reason: str) -> list[str | None]:
    found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return [e.message for e in found.items if e.reason == reason]


def secret_keys(core: client.CoreV1Api, namespace: str, name: str) -> set[str]:
    return set((core.read_namespaced_secret(name, namespace).data or {}).keys())


def registry_entry(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, Any]:
    data = (core.read_namespaced_secret(name, namespace).data or {})["clients.json"]
    entry: dict[str, Any] = json.loads(base64.b64decode(data))["clients"][0]
    return entry


def test_a_deployment_rolls_once_per_revision_and_shows_no_drift(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    # One applied client-side (kubectl apply), one server-side (as Flux and Argo CD's
    # ServerSideApply do): each is diffed the way it was applied, and the second both ways.
    web, gitops = tmp_path / "web.json", tmp_path / "gitops.json"
    web.write_text(json.dumps(deployment("web", uses=("web-cred", "web-cred-2"))))
    gitops.write_text(json.dumps(deployment("gitops", replicas=1, uses=("web-cred",))))
    cluster.kubectl("apply", "-n", namespace, "-f", str(web))
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(gitops))
    for name in ("web", "gitops"):
        cluster.kubectl(
            "rollout", "status", "-n", namespace, f"deployment/{name}", "--timeout=120s"
        )
    before = {rs.metadata.name for rs in replica_sets(apps, namespace, "web")}
    assert len(before) == 1

    consumers = [{"kind": "Deployment", "name": "web"}, {"kind": "Deployment", "name": "gitops"}]
    apply(cluster, namespace, sacred("web-cred", consumers, rotation={"overlap": "20s"}))
    first = wait_for(lambda: consumers_at(custom, namespace, "web-cred", 1), 60, what="rev 1")
    # Revision 1 has no previous value to move off: recorded, not restarted.
    assert first == [
        {"kind": "Deployment", "name": "gitops", "revision": 1, "rolledOut": True},
        {"kind": "Deployment", "name": "web", "revision": 1, "rolledOut": True},
    ]
    assert template_annotations(apps, namespace, "web") == {}

    rotate(cluster, namespace, "sacred/web-cred", "1")
    second = wait_for(lambda: consumers_at(custom, namespace, "web-cred", 2), 120, what="rev 2")
    assert second == [
        {"kind": "Deployment", "name": "gitops", "revision": 2, "rolledOut": True},
        {"kind": "Deployment", "name": "web", "revision": 2, "rolledOut": True},
    ]
    key = "serviceaccountcredential.credsmith.io/web-cred"
    assert template_annotations(apps, namespace, "web") == {key: "2"}
    after = replica_sets(apps, namespace, "web")
    assert len(after) == 2  # exactly one new ReplicaSet: rolled once
    new = [rs for rs in after if rs.metadata.name not in before]
    assert new[0].status.ready_replicas == 2
    status = status_of(custom, namespace, "web-cred")
    assert condition(status, "ConsumersRolledOut")["status"] == "True"
    assert condition(status, "Ready")["status"] == "True"
    # Our annotation has its own field manager, the credential's.
    managers = {
        m.manager
        for m in present(
            present(apps.read_namespaced_deployment("web", namespace).metadata).managed_fields
        )
    }
    assert "credsmith-serviceaccountcredential-web-cred" in managers

    # The previous value is kept until its expiry (the rollout finished well before it)...
    assert "client_secret_previous" in secret_keys(core, namespace, "web-cred")
    expires = status["previousExpiresAt"]
    wait_for(
        lambda: "client_secret_previous" not in secret_keys(core, namespace, "web-cred"),
        60,
        interval=0.5,
        what="the previous value retired",
    )
    retired = time.time()
    assert retired >= datetime.fromisoformat(expires).timestamp() - 1

    # ...and nothing rolls again: a later pass (a label change on the credential) finds the
    # workload at revision 2 already.
    cluster.kubectl("label", "-n", namespace, "sacred/web-cred", "touched=yes")
    time.sleep(3)
    assert len(replica_sets(apps, namespace, "web")) == 2

    # A second credential consumed by the same workload keeps its own key and field
    # manager: rolling it adds its annotation and leaves the first credential's alone.
    other = sacred(
        "web-cred-2", [{"kind": "Deployment", "name": "web"}], rotation={"overlap": "1h"}
    )
    apply(cluster, namespace, other)
    wait_for(lambda: consumers_at(custom, namespace, "web-cred-2", 1), 60, what="rev 1")
    rotate(cluster, namespace, "sacred/web-cred-2", "1")
    wait_for(lambda: consumers_at(custom, namespace, "web-cred-2", 2), 120, what="2nd, rev 2")
    assert template_annotations(apps, namespace, "web") == {
        key: "2",
        "serviceaccountcredential.credsmith.io/web-cred-2": "2",
    }
    managers = {
        m.manager
        for m in present(
            present(apps.read_namespaced_deployment("web", namespace).metadata).managed_fields
        )
    }
    assert {
        "credsmith-serviceaccountcredential-web-cred",
        "credsmith-serviceaccountcredential-web-cred-2",
    } <= managers
    assert len(replica_sets(apps, namespace, "web")) == 3  # one more rollout, not two
    assert consumers_at(custom, namespace, "web-cred", 2) is not None

    # The users' manifests show no drift, client-side and server-side. (A manifest applied
    # client-side and then diffed server-side shows kubectl's own switch of apply mode,
    # its last-applied annotation, whoever else wrote to the object: not compared here.)
    diffs = [(web, []), (gitops, []), (gitops, ["--server-side"])]
    for path, mode in diffs:
        result = cluster.kubectl("diff", "-n", namespace, *mode, "-f", str(path), check=False)
        assert result.returncode == 0, f"kubectl diff {mode}: {result.stdout}{result.stderr}"
        assert result.stdout == ""


def test_a_selector_rolls_exactly_the_workloads_it_matches(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    apply(
        cluster,
        namespace,
        deployment("one", replicas=1, uses=("shared",), tier="api"),
        deployment("two", replicas=1, uses=("shared",), tier="api"),
        deployment("three", replicas=1, uses=("shared",), tier="web"),
    )
    selector = {"matchLabels": {"tier": "api"}}
    body = sacred(
        "shared", [{"kind": "Deployment", "selector": selector}], rotation={"overlap": "1h"}
    )
    apply(cluster, namespace, body)
    wait_for(lambda: consumers_at(custom, namespace, "shared", 1), 60, what="rev 1")
    generation = present(apps.read_namespaced_deployment("three", namespace).metadata).generation

    rotate(cluster, namespace, "sacred/shared", "1")
    rolled = wait_for(lambda: consumers_at(custom, namespace, "shared", 2), 120, what="rev 2")
    assert [(e["kind"], e["name"]) for e in rolled] == [
        ("Deployment", "one"),
        ("Deployment", "two"),
    ]
    key = "serviceaccountcredential.credsmith.io/shared"
    for name in ("one", "two"):
        found = template_annotations(apps, namespace, name)
        # (Read again after a moment if it differs, to tell a late read from a wrong one.)
        again = found
        if found != {key: "2"}:
            time.sleep(5)
            again = template_annotations(apps, namespace, name)
        assert (found, again) == ({key: "2"}, {key: "2"}), (
            name,
            rolled,
            status_of(custom, namespace, "shared"),
        )
        sets = replica_sets(apps, namespace, name)
        assert len(sets) == 2, [(rs.metadata.name, rs.metadata.annotations) for rs in sets]
    assert template_annotations(apps, namespace, "three") == {}
    assert (
        present(apps.read_namespaced_deployment("three", namespace).metadata).generation
        == generation
    )

    # A Deployment created later that matches is recorded without a restart. (Later than
    # the margin within which one is taken to have started before the rotation.)
    rotated_at = datetime.fromisoformat(status_of(custom, namespace, "shared")["rotatedAt"])
    time.sleep(
        max(0.0, (rotated_at + CREATION_MARGIN + timedelta(seconds=1)).timestamp() - time.time())
    )
    apply(cluster, namespace, deployment("four", replicas=1, uses=("shared",), tier="api"))
    cluster.kubectl("label", "-n", namespace, "sacred/shared", "touched=yes")
    wait_for(
        lambda: len(consumers_at(custom, namespace, "shared", 2) or ()) == 3,
        60,
        what="the new Deployment recorded",
    )
    assert template_annotations(apps, namespace, "four") == {}


def test_statefulsets_and_daemonsets_roll_too(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    pod = {
        "metadata": {"labels": {"app": "db"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.invalid/db:1",
                    "env": [
                        {
                            "name": "CLIENT_SECRET",
                            "valueFrom": {
                                "secretKeyRef": {"name": "db-cred", "key": "client_secret"}
                            },
                        }
                    ],
                }
            ]
        },
    }
    stateful = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": pod,
        },
    }
    agent_pod = {**pod, "metadata": {"labels": {"app": "agent"}}}
    daemon = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": agent_pod},
    }
    apply(cluster, namespace, stateful, daemon)
    for ref in ("statefulset/db", "daemonset/agent"):
        cluster.kubectl("rollout", "status", "-n", namespace, ref, "--timeout=120s")
    consumers = [{"kind": "StatefulSet", "name": "db"}, {"kind": "DaemonSet", "name": "agent"}]
    apply(cluster, namespace, sacred("db-cred", consumers, rotation={"overlap": "1h"}))
    wait_for(lambda: consumers_at(custom, namespace, "db-cred", 1), 60, what="rev 1")
    revisions: dict[str, Any] = {
        "db": present(apps.read_namespaced_stateful_set("db", namespace).status).update_revision,
        "agent": len(
            apps.list_namespaced_controller_revision(namespace, label_selector="app=agent").items
        ),
    }

    rotate(cluster, namespace, "sacred/db-cred", "1")
    rolled = wait_for(lambda: consumers_at(custom, namespace, "db-cred", 2), 180, what="rev 2")
    assert {(e["kind"], e["name"]) for e in rolled} == {
        ("StatefulSet", "db"),
        ("DaemonSet", "agent"),
    }
    db = present(apps.read_namespaced_stateful_set("db", namespace).status)
    assert db.update_revision != revisions["db"]
    assert db.current_revision == db.update_revision
    assert db.ready_replicas == 2
    agent = apps.read_namespaced_daemon_set("agent", namespace)
    key = "serviceaccountcredential.credsmith.io/db-cred"
    assert present(agent.spec.template.metadata).annotations == {key: "2"}
    agent_status = present(agent.status)
    assert agent_status.updated_number_scheduled == agent_status.desired_number_scheduled >= 1
    assert (
        len(apps.list_namespaced_controller_revision(namespace, label_selector="app=agent").items)
        > revisions["agent"]
    )


@pytest.mark.serial  # cordons every node: no other test's pod could be scheduled
def test_a_stuck_rollout_keeps_the_previous_value_until_twice_the_overlap(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, deployment("stuck", replicas=1, uses=("stuck-client",)))
    cluster.kubectl("rollout", "status", "-n", namespace, "deployment/stuck", "--timeout=120s")
    overlap = 15
    body = manifest(
        "ApiClient",
        "stuck-client",
        {
            "displayName": "Stuck",
            "registry": {"name": "stuck-registry"},
            "rotation": {"overlap": f"{overlap}s"},
            "consumers": [{"kind": "Deployment", "name": "stuck"}],
        },
    )
    apply(cluster, namespace, body)

    def client_status() -> dict[str, Any]:
        obj = cast(
            dict[str, Any],
            custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "apiclients", "stuck-client"
            ),
        )
        return dict(obj.get("status") or {})

    wait_for(lambda: client_status().get("revision") == 1, 60, what="rev 1")

    # New pods cannot be scheduled (every node cordoned); maxUnavailable 0 keeps the old one.
    nodes = [present(present(n.metadata).name) for n in core.list_node().items]
    for node in nodes:
        cluster.kubectl("cordon", node)
    try:
        rotate(cluster, namespace, "apiclient/stuck-client", "1")
        rotated = wait_for(
            lambda: (s := client_status()).get("revision") == 2 and s, 60, what="rev 2"
        )
        rotated_at = datetime.fromisoformat(rotated["rotatedAt"]).timestamp()
        wait_for(
            lambda: (
                condition(client_status(), "ConsumersRolledOut").get("reason") == "ConsumersLagging"
            ),
            overlap + 30,
            what="ConsumersLagging",
        )
        lagging = client_status()
        assert time.time() >= rotated_at + overlap - 1
        assert condition(lagging, "Ready")["status"] == "True"
        assert "Deployment/stuck" in condition(lagging, "ConsumersRolledOut")["message"]
        held = datetime.fromisoformat(lagging["previousExpiresAt"]).timestamp()
        assert held == rotated_at + 2 * overlap
        assert "client_secret_previous" in secret_keys(core, namespace, "stuck-client")
        # The Event follows the status write that showed the condition.
        warnings = wait_for(
            lambda: events(core, namespace, "stuck-client", "ConsumersLagging"),
            10,
            what="the ConsumersLagging Event",
        )
        assert len(warnings) == 1
        assert "Deployment/stuck" in present(warnings[0])
        # The registry keeps the previous hash as long as the Secret keeps the value.
        entry = registry_entry(core, namespace, "stuck-registry")
        assert datetime.fromisoformat(entry["previousSecret"]["expiresAt"]).timestamp() == held

        wait_for(
            lambda: "client_secret_previous" not in secret_keys(core, namespace, "stuck-client"),
            2 * overlap + 30,
            interval=0.5,
            what="retired at twice the overlap",
        )
        assert time.time() >= rotated_at + 2 * overlap - 1
        # The operator writes the Secret, then the status, then the Event: wait for each.
        wait_for(
            lambda: (
                condition(client_status(), "ConsumersRolledOut").get("reason")
                == "PreviousRetiredWhileLagging"
            ),
            30,
            what="PreviousRetiredWhileLagging in status",
        )
        wait_for(
            lambda: events(core, namespace, "stuck-client", "PreviousRetiredWhileLagging"),
            30,
            what="the PreviousRetiredWhileLagging Event",
        )
        wait_for(
            lambda: "previousSecret" not in registry_entry(core, namespace, "stuck-registry"),
            30,
            what="the registry without the previous hash",
        )
        assert template_annotations(apps, namespace, "stuck") == {
            "apiclient.credsmith.io/stuck-client": "2"
        }
    finally:
        for node in nodes:
            cluster.kubectl("uncordon", node)
    assert exposure.leaks(json.dumps(client_status())) == []


def test_a_refused_rollout_shows_in_status_holds_the_previous_value_and_recovers(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, deployment("guarded", replicas=1, uses=("guarded-cred",)))
    overlap = 30
    body = sacred(
        "guarded-cred",
        [{"kind": "Deployment", "name": "guarded"}],
        rotation={"overlap": f"{overlap}s"},
    )
    apply(cluster, namespace, body)
    wait_for(lambda: consumers_at(custom, namespace, "guarded-cred", 1), 60, what="rev 1")
    policy = f"deny-rollouts-{namespace}"[:63]
    cluster.kubectl("apply", "-f", "-", stdin=_deny_deployment_updates(policy, namespace))
    try:
        wait_policy_in_force(cluster, namespace, "deployment/guarded")
        rotate(cluster, namespace, "sacred/guarded-cred", "1")

        def refused() -> bool:
            found = condition(status_of(custom, namespace, "guarded-cred"), "ConsumersRolledOut")
            return found.get("reason") == "ConsumersForbidden"

        wait_for(refused, 60, what="ConsumersForbidden")
        status = status_of(custom, namespace, "guarded-cred")
        assert condition(status, "Ready")["status"] == "True"
        assert status["revision"] == 2
        assert "no rollouts here" in condition(status, "ConsumersRolledOut")["message"]
        assert template_annotations(apps, namespace, "guarded") == {}

        # Not rolled, so it may still run the previous value: held past the overlap.
        rotated_at = datetime.fromisoformat(status["rotatedAt"])
        latest = rotated_at + timedelta(seconds=2 * overlap)
        held = wait_for(
            lambda: (
                (s := status_of(custom, namespace, "guarded-cred")).get("previousExpiresAt")
                == latest.strftime("%Y-%m-%dT%H:%M:%SZ")
                and s
            ),
            overlap + 30,
            what="the previous value held",
        )
        assert time.time() >= (rotated_at + timedelta(seconds=overlap)).timestamp() - 1
        assert condition(held, "ConsumersRolledOut")["reason"] == "ConsumersForbidden"
        assert "client_secret_previous" in secret_keys(core, namespace, "guarded-cred")
        # Events are posted after the status write that shows the hold.
        warnings = wait_for(
            lambda: events(core, namespace, "guarded-cred", "ConsumersLagging"),
            30,
            what="the ConsumersLagging Warning",
        )
        assert len(warnings) == 1
        assert "Deployment/guarded (not rolled)" in warnings[0]
    finally:
        delete_deny_policy(cluster, policy)
    # No restart: the next look (while the previous value is held) rolls it, and once it has
    # rolled out the previous value retires.
    wait_for(lambda: consumers_at(custom, namespace, "guarded-cred", 2), 90, what="recovered")
    assert template_annotations(apps, namespace, "guarded") == {
        "serviceaccountcredential.credsmith.io/guarded-cred": "2"
    }
    wait_for(
        lambda: "client_secret_previous" not in secret_keys(core, namespace, "guarded-cred"),
        2 * overlap,
        what="the previous value retired",
    )
    # A pass posts its Events after its writes: make sure none follows the retirement.
    holds_for(
        lambda: events(core, namespace, "guarded-cred", "PreviousRetiredWhileLagging") == [],
        what="no PreviousRetiredWhileLagging Event",
    )


def _deny_deployment_updates(name: str, namespace: str) -> str:
    rule = {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": ["UPDATE"],
        "resources": ["deployments"],
    }
    return deny_policy(name, namespace, rule, "no rollouts here", reason="Forbidden")


# It counts the API server's deployment requests from every client, and each rollout
# must come within seconds of its time: run alone, on a CPU not busy with other tests.
@pytest.mark.serial
@pytest.mark.timing
def test_two_hundred_rotations_are_spread_and_idle_between(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    """200 credentials created by one apply, rotated by the scheduler (period 2m): each
    rotates rotation_spread(uid) after its period (0..12 s here), so their consumers roll
    spread over that window; once all have rolled out, the operator reads no workload."""
    count, period = 200, 120
    names = [f"c-{i:03d}" for i in range(count)]
    # replicas 0: a real rollout (a new ReplicaSet) that completes at once.
    apply(cluster, namespace, *(deployment(name, replicas=0, uses=(name,)) for name in names))
    credentials = [
        sacred(
            name,
            [{"kind": "Deployment", "name": name}],
            rotation={"period": f"{period}s", "overlap": "1m"},
        )
        for name in names
    ]
    apply(cluster, namespace, *credentials)

    def listed() -> list[dict[str, Any]]:
        found = cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, SACRED)
        )
        return list(found["items"])

    def all_at(revision: int) -> list[dict[str, Any]] | None:
        items = listed()
        done = [
            i
            for i in items
            if (s := i.get("status") or {}).get("revision") == revision
            and [c["rolledOut"] and c["revision"] == revision for c in s.get("consumers") or ()]
            == [True]
        ]
        return items if len(done) == count else None

    first = {i["metadata"]["name"]: i for i in wait_for(lambda: all_at(1), 180, 1, "rev 1")}
    second = wait_for(lambda: all_at(2), period + 120, 1, "rev 2, all rolled out")
    settled = time.monotonic()

    offsets, expected = [], []
    for item in second:
        name = item["metadata"]["name"]
        base = datetime.fromisoformat(first[name]["status"]["rotatedAt"]).timestamp() + period
        rolled = _rolled_at(apps, namespace, name, f"credsmith-serviceaccountcredential-{name}")
        offsets.append(rolled - base)
        expected.append(rotation_spread(item["metadata"]["uid"], timedelta(seconds=period)))
    # Each rolled when the documented rule says (second-precision timestamps, a poll's delay).
    misses = [
        (round(o, 1), round(e.total_seconds(), 1))
        for o, e in zip(offsets, expected, strict=True)
        if not -1.5 <= o - e.total_seconds() <= 3.5
    ]
    assert len(misses) <= count // 20, misses
    # Spread over the window, not bunched: a quarter of them 6 s or more after the period.
    assert max(offsets) - min(offsets) >= 8
    assert sum(1 for o in offsets if o >= 6) >= count // 4
    per_second: dict[int, int] = {}
    for item in second:
        second_of = int(datetime.fromisoformat(item["status"]["rotatedAt"]).timestamp())
        per_second[second_of] = per_second.get(second_of, 0) + 1
    assert max(per_second.values()) <= count // 5, per_second
    print(f"rotations per second: {sorted(per_second.values(), reverse=True)[:5]} (largest)")

    # Idle between: no workload reads and no writes once every rollout has finished (the
    # previous values expire a minute after their rotation; look before that).
    time.sleep(max(0.0, 3 - (time.monotonic() - settled)))
    before = _workload_requests(cluster)
    time.sleep(20)
    after = _workload_requests(cluster)
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {}


def _rolled_at(apps: client.AppsV1Api, namespace: str, name: str, manager: str) -> float:
    found = apps.read_namespaced_deployment(name, namespace)
    times = [m.time for m in present(found.metadata).managed_fields or () if m.manager == manager]
    assert times, f"{name}: no field manager {manager}"
    return float(present(times[0]).timestamp())


def _workload_requests(cluster: Cluster) -> dict[tuple[str, str], float]:
    """apiserver_request_total for deployments, by verb: the operator is the only client
    here that GETs or LISTs them (controllers watch), or patches them."""
    counts: dict[tuple[str, str], float] = {}
    for line in cluster.kubectl("get", "--raw", "/metrics").stdout.splitlines():
        if not line.startswith("apiserver_request_total{") or 'resource="deployments"' not in line:
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.index("}")].split(",")
        )
        verb = labels.get("verb", "").strip('"')
        if verb in ("GET", "LIST", "APPLY", "PATCH") and not labels.get("subresource"):
            key = (verb, labels.get("scope", "").strip('"'))
            counts[key] = counts.get(key, 0) + float(line.rsplit(" ", 1)[1])
    return counts


# ---- each consumer on its own, and only with consent (issue 21) -----------------------


def test_a_refused_and_a_missing_consumer_stop_neither_the_healthy_one_nor_the_credential(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    """Three consumers: `a-guarded` (first by name) whose patch an admission policy denies,
    `b-missing` that does not exist, `c-healthy`. The healthy one is rolled; each problem is
    its own entry's message; the credential rotates, and its previous value (held for the
    refused one, which may still run it) retires at twice the overlap."""
    cred = "independent"
    apply(
        cluster,
        namespace,
        deployment("a-guarded", replicas=1, uses=(cred,)),
        deployment("c-healthy", replicas=1, uses=(cred,)),
    )
    overlap = 20
    consumers = [
        {"kind": "Deployment", "name": "a-guarded"},
        {"kind": "Deployment", "name": "b-missing"},
        {"kind": "Deployment", "name": "c-healthy"},
    ]
    apply(cluster, namespace, sacred(cred, consumers, rotation={"overlap": f"{overlap}s"}))
    wait_for(lambda: status_of(custom, namespace, cred).get("revision") == 1, 60, what="rev 1")
    policy = f"deny-guarded-{namespace}"[:63]
    rule = {
        "apiGroups": ["apps"],
        "apiVersions": ["v1"],
        "operations": ["UPDATE"],
        "resources": ["deployments"],
        "resourceNames": ["a-guarded"],
    }
    denial = deny_policy(policy, namespace, rule, "a-guarded stays as it is", reason="Forbidden")
    cluster.kubectl("apply", "-f", "-", stdin=denial)
    try:
        wait_policy_in_force(cluster, namespace, "deployment/a-guarded")
        assert not annotation_refused(cluster, namespace, "deployment/c-healthy")
        rotate(cluster, namespace, f"sacred/{cred}", "1")

        def healthy_rolled() -> dict[str, Any] | None:
            status = status_of(custom, namespace, cred)
            entries = {e["name"]: e for e in status.get("consumers") or ()}
            healthy = entries.get("c-healthy") or {}
            done = healthy.get("revision") == 2 and healthy.get("rolledOut")
            return status if done and "a-guarded" in entries else None

        status = wait_for(healthy_rolled, 120, what="the healthy consumer rolled out")
        assert template_annotations(apps, namespace, "c-healthy") == {
            f"serviceaccountcredential.credsmith.io/{cred}": "2"
        }
        assert template_annotations(apps, namespace, "a-guarded") == {}
        entries = {e["name"]: e for e in status["consumers"]}
        assert entries["a-guarded"]["rolledOut"] is False
        assert "a-guarded stays as it is" in entries["a-guarded"]["message"]
        assert entries["b-missing"]["message"] == "not found"
        assert "message" not in entries["c-healthy"]
        assert condition(status, "Ready")["status"] == "True"
        rolled = condition(status, "ConsumersRolledOut")
        assert (rolled["status"], rolled["reason"]) == ("False", "ConsumersForbidden")
        assert "Deployment/a-guarded" in rolled["message"]

        # The previous value is held for the refused one, then retired at twice the overlap.
        rotated_at = datetime.fromisoformat(status["rotatedAt"]).timestamp()
        wait_for(
            lambda: "client_secret_previous" not in secret_keys(core, namespace, cred),
            2 * overlap + 40,
            interval=0.5,
            what="the previous value retired",
        )
        assert time.time() >= rotated_at + 2 * overlap - 1
        # The Warning is posted after the write that retires the value: wait for it.
        wait_for(
            lambda: events(core, namespace, cred, "PreviousRetiredWhileLagging"),
            30,
            what="a PreviousRetiredWhileLagging Event",
        )
        # Rolled once: one new ReplicaSet for the healthy one, none for the refused one.
        assert len(replica_sets(apps, namespace, "c-healthy")) == 2
        assert len(replica_sets(apps, namespace, "a-guarded")) == 1
    finally:
        delete_deny_policy(cluster, policy)
    # Once the policy goes, the refused one is rolled (no restart), the healthy one not again.
    wait_for(
        lambda: (
            template_annotations(apps, namespace, "a-guarded")
            == {f"serviceaccountcredential.credsmith.io/{cred}": "2"}
        ),
        90,
        what="the refused consumer rolled once allowed",
    )
    assert len(replica_sets(apps, namespace, "c-healthy")) == 2


def test_a_workload_that_does_not_use_the_secret_is_not_restarted(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    operator: Operator,
    namespace: str,
) -> None:
    """`{key: x, operator: DoesNotExist}` matches every Deployment here: only the one whose
    pods use the Secret is rolled; the other is listed as not using it and left alone."""
    cred = "consenting"
    apply(
        cluster,
        namespace,
        deployment("user", replicas=1, uses=(cred,)),
        deployment("bystander", replicas=1),
    )
    selector = {"matchExpressions": [{"key": "x", "operator": "DoesNotExist"}]}
    body = sacred(cred, [{"kind": "Deployment", "selector": selector}], rotation={"overlap": "1h"})
    apply(cluster, namespace, body)
    wait_for(lambda: status_of(custom, namespace, cred).get("revision") == 1, 60, what="rev 1")
    generation = present(
        apps.read_namespaced_deployment("bystander", namespace).metadata
    ).generation

    rotate(cluster, namespace, f"sacred/{cred}", "1")

    def user_rolled_out() -> dict[str, Any] | None:
        status = status_of(custom, namespace, cred)
        rolled = condition(status, "ConsumersRolledOut")
        ok = status.get("revision") == 2 and rolled.get("reason") == "RolledOut"
        return status if ok else None

    status = wait_for(user_rolled_out, 120, what="the consenting workload rolled out")
    entries = {e["name"]: e for e in status["consumers"]}
    assert entries["user"] == {
        "kind": "Deployment",
        "name": "user",
        "revision": 2,
        "rolledOut": True,
    }
    assert entries["bystander"]["rolledOut"] is False
    assert entries["bystander"]["message"].startswith(f"does not use Secret {cred}")
    assert "Deployment/bystander" in condition(status, "ConsumersRolledOut")["message"]
    time.sleep(3)  # a late patch would show by now
    assert template_annotations(apps, namespace, "bystander") == {}
    assert (
        present(apps.read_namespaced_deployment("bystander", namespace).metadata).generation
        == generation
    )
    assert len(replica_sets(apps, namespace, "bystander")) == 1
    assert template_annotations(apps, namespace, "user") == {
        f"serviceaccountcredential.credsmith.io/{cred}": "2"
    }


def test_a_selector_key_the_api_server_would_reject_is_refused_at_apply(
    cluster: Cluster, namespace: str
) -> None:
    """A label key whose prefix passes 253 characters: the API server answers a list with
    it by 400, so the CRD refuses it at `kubectl apply`, with a message naming the field."""
    long_key = "a" * 300 + "/x"
    for selector, field in (
        ({"matchExpressions": [{"key": long_key, "operator": "DoesNotExist"}]}, "matchExpressions"),
        ({"matchLabels": {long_key: "v"}}, "matchLabels"),
    ):
        body = sacred("bad-selector", [{"kind": "Deployment", "selector": selector}])
        result = cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False
        )
        assert result.returncode != 0, f"{field}: accepted"
        assert field in result.stderr
        assert "prefix (before '/')" in result.stderr
    listed = cluster.kubectl("get", "sacred", "-n", namespace, "-o", "name").stdout
    assert listed.strip() == ""


def test_rotations_of_credentials_created_together_are_spread(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    """Eight credentials without consumers created by one apply, period 2m: each one's
    nextRotationAt is its rotatedAt, the period and its own spread by UID (0..12 s)."""
    period = 120
    names = [f"spread-{i}" for i in range(8)]
    apply(
        cluster,
        namespace,
        *(
            manifest(
                "ServiceAccountCredential",
                name,
                {"serviceAccount": name, "rotation": {"period": f"{period}s"}},
            )
            for name in names
        ),
    )

    def issued() -> list[dict[str, Any]] | None:
        found = cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, SACRED)
        )
        items = found["items"]
        done = [i for i in items if (i.get("status") or {}).get("revision") == 1]
        return done if len(done) == len(names) else None

    offsets = []
    for item in wait_for(issued, 60, what="all issued"):
        status = item["status"]
        rotated = datetime.fromisoformat(status["rotatedAt"]).timestamp()
        due = datetime.fromisoformat(status["nextRotationAt"]).timestamp()
        spread = rotation_spread(item["metadata"]["uid"], timedelta(seconds=period))
        # Whole seconds in status: within a second of the exact time.
        assert -1 <= due - (rotated + period + spread.total_seconds()) <= 1, (status, spread)
        assert 0 <= due - rotated - period <= period / 10 + 1
        offsets.append(due - rotated - period)
    assert max(offsets) - min(offsets) >= 2, offsets  # different per UID
