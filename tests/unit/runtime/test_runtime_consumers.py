"""runtime/consumers.py: which requests observe and roll make, and how refusals are read."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

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
    seen = run(Consumers(session).observe(resource(consumers), "billing"))  # type: ignore[arg-type]
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
    assert run(Consumers(session).observe(resource([]), "billing")) is None  # type: ignore[arg-type]
    assert session.calls == []


def test_each_entry_is_read_on_its_own_and_no_error_propagates() -> None:
    """A refused read (403), a selector the API server rejects (400), a missing workload
    (404), an error (500) and an unreachable server each become that entry's problem; the
    entries after them are read all the same."""
    errors = {
        "refused": ApiError(403, "Forbidden", 'deployments.apps "refused" is forbidden'),
        "broken": ApiError(500, "InternalError", "boom"),
        "away": ApiError(0, "Unreachable", "ClientConnectorError"),
    }
    answers: dict[tuple[str, str], Any] = {
        ("GET", f"{DEPLOYMENTS}/{name}"): error for name, error in errors.items()
    }
    answers[("GET", DEPLOYMENTS)] = ApiError(400, "BadRequest", "unable to parse requirement")
    answers[("GET", f"{DEPLOYMENTS}/web")] = deployment("web", "2")
    session = FakeSession(answers)
    consumers = [
        {"kind": "Deployment", "name": "refused"},
        {"kind": "Deployment", "selector": {"matchLabels": {"tier": "api"}}},
        {"kind": "Deployment", "name": "gone"},
        {"kind": "Deployment", "name": "broken"},
        {"kind": "Deployment", "name": "away"},
        {"kind": "Deployment", "name": "web"},
    ]
    seen = run(Consumers(session).observe(resource(consumers), "billing"))  # type: ignore[arg-type]
    assert seen is not None
    assert [w.name for w in seen.workloads] == ["web"]
    assert [(u.name, u.selector, u.status) for u in seen.unread] == [
        ("refused", None, 403),
        (None, "tier=api", 400),
        ("gone", None, 404),
        ("broken", None, 500),
        ("away", None, 0),
    ]
    assert seen.missing == ("Deployment/gone",)
    messages = {u.name or u.selector: u.message for u in seen.unread}
    assert messages["gone"] == "not found"
    assert "403 Forbidden" in messages["refused"]
    assert messages["tier=api"] == (
        "the API server refused to list the workloads (400 BadRequest: unable to parse requirement)"
    )
    assert seen.refused is not None
    assert "Deployment tier=api: the API server refused to list" in seen.refused
    assert "gone" not in seen.refused  # missing: nothing that could run the previous value


def test_consent_is_read_from_the_pod_template() -> None:
    uses = deployment("uses")
    uses["spec"]["template"]["spec"] = {
        "containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "billing-secret"}}]}]
    }
    session = FakeSession({("GET", DEPLOYMENTS): {"items": [uses, deployment("other")]}})
    consumers = [{"kind": "Deployment", "selector": {"matchLabels": {"tier": "api"}}}]
    seen = run(Consumers(session).observe(resource(consumers), "billing-secret"))  # type: ignore[arg-type]
    assert seen is not None
    assert [(w.name, w.uses_secret) for w in seen.workloads] == [
        ("other", False),
        ("uses", True),
    ]
    assert seen.secret_name == "billing-secret"


def test_a_workload_named_and_selected_is_seen_once() -> None:
    session = FakeSession(
        {
            ("GET", f"{DEPLOYMENTS}/web"): deployment("web"),
            ("GET", DEPLOYMENTS): {"items": [deployment("web")]},
        }
    )
    consumers = [
        {"kind": "Deployment", "name": "web"},
        {"kind": "Deployment", "selector": {"matchLabels": {"app": "web"}}},
    ]
    seen = run(Consumers(session).observe(resource(consumers), "billing"))  # type: ignore[arg-type]
    assert seen is not None
    assert [w.name for w in seen.workloads] == ["web"]


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
    assert run(Consumers(session).roll(resource([]), rollouts)) == {}  # type: ignore[arg-type]
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


def test_each_roll_is_made_on_its_own_and_failures_are_reported_per_workload() -> None:
    """The first workload refused (403), one denied by a policy (422), one failing (500):
    every other one is rolled all the same; a deleted one (404) is skipped."""
    session = FakeSession(
        {
            ("PATCH", f"{DEPLOYMENTS}/a-denied"): ApiError(403, "Forbidden", "no rollouts here"),
            ("PATCH", f"{DEPLOYMENTS}/b-ok"): {},
            ("PATCH", f"{DEPLOYMENTS}/c-policy"): ApiError(422, "Invalid", "denied by policy"),
            ("PATCH", f"{DEPLOYMENTS}/e-broken"): ApiError(500, "InternalError", "boom"),
            ("PATCH", f"{DEPLOYMENTS}/f-ok"): {},
        }
    )
    names = ["a-denied", "b-ok", "c-policy", "d-deleted", "e-broken", "f-ok"]
    rollouts = tuple(Rollout(workload(WorkloadKind.DEPLOYMENT, n), 2) for n in names)
    failures = run(Consumers(session).roll(resource([]), rollouts))  # type: ignore[arg-type]
    assert [call[1].rsplit("/", 1)[1] for call in session.calls] == names
    assert {key[1]: (f.status, f.forbidden) for key, f in failures.items()} == {
        "a-denied": (403, True),
        "c-policy": (422, True),
        "e-broken": (500, False),
    }
    assert "no rollouts here" in failures[("Deployment", "a-denied")].message
    assert failures[("Deployment", "a-denied")].message.startswith(
        "the API server refused to patch it (403 Forbidden"
    )
