"""The local control plane is a real Kubernetes API server: CRDs with validation,
garbage collection by the controller-manager, ServiceAccount tokens and RBAC."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.e2e.cluster import GROUP, VERSION, Cluster, manifest, wait_for


def test_crd_is_served_and_rejects_an_invalid_object(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    bad = manifest("ServiceAccountCredential", "no-service-account", {"title": "x"})
    with pytest.raises(client.ApiException) as caught:
        custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "serviceaccountcredentials", bad
        )
    assert caught.value.status == 422
    assert "spec.serviceAccount" in caught.value.body

    good = manifest("ServiceAccountCredential", "ok", {"serviceAccount": "svc-a"})
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, "serviceaccountcredentials", good
    )
    assert created["metadata"]["uid"]


def test_dependents_of_a_deleted_owner_are_garbage_collected(
    core: client.CoreV1Api, namespace: str
) -> None:
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
    )
    core.delete_namespaced_config_map("owner", namespace)
    # An object created after its owner is gone is collected too.
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "late-dependent", "ownerReferences": [reference]}}
    )

    def collected() -> bool:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items}
        return not names & {"owner", "dependent", "late-dependent"}

    wait_for(collected, timeout=60, what="garbage collection of both dependents")


def test_service_account_token_is_subject_to_rbac(
    cluster: Cluster, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac = client.RbacAuthorizationV1Api(cluster.api_client())
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
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
