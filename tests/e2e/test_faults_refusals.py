"""Writes the API server refuses for good: status says so, and recovery needs no restart.

Real refusals, no webhook server: a ValidatingAdmissionPolicy that denies Secret
writes, a ResourceQuota on count/secrets (the local control plane runs the
resourcequota controller), and an immutable Secret.
"""

from __future__ import annotations

import time
from typing import Any, cast

from kubernetes import client

from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Operator,
    deny_policy,
    manifest,
    to_json,
    wait_for,
)

PLURAL = "serviceaccountcredentials"
REASON_WITHIN = 10.0
RECOVERY_WITHIN = 30.0


def conditions(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or ()}


def refused_with(custom: client.CustomObjectsApi, namespace: str, name: str, reason: str) -> bool:
    found = conditions(custom, namespace, name)
    ready, stalled = found.get("Ready") or {}, found.get("Stalled") or {}
    return (
        ready.get("status") == "False"
        and ready.get("reason") == reason
        and stalled.get("status") == "True"
        and "Reconciling" not in found
    )


def ready(custom: client.CustomObjectsApi, namespace: str, name: str, revision: int) -> bool:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    found = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or ()}
    return (
        (found.get("Ready") or {}).get("status") == "True"
        and "Stalled" not in found
        and "Reconciling" not in found
        and obj["status"].get("revision") == revision
    )


def create(custom: client.CustomObjectsApi, namespace: str, name: str) -> None:
    body = manifest("ServiceAccountCredential", name, {"serviceAccount": name})
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)


def rotate(cluster: Cluster, namespace: str, name: str, value: str) -> None:
    cluster.kubectl(
        "annotate", "--overwrite", "-n", namespace, f"sacred/{name}", f"credsmith.io/rotate={value}"
    )


def secret_data(core: client.CoreV1Api, namespace: str, name: str) -> dict[str, str]:
    return dict(cast(dict[str, str], core.read_namespaced_secret(name, namespace).data or {}))


def secret_write_refused(cluster: Cluster, namespace: str) -> bool:
    """A dry-run Secret create goes through admission and quota: is it refused yet?"""
    result = cluster.kubectl(
        "create", "secret", "generic", "probe", "-n", namespace, "--from-literal=a=b",
        "--dry-run=server", check=False,
    )  # fmt: skip
    return result.returncode != 0


def events(core: client.CoreV1Api, namespace: str, name: str, reason: str) -> int:
    found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return sum(1 for e in found.items if e.reason == reason)


def test_admission_denial_is_stalled_then_recovers_without_a_restart(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    create(custom, namespace, "denied")
    wait_for(lambda: ready(custom, namespace, "denied", 1), 60, what="Ready before the policy")
    before = secret_data(core, namespace, "denied")
    policy = f"deny-secrets-{namespace}"[:63]
    cluster.kubectl("apply", "-f", "-", stdin=_deny_policy(policy, namespace))
    try:
        wait_for(lambda: secret_write_refused(cluster, namespace), 30, what="policy in force")
        rotate(cluster, namespace, "denied", "1")
        started = time.monotonic()
        wait_for(
            lambda: refused_with(custom, namespace, "denied", "SecretWriteDenied"),
            REASON_WITHIN, what="SecretWriteDenied",
        )  # fmt: skip
        shown = time.monotonic() - started
        message = conditions(custom, namespace, "denied")["Ready"]["message"]
        assert "denied request" in message
        assert "no Secret writes here" in message
        time.sleep(20)  # several re-checks while refused
        assert secret_data(core, namespace, "denied") == before  # untouched meanwhile
        assert events(core, namespace, "denied", "SecretWriteDenied") == 1  # bounded
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                        policy, "--ignore-not-found")  # fmt: skip
    removed = time.monotonic()
    wait_for(lambda: ready(custom, namespace, "denied", 2), RECOVERY_WITHIN, what="recovery")
    recovered = time.monotonic() - removed
    assert secret_data(core, namespace, "denied") != before  # the rotation went through
    print(f"SecretWriteDenied shown after {shown:.1f}s; Ready {recovered:.1f}s after removal")


def test_an_exhausted_quota_is_stalled_then_recovers_without_a_restart(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-secrets", "namespace": namespace},
        "spec": {"hard": {"count/secrets": "0"}},
    }
    cluster.kubectl("apply", "-f", "-", stdin=to_json(quota))
    wait_for(lambda: secret_write_refused(cluster, namespace), 60, what="quota enforced")
    started = time.monotonic()
    create(custom, namespace, "over-quota")
    wait_for(
        lambda: refused_with(custom, namespace, "over-quota", "QuotaExceeded"),
        REASON_WITHIN, what="QuotaExceeded",
    )  # fmt: skip
    shown = time.monotonic() - started
    assert "exceeded quota" in conditions(custom, namespace, "over-quota")["Ready"]["message"]
    assert core.list_namespaced_secret(namespace).items == []
    cluster.kubectl("delete", "resourcequota", "no-secrets", "-n", namespace)
    removed = time.monotonic()
    wait_for(lambda: ready(custom, namespace, "over-quota", 1), RECOVERY_WITHIN, what="recovery")
    recovered = time.monotonic() - removed
    print(f"QuotaExceeded shown after {shown:.1f}s; Ready {recovered:.1f}s after removal")


def test_an_immutable_secret_is_stalled_and_left_alone(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    create(custom, namespace, "frozen")
    wait_for(lambda: ready(custom, namespace, "frozen", 1), 60, what="Ready")
    core.patch_namespaced_secret("frozen", namespace, {"immutable": True})
    before = secret_data(core, namespace, "frozen")
    started = time.monotonic()
    rotate(cluster, namespace, "frozen", "1")
    wait_for(
        lambda: refused_with(custom, namespace, "frozen", "SecretImmutable"),
        REASON_WITHIN, what="SecretImmutable",
    )  # fmt: skip
    shown = time.monotonic() - started
    time.sleep(5)
    assert secret_data(core, namespace, "frozen") == before
    # The cause goes: someone deletes the frozen Secret; a new one is issued.
    core.delete_namespaced_secret("frozen", namespace)
    removed = time.monotonic()
    wait_for(
        lambda: (c := conditions(custom, namespace, "frozen").get("Ready"))
        and c["status"] == "True"
        and "Stalled" not in conditions(custom, namespace, "frozen"),
        RECOVERY_WITHIN, what="recovery",
    )  # fmt: skip
    recovered = time.monotonic() - removed
    assert not core.read_namespaced_secret("frozen", namespace).immutable
    print(f"SecretImmutable shown after {shown:.1f}s; Ready {recovered:.1f}s after removal")


def _deny_policy(name: str, namespace: str) -> str:
    rule = {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE", "UPDATE"],
        "resources": ["secrets"],
    }
    return deny_policy(name, namespace, rule, "no Secret writes here")
