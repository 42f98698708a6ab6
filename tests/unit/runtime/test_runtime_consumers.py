"""runtime/consumers.py: which requests observe and roll make, and how refusals are read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from credsmith.api.enums import WorkloadKind
from credsmith.reconcile.consumers import Rollout
from credsmith.reconcile.rollouts import Workload
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.consumers import Consumers
from credsmith.runtime.session import APPLY_PATCH, ApiError

NS = "team"


def resource(consumers: Any) -> ResourceSnapshot:
    return ResourceSnapshot(
        api_version="credsmith.io/v1alpha1",
        kind="ServiceAccountCredential",
        namespace=NS,
        name="billing",
        uid="u-1",
        generation=1,
        labels={},
        annotations={},
        spec={"serviceAccount": "billing", "consumers": consumers},
        status={},
    )


def deployment(name: str, annotation: str | None = None) -> dict[str, Any]:
    annotations = (
        {"serviceaccountcredential.credsmith.io/billing": annotation} if annotation else {}
    )
    return {
        "metadata": {"name": name, "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"replicas": 1, "template": {"metadata": {"annotations": annotations}}},
        "status": {
            "observedGeneration": 2,
            "replicas": 1,
            "updatedReplicas": 1,
            "availableReplicas": 1,
        },
    }


class FakeSession:
    def __init__(self, answers: Mapping[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str, Any, Any, str]] = []

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        self.calls.append((method, path, body, params, content_type))
        answer = self.answers.get((method, path))
        if isinstance(answer, ApiError):
            raise answer
        if answer is None:
            raise ApiError(404, "NotFound", f"{path} not found")
        return dict(answer)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


def test_named_and_selected_consumers_are_read_and_missing_ones_reported() -> None:
    session = FakeSession(
        {
            ("GET", f"{DEPLOYMENTS}/web"): deployment("web", "2"),
            ("GET", DEPLOYMENTS): {"items": [deployment("a"), deployment("web", "2")]},
        }
    )
    consumers = [
        {"kind": "Deployment", "name": "web"},
        {"kind": "Deployment", "name": "gone"},
        {
            "kind": "Deployment",
            "selector": {
                "matchLabels": {"tier": "api"},
                "matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["dev"]}],
            },
        },
    ]
    seen = run(Consumers(session).observe(resource(consumers)))  # type: ignore[arg-type]
    assert seen is not None
    assert [(w.name, w.rolled_to, w.complete) for w in seen.workloads] == [
        ("a", None, True),
        ("web", 2, True),
    ]
    assert seen.missing == ("Deployment/gone",)
    assert seen.refused is None
    lists = [call for call in session.calls if call[1] == DEPLOYMENTS]
    assert lists[0][3] == {"labelSelector": "tier=api,env notin (dev)"}


def test_no_consumers_means_no_request() -> None:
    session = FakeSession({})
    assert run(Consumers(session).observe(resource([]))) is None  # type: ignore[arg-type]
    assert session.calls == []


def test_a_forbidden_read_is_a_refusal_and_other_errors_propagate() -> None:
    forbidden = ApiError(403, "Forbidden", 'deployments.apps "web" is forbidden')
    session = FakeSession({("GET", f"{DEPLOYMENTS}/web"): forbidden})
    seen = run(Consumers(session).observe(resource([{"kind": "Deployment", "name": "web"}])))  # type: ignore[arg-type]
    assert seen is not None
    assert seen.refused is not None
    assert "403" in seen.refused
    assert "forbidden" in seen.refused

    broken = FakeSession({("GET", f"{DEPLOYMENTS}/web"): ApiError(500, "Internal", "boom")})
    with pytest.raises(ApiError):
        run(Consumers(broken).observe(resource([{"kind": "Deployment", "name": "web"}])))  # type: ignore[arg-type]


def workload(kind: WorkloadKind, name: str) -> Workload:
    return Workload(kind, name, None, None, True, "")


def test_roll_is_a_server_side_apply_of_one_annotation_under_the_credentials_manager() -> None:
    session = FakeSession(
        {
            ("PATCH", f"{DEPLOYMENTS}/web"): {},
            ("PATCH", f"/apis/apps/v1/namespaces/{NS}/daemonsets/agent"): {},
        }
    )
    rollouts = (
        Rollout(workload(WorkloadKind.DEPLOYMENT, "web"), 3),
        Rollout(workload(WorkloadKind.DAEMON_SET, "agent"), 3),
    )
    assert run(Consumers(session).roll(resource([]), rollouts)) is None  # type: ignore[arg-type]
    method, path, body, params, content_type = session.calls[0]
    assert (method, path, content_type) == ("PATCH", f"{DEPLOYMENTS}/web", APPLY_PATCH)
    assert params == {"fieldManager": "credsmith-serviceaccountcredential-billing", "force": "true"}
    assert body == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "metadata": {"annotations": {"serviceaccountcredential.credsmith.io/billing": "3"}}
            }
        },
    }
    assert session.calls[1][2]["kind"] == "DaemonSet"


def test_a_refused_roll_is_reported_and_a_deleted_workload_skipped() -> None:
    denied = ApiError(403, "Forbidden", "no rollouts here")
    session = FakeSession({("PATCH", f"{DEPLOYMENTS}/denied"): denied})
    rollouts = (
        Rollout(workload(WorkloadKind.DEPLOYMENT, "deleted"), 2),  # 404: skipped
        Rollout(workload(WorkloadKind.DEPLOYMENT, "denied"), 2),
    )
    refused = run(Consumers(session).roll(resource([]), rollouts))  # type: ignore[arg-type]
    assert refused is not None
    assert "no rollouts here" in refused
