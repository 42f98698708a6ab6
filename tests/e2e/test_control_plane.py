"""The local control plane is a real Kubernetes API server: CRDs with validation,
garbage collection by the controller-manager, ServiceAccount tokens and RBAC, and
workloads that roll out on its KWOK nodes."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
from kubernetes import client

from tests.e2e.cluster import GROUP, VERSION, Cluster, manifest, present, wait_for


def test_crd_is_served_and_rejects_an_invalid_object(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    bad = manifest("ServiceAccountCredential", "no-service-account", {"title": "x"})
    with pytest.raises(client.ApiException) as caught:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "serviceaccountcredentials", bad
        )
    assert caught.value.status == 422
    assert "spec.serviceAccount" in present(caught.value.body)

    good = manifest("ServiceAccountCredential", "ok", {"serviceAccount": "svc-a"})
    created = cast(
        dict[str, Any],
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "serviceaccountcredentials", good
        ),
    )
    assert created["metadata"]["uid"]


def test_dependents_of_a_deleted_owner_are_garbage_collected(
    core: client.CoreV1Api, namespace: str
) -> None:
    owner = core.create_namespaced_config_map(
        namespace, cast(client.V1ConfigMap, {"metadata": {"name": "owner"}})
    )
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": present(owner.metadata).uid,
    }
    core.create_namespaced_config_map(
        namespace,
        cast(
            client.V1ConfigMap, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)
    # An object created after its owner is gone is collected too.
    core.create_namespaced_config_map(
        namespace,
        cast(
            client.V1ConfigMap,
            {"metadata": {"name": "late-dependent", "ownerReferences": [reference]}},
        ),
    )

    def collected() -> bool:
        names = {
            present(cm.metadata).name for cm in core.list_namespaced_config_map(namespace).items
        }
        return not names & {"owner", "dependent", "late-dependent"}

    wait_for(collected, timeout=60, what="garbage collection of both dependents")


def test_service_account_token_is_subject_to_rbac(
    cluster: Cluster, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_service_account(
        namespace, cast(client.V1ServiceAccount, {"metadata": {"name": "reader"}})
    )
    rbac = client.RbacAuthorizationV1Api(cluster.api_client())
    rbac.create_namespaced_role(
        namespace,
        cast(
            client.V1Role,
            {
                "metadata": {"name": "configmap-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
            },
        ),
    )
    rbac.create_namespaced_role_binding(
        namespace,
        cast(
            client.V1RoleBinding,
            {
                "metadata": {"name": "reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "configmap-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
            },
        ),
    )
    token = cluster.kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    assert token.count(".") == 2  # a JWT

    as_reader = cluster.env()
    base = ["--kubeconfig=/dev/null", f"--server={_server(cluster)}", f"--token={token}",
            "--insecure-skip-tls-verify", "-n", namespace]  # fmt: skip
    allowed = cluster.kubectl(*base, "get", "configmaps", check=False, env=as_reader)
    assert allowed.returncode == 0, allowed.stderr
    denied = cluster.kubectl(*base, "get", "secrets", check=False, env=as_reader)
    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert 'cannot list resource "secrets"' in denied.stderr

    who = cluster.kubectl(
        *base, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", env=as_reader
    )
    assert who.stdout == f"system:serviceaccount:{namespace}:reader"


def _server(cluster: Cluster) -> str:
    return cluster.kubectl(
        "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
    ).stdout


# Workloads roll out for real: kube-scheduler places pods on the KWOK nodes, where
# they become Running and Ready without containers (so any image name will do).


@pytest.fixture
def kwok_nodes(core: client.CoreV1Api) -> list[str]:
    nodes = core.list_node(label_selector="type=kwok").items
    if not nodes:
        pytest.skip("needs the local control plane's KWOK nodes (label type=kwok)")
    return sorted(cast(str, present(node.metadata).name) for node in nodes)


def _workload(kind: str, name: str, replicas: int | None = 2) -> str:
    """A workload of `kind` on the KWOK nodes, as JSON for `kubectl apply`."""
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "nodeSelector": {"type": "kwok"},
                "containers": [{"name": "app", "image": "registry.invalid/app:1"}],
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return json.dumps(obj)


def _pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"app={app}", "-o", "json")
    pods: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return pods


def _running_and_ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or ()
    )
    return status.get("phase") == "Running" and ready


def _rollout(cluster: Cluster, namespace: str, target: str) -> None:
    cluster.kubectl("rollout", "status", target, "-n", namespace, "--timeout=120s")


def test_deployment_rolls_out_and_restarts_on_kwok_nodes(
    cluster: Cluster, namespace: str, kwok_nodes: list[str]
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=_workload("Deployment", "app"))
    _rollout(cluster, namespace, "deployment/app")
    status = json.loads(
        cluster.kubectl("get", "deployment", "app", "-n", namespace, "-o", "json").stdout
    )["status"]
    assert status["readyReplicas"] == 2
    assert status["availableReplicas"] == 2
    pods = _pods(cluster, namespace, "app")
    assert len(pods) == 2
    assert all(_running_and_ready(pod) for pod in pods)
    assert {pod["spec"]["nodeName"] for pod in pods} <= set(kwok_nodes)
    first = _replica_sets(cluster, namespace)
    assert len(first) == 1

    cluster.kubectl("rollout", "restart", "deployment/app", "-n", namespace)
    _rollout(cluster, namespace, "deployment/app")
    after = _replica_sets(cluster, namespace)
    assert set(after) > set(first)  # a new ReplicaSet took over
    (new,) = set(after) - set(first)
    assert after[new] == 2
    # The old one is scaled down and its pods are gone (kwok deletes them).
    assert after[next(iter(first))] == 0

    def only_new_pods() -> list[dict[str, Any]]:
        pods = _pods(cluster, namespace, "app")
        hashes = {pod["metadata"]["labels"]["pod-template-hash"] for pod in pods}
        return pods if len(pods) == 2 and hashes == {new.removeprefix("app-")} else []

    pods = wait_for(only_new_pods, timeout=30, what="only the new ReplicaSet's pods")
    assert all(_running_and_ready(pod) for pod in pods)


def _replica_sets(cluster: Cluster, namespace: str) -> dict[str, int]:
    """The Deployment's ReplicaSets: name -> ready replicas."""
    out = cluster.kubectl("get", "replicasets", "-n", namespace, "-l", "app=app", "-o", "json")
    return {
        rs["metadata"]["name"]: (rs.get("status") or {}).get("readyReplicas", 0)
        for rs in json.loads(out.stdout)["items"]
    }


def test_statefulset_and_daemonset_become_ready_on_kwok_nodes(
    cluster: Cluster, namespace: str, kwok_nodes: list[str]
) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=_workload("StatefulSet", "db"))
    cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=_workload("DaemonSet", "agent", replicas=None)
    )
    _rollout(cluster, namespace, "statefulset/db")
    _rollout(cluster, namespace, "daemonset/agent")

    db = _pods(cluster, namespace, "db")
    assert sorted(pod["metadata"]["name"] for pod in db) == ["db-0", "db-1"]
    assert all(_running_and_ready(pod) for pod in db)

    agents = _pods(cluster, namespace, "agent")
    assert sorted(pod["spec"]["nodeName"] for pod in agents) == kwok_nodes  # one per node
    assert all(_running_and_ready(pod) for pod in agents)
    status = json.loads(
        cluster.kubectl("get", "daemonset", "agent", "-n", namespace, "-o", "json").stdout
    )["status"]
    assert status["numberReady"] == status["desiredNumberScheduled"] == len(kwok_nodes)
