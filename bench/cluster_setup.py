"""Preparing the bench's control plane: an identity for the operator, and a quiet start.

apiserver_request_total has no client label, and the control plane's own controllers
(garbage collector, namespace controller) read the same resources as the operator. So
the operator runs as a ServiceAccount of its own (bound to cluster-admin), and
FlowSchemas route its requests to the exempt priority level under names of ours:
apiserver_flowcontrol_dispatched_requests_total then counts exactly the operator's
reads and writes. Nothing is throttled: the priority level is the one admin uses.
"""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import yaml
from kubeclient import Api, ApiError, parse_watchers

NAMESPACE = "bench-system"
ACCOUNT = "credsmith-operator"
FLOWS = {
    "bench-operator-writes": ["create", "update", "patch", "delete", "deletecollection"],
    "bench-operator-reads": ["get", "list", "watch"],
    "bench-operator-other": ["*"],
}


async def _create(api: Api, path: str, body: dict[str, Any]) -> Any:
    try:
        return await api.request("POST", path, body)
    except ApiError as exc:
        if exc.status != 409:
            raise
        return None


async def operator_identity(api: Api, state_dir: Path) -> Path:
    """A ServiceAccount for the operator, FlowSchemas that name its requests, and a
    kubeconfig with its token; returns the kubeconfig's path."""
    subject = {
        "kind": "ServiceAccount",
        "serviceAccount": {"name": ACCOUNT, "namespace": NAMESPACE},
    }
    await _create(api, "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
    await _create(
        api, f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts", {"metadata": {"name": ACCOUNT}}
    )
    await _create(
        api,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "metadata": {"name": f"bench-{ACCOUNT}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
        },
    )
    for precedence, (name, verbs) in enumerate(FLOWS.items(), start=50):
        rule: dict[str, Any] = {
            "subjects": [subject],
            "resourceRules": [
                {
                    "verbs": verbs,
                    "apiGroups": ["*"],
                    "resources": ["*"],
                    "namespaces": ["*"],
                    "clusterScope": True,
                }
            ],
        }
        if verbs == ["*"]:
            rule["nonResourceRules"] = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]
        await _create(
            api,
            "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas",
            {
                "metadata": {"name": name},
                "spec": {
                    "matchingPrecedence": precedence,
                    "priorityLevelConfiguration": {"name": "exempt"},
                    "rules": [rule],
                },
            },
        )
    token = await api.request(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{ACCOUNT}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400},
        },
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bench",
                "cluster": {
                    "server": api.credentials.server,
                    "certificate-authority-data": base64.b64encode(
                        api.credentials.ca_pem.encode()
                    ).decode(),
                },
            }
        ],
        "users": [{"name": ACCOUNT, "user": {"token": token["status"]["token"]}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": ACCOUNT}}],
        "current-context": "bench",
    }
    path = state_dir / "operator-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


async def operator_requests(api: Api) -> dict[str, float]:
    """The operator's requests so far: writes, reads (WATCH counted as it starts), other."""
    flows = await api.flows()
    return {name.removeprefix("bench-operator-"): flows.get(name, 0.0) for name in FLOWS}


async def wait_for_garbage_collector(api: Api, timeout: float = 120) -> float:
    """Wait until the garbage collector watches the new kinds (it rediscovers resources
    every 30 s). Before that, each owned Secret makes it GET the owner, 10 per second,
    for minutes: load on the apiserver, and reads that look like the operator's."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        text = await api.metrics_text()
        if all(
            parse_watchers(text, plural) >= 1
            for plural in ("serviceaccountcredentials", "apiclients")
        ):
            return time.monotonic() - started
        await asyncio.sleep(1)
    raise TimeoutError("the garbage collector did not start watching the custom resources")
