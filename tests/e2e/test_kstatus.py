"""kstatus, computed by the real library (sigs.k8s.io/cli-utils, tests/kstatus) over
live objects: what Flux, kpt and cli-utils' own tools conclude about our resources.

- Ready -> Current;
- a new generation not yet reconciled (the operator stopped while the spec changed)
  -> InProgress, then Current once the operator has caught up;
- Stalled (a Secret conflict, an invalid template) -> Failed, and Current again once
  the cause is gone;
- a credential naming an identity provider that does not exist -> Failed;
- an identity provider's status (reconcile/provider_status.py): Ready -> Current, a failure
  retried -> InProgress, one that needs a person -> Failed.
"""

from __future__ import annotations

import functools
import json
import subprocess
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kubernetes import client

from credsmith.api.identity_provider import IdentityProviderSpec
from credsmith.api.status import Reason
from credsmith.reconcile.provider_status import provider_status
from tests.e2e.cluster import Cluster, Operator, manifest, wait_for

FAILED_REASONS = ("SecretConflict", "InvalidTemplate")


def kstatus(cluster: Cluster, namespace: str, resource: str) -> dict[str, Any]:
    """The library's verdict on one live object, as `kubectl get -o json` returns it."""
    obj = cluster.kubectl("get", resource, "-n", namespace, "-o", "json").stdout
    result = subprocess.run(
        [str(cluster.bin_dir / "kstatus")],
        input=obj,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1
    verdict: dict[str, Any] = lines[0]
    return verdict


def status_is(cluster: Cluster, namespace: str, resource: str, expected: str) -> bool:
    matches: bool = kstatus(cluster, namespace, resource)["status"] == expected
    return matches


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def wait_ready(cluster: Cluster, namespace: str, resource: str) -> None:
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=60s", "-n", namespace, resource)


def test_the_library_reads_a_config_map_as_current(cluster: Cluster, namespace: str) -> None:
    """The program itself: a kind the library knows, to rule out a broken harness."""
    cluster.kubectl("create", "configmap", "plain", "-n", namespace)
    assert kstatus(cluster, namespace, "configmap/plain")["status"] == "Current"


def test_ready_reads_current(cluster: Cluster, operator: Operator, namespace: str) -> None:
    apply(
        cluster, namespace, manifest("ServiceAccountCredential", "ready", {"serviceAccount": "a"})
    )
    apply(cluster, namespace, manifest("ApiClient", "ready-client", {"displayName": "Ready"}))
    for resource in ("sacred/ready", "apiclient/ready-client"):
        wait_ready(cluster, namespace, resource)
        verdict = kstatus(cluster, namespace, resource)
        assert verdict["status"] == "Current", verdict


def test_an_unreconciled_generation_reads_in_progress(
    cluster: Cluster, custom: client.CustomObjectsApi, operator: Operator, namespace: str
) -> None:
    body = manifest("ServiceAccountCredential", "changing", {"serviceAccount": "a"})
    apply(cluster, namespace, body)
    wait_ready(cluster, namespace, "sacred/changing")
    assert status_is(cluster, namespace, "sacred/changing", "Current")

    operator.stop()  # so that nothing reconciles the new generation yet
    body["spec"]["secret"] = {"length": 64}  # a generation parameter: this rotates
    apply(cluster, namespace, body)
    obj = cluster.kubectl("get", "sacred/changing", "-n", namespace, "-o", "json").stdout
    live = json.loads(obj)
    assert live["metadata"]["generation"] == 2
    assert live["status"]["observedGeneration"] == 1
    verdict = kstatus(cluster, namespace, "sacred/changing")
    assert verdict["status"] == "InProgress", verdict

    operator.start()
    wait_for(
        lambda: status_is(cluster, namespace, "sacred/changing", "Current"),
        timeout=60,
        what="Current after the operator caught up",
    )
    status = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(
            "credsmith.io", "v1alpha1", namespace, "serviceaccountcredentials", "changing"
        ),
    )["status"]
    assert status["observedGeneration"] == 2
    assert status["revision"] == 2  # the new length rotated it


def test_stalled_reads_failed_until_the_cause_goes(
    cluster: Cluster, core: client.CoreV1Api, operator: Operator, namespace: str
) -> None:
    core.create_namespaced_secret(
        namespace, cast(client.V1Secret, {"metadata": {"name": "taken"}, "stringData": {"k": "v"}})
    )
    spec: dict[str, Any] = {"serviceAccount": "a", "secretName": "taken"}
    apply(cluster, namespace, manifest("ServiceAccountCredential", "clash", spec))
    template = {"data": {"url": "{{ clientId "}}  # does not parse
    spec = {"serviceAccount": "a", "secretTemplate": template}
    apply(cluster, namespace, manifest("ServiceAccountCredential", "broken", spec))
    for resource, reason in zip(("sacred/clash", "sacred/broken"), FAILED_REASONS, strict=True):
        wait_for(
            functools.partial(status_is, cluster, namespace, resource, "Failed"),
            timeout=60,
            what=f"{resource} Failed",
        )
        verdict = kstatus(cluster, namespace, resource)
        assert verdict["status"] == "Failed", verdict
        assert verdict["reason"] == reason, verdict

    # Not terminal: the conflict resolves by itself once the foreign Secret goes.
    core.delete_namespaced_secret("taken", namespace)
    wait_for(
        lambda: status_is(cluster, namespace, "sacred/clash", "Current"),
        timeout=60,
        what="Current once the conflict is gone",
    )


def test_a_credential_naming_a_missing_provider_reads_failed(
    cluster: Cluster, operator: Operator, namespace: str
) -> None:
    spec = {"serviceAccount": "a", "identityProvider": {"name": "nowhere"}}
    apply(cluster, namespace, manifest("ServiceAccountCredential", "orphan", spec))
    wait_for(
        lambda: status_is(cluster, namespace, "sacred/orphan", "Failed"),
        timeout=60,
        what="sacred/orphan Failed",
    )
    assert kstatus(cluster, namespace, "sacred/orphan")["reason"] == "ProviderNotFound"


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (Reason.PROVIDER_READY, "Current"),
        (Reason.PROVIDER_UNREACHABLE, "InProgress"),
        (Reason.URL_NOT_ALLOWED, "Failed"),
    ],
)
def test_provider_status_reads_as_kstatus_means_it(
    cluster: Cluster, namespace: str, reason: Reason, expected: str
) -> None:
    spec = {"hydra": {"adminURL": "http://hydra-admin.auth:4445"}}
    apply(cluster, namespace, manifest("IdentityProvider", "hydra", spec))
    generation = int(
        cluster.kubectl(
            "get", "idp", "hydra", "-n", namespace, "-o", "jsonpath={.metadata.generation}"
        ).stdout
    )
    status = provider_status(
        IdentityProviderSpec.model_validate(spec),
        generation,
        {},
        datetime.now(UTC),
        reason=reason,
        message="http://hydra-admin.auth:4445: what the provider controller saw",
        clients=0,
    )
    cluster.kubectl(
        "patch", "idp", "hydra", "-n", namespace, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}),
    )  # fmt: skip
    verdict = kstatus(cluster, namespace, "idp/hydra")
    assert verdict["status"] == expected, verdict
