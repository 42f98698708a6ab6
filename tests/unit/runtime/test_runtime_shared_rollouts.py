"""runtime/shared_rollouts.py: rollouts held and made once for the credentials that share
a workload, against a recording session (the e2e tests run them on the API server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from credsmith.api.enums import WorkloadKind
from credsmith.reconcile.consumers import Rollout
from credsmith.reconcile.rollouts import Workload
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.consumers import SHARED_ROLLOUT_MANAGER, Consumers
from credsmith.runtime.session import APPLY_PATCH, MERGE_PATCH, ApiError
from credsmith.runtime.shared_rollouts import SharedRollouts
from tests.unit.runtime.test_runtime_consumers import DEPLOYMENTS, NS, FakeSession

T0 = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=10)
KIND = "ServiceAccountCredential"
WEB = Workload(WorkloadKind.DEPLOYMENT, "web", 1, None, True, "1 of 1 updated")


def credential(name: str, revision: int = 1, rotate: str | None = None) -> ResourceSnapshot:
    """At `revision`, Deployment/web recorded at revision 1; `rotate`: a rotation request
    not acted upon yet."""
    return ResourceSnapshot(
        api_version="credsmith.io/v1alpha1",
        kind=KIND,
        namespace=NS,
        name=name,
        uid=f"u-{name}",
        generation=1,
        labels={},
        annotations={"credsmith.io/rotate": rotate} if rotate else {},
        spec={"serviceAccount": name, "consumers": [{"kind": "Deployment", "name": "web"}]},
        status={
            "revision": revision,
            "consumers": [{"kind": "Deployment", "name": "web", "revision": 1, "rolledOut": True}],
        },
    )


class Cluster:
    def __init__(self, session: FakeSession, *resources: ResourceSnapshot) -> None:
        self.resources = {(r.kind, r.namespace, r.name): r for r in resources}
        self.woken: list[str] = []
        self.events: list[tuple[str, str, str]] = []
        self.shared = SharedRollouts(
            Consumers(session),  # type: ignore[arg-type]
            self.resources.get,
            lambda key: self.woken.append(key[2]),
            self.post_event,
            WINDOW,
        )
        for key, resource in self.resources.items():
            self.shared.resource_changed(key, resource)

    async def post_event(
        self, resource: ResourceSnapshot, type_: str, reason: str, msg: str
    ) -> None:
        self.events.append((resource.name, reason, msg))

    def update(self, resource: ResourceSnapshot) -> None:
        key = (resource.kind, resource.namespace, resource.name)
        self.resources[key] = resource
        self.shared.resource_changed(key, resource)

    def roll(self, name: str, now: datetime) -> tuple[dict[Any, Any], dict[Any, datetime]]:
        resource = self.resources[(KIND, NS, name)]
        return asyncio.run(self.shared.roll(resource, (Rollout(WEB, 2),), now))


def patches(session: FakeSession) -> list[tuple[str, Any, Any, str]]:
    return [(path, body, params, ctype) for method, path, body, params, ctype in session.calls]


def test_credentials_rotating_together_roll_their_workload_with_one_write() -> None:
    session = FakeSession({("PATCH", f"{DEPLOYMENTS}/web"): {}})
    # Three rotations asked for together: b and c are about to roll web too.
    cluster = Cluster(session, *(credential(n, rotate="r1") for n in ("a", "b", "c")))
    for name in ("a", "b", "c"):  # each rotated (revision 2, web still at 1)
        cluster.update(credential(name, revision=2, rotate=None))
    assert cluster.roll("a", T0) == ({}, {("Deployment", "web"): T0 + WINDOW})
    assert cluster.roll("b", T0 + timedelta(seconds=1)) == (
        {},
        {("Deployment", "web"): T0 + WINDOW},
    )
    assert session.calls == []
    # The last one asks: every user about to roll has asked, so all roll at once.
    assert cluster.roll("c", T0 + timedelta(seconds=2)) == ({}, {})
    assert patches(session) == [
        (
            f"{DEPLOYMENTS}/web",
            {
                "spec": {
                    "template": {
                        "metadata": {
                            "annotations": {
                                f"serviceaccountcredential.credsmith.io/{n}": "2"
                                for n in ("a", "b", "c")
                            }
                        }
                    }
                }
            },
            {"fieldManager": SHARED_ROLLOUT_MANAGER},
            MERGE_PATCH,
        )
    ]
    assert sorted(cluster.woken) == ["a", "b"]  # to find their annotation in place
    assert sorted((name, reason) for name, reason, _ in cluster.events) == [
        ("a", "RollingOut"),
        ("b", "RollingOut"),
    ]


def test_a_lone_credential_or_one_whose_sharers_are_not_about_to_roll_is_never_held() -> None:
    session = FakeSession({("PATCH", f"{DEPLOYMENTS}/web"): {}})
    cluster = Cluster(session, credential("a", revision=2), credential("b"))  # b: at rest
    assert cluster.roll("a", T0) == ({}, {})
    ((_, _, params, ctype),) = patches(session)
    # As a lone rollout always was: its own apply, under its own field manager.
    assert (params["fieldManager"], ctype) == ("credsmith-serviceaccountcredential-a", APPLY_PATCH)


def test_held_rolls_are_made_when_the_window_has_passed() -> None:
    session = FakeSession({("PATCH", f"{DEPLOYMENTS}/web"): {}})
    cluster = Cluster(session, credential("a", revision=2), credential("b", rotate="r1"))
    assert cluster.roll("a", T0)[1] == {("Deployment", "web"): T0 + WINDOW}
    # b never asks (its rotation cannot happen): a's next pass, at the end of the window.
    assert cluster.roll("a", T0 + WINDOW) == ({}, {})
    assert len(session.calls) == 1


def test_a_refused_shared_write_is_told_to_each_credential() -> None:
    refusal = ApiError(403, "Forbidden", "deployments.apps web is forbidden")
    session = FakeSession({("PATCH", f"{DEPLOYMENTS}/web"): refusal})
    cluster = Cluster(session, credential("a", revision=2), credential("b", revision=2))
    assert cluster.roll("a", T0)[1]  # held for b
    failures, held = cluster.roll("b", T0 + timedelta(seconds=1))
    assert held == {}
    assert failures[("Deployment", "web")].status == 403
    assert cluster.woken == ["a"]
    # a's next pass is told, without another write.
    failures, held = cluster.roll("a", T0 + timedelta(seconds=2))
    assert failures[("Deployment", "web")].status == 403
    assert len(session.calls) == 1


def test_a_deleted_credential_no_longer_holds_the_others() -> None:
    session = FakeSession({("PATCH", f"{DEPLOYMENTS}/web"): {}})
    cluster = Cluster(session, credential("a", revision=2), credential("b", rotate="r1"))
    cluster.shared.resource_changed((KIND, NS, "b"), None)
    assert cluster.roll("a", T0) == ({}, {})
