"""The controller's own writes, echoed by the watches while its pass still runs, set off no
second pass; anyone else's change meanwhile does (and a deletion always does).

The watches and the responses come over different connections: the echo of a Secret create
or a status patch may be delivered before the response that says which resourceVersion the
write made. No API server here: a fake Kube answers the three writes of an issuing pass and,
inside each, delivers the watch events the informers would (cache first, then the handler).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from credsmith import API_VERSION
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.runtime.controller import Controller
from credsmith.runtime.kinds import KindConfig
from credsmith.runtime.operator import default_kinds
from tests.state_key import TEST_STATE_KEY

KIND, NAMESPACE, NAME = "ServiceAccountCredential", "team-a", "app"
KEY = (KIND, NAMESPACE, NAME)
BODY: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {
        "name": NAME,
        "namespace": NAMESPACE,
        "uid": "0b8c3f7e-8d44-4c55-9d0c-3c1f2a9b1e11",
        "generation": 1,
        "resourceVersion": "10",
    },
    "spec": {"serviceAccount": NAME, "rotation": {"period": "720h"}},
}

Deliver = Callable[[Controller, dict[str, Any]], None]


class FakeKube:
    """Answers the writes; `on_secret` and `on_status` deliver watch events before the
    response returns (the echo first)."""

    def __init__(self, on_secret: Deliver, on_status: Deliver) -> None:
        self.session = self.watches = None
        self.controller: Controller | None = None
        self.on_secret, self.on_status = on_secret, on_status
        self.version = 20
        self.writes: list[str] = []

    def _next_version(self) -> str:
        self.version += 1
        return str(self.version)

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        assert self.controller is not None
        written = copy.deepcopy(dict(body))
        written["metadata"]["resourceVersion"] = self._next_version()
        self.writes.append("secret")
        self.on_secret(self.controller, written)
        return written

    async def patch_status(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        assert self.controller is not None
        body = copy.deepcopy(BODY)
        body["status"] = {k: v for k, v in patch["status"].items() if v is not None}
        body["metadata"]["resourceVersion"] = self._next_version()
        self.writes.append("status")
        self.on_status(self.controller, body)
        return body

    async def post_event(self, *args: Any) -> None:
        self.writes.append("event")


def secret_event(type_: str = "ADDED") -> Deliver:
    def deliver(controller: Controller, body: dict[str, Any]) -> None:
        snapshot = SecretSnapshot.from_api(body)
        if type_ == "DELETED":
            controller.secrets.pop((NAMESPACE, NAME), None)
        else:
            controller.secrets[(NAMESPACE, NAME)] = snapshot
        controller._secret_changed(type_, body, snapshot)

    return deliver


def resource_event(*bodies: Callable[[dict[str, Any]], dict[str, Any]]) -> Deliver:
    """The echo of the patch, then (optionally) other changes made after it."""

    def deliver(controller: Controller, body: dict[str, Any]) -> None:
        config = controller.kinds[KIND]
        for change in (lambda b: b, *bodies):
            changed = change(copy.deepcopy(body))
            snapshot = ResourceSnapshot.from_api(changed)
            controller.resources[KIND][(NAMESPACE, NAME)] = snapshot
            controller._resource_changed(config, "MODIFIED", changed, snapshot)

    return deliver


def annotated(body: dict[str, Any]) -> dict[str, Any]:
    """Someone annotates the resource right after our patch (a new resourceVersion)."""
    body["metadata"]["annotations"] = {"credsmith.io/rotate": "now"}
    body["metadata"]["resourceVersion"] = "99"
    return body


def passes(kube: FakeKube) -> int:
    """Run one worker until the queue is idle; the number of passes of the resource."""
    counted = 0

    async def run() -> int:
        nonlocal counted
        kinds: list[KindConfig] = []
        for config in default_kinds(TEST_STATE_KEY):
            original = config.reconcile

            def counting(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
                nonlocal counted
                counted += 1
                return _original(*args, **kwargs)

            kinds.append(replace(config, reconcile=counting))
        controller = Controller(kube, kinds, TEST_STATE_KEY, workers=1)  # type: ignore[arg-type]
        kube.controller = controller
        controller.resources[KIND][(NAMESPACE, NAME)] = ResourceSnapshot.from_api(BODY)
        controller.queue.add(KEY)
        worker = asyncio.create_task(controller._worker())
        await asyncio.sleep(0.3)  # one pass takes a few ms; a second would follow at once
        worker.cancel()
        return counted

    return asyncio.run(run())


def test_echoes_delivered_before_the_responses_set_off_no_second_pass() -> None:
    kube = FakeKube(secret_event(), resource_event())
    assert passes(kube) == 1
    assert kube.writes == ["secret", "status", "event"]


def test_a_change_by_someone_else_during_the_pass_is_looked_at_again() -> None:
    kube = FakeKube(secret_event(), resource_event(annotated))
    assert passes(kube) == 2


def test_a_deletion_during_the_pass_is_looked_at_again() -> None:
    # The deleted Secret's snapshot carries our own write's resourceVersion.
    kube = FakeKube(secret_event("DELETED"), resource_event())
    assert passes(kube) == 2
