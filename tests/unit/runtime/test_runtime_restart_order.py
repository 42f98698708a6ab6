"""After a restart the controller queues what its first listing found settled behind
everything else: a resource created or changed meanwhile does not wait for 50,000 passes
that change nothing."""

from __future__ import annotations

import asyncio
from typing import Any

from credsmith.reconcile.kinds import secret_name_of
from credsmith.reconcile.secret_state import OWNER
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.runtime.controller import Controller
from credsmith.runtime.informer import LISTED
from credsmith.runtime.kinds import Key, KindConfig
from tests.state_key import TEST_STATE_KEY

KIND = "ServiceAccountCredential"


class FakeSessions:
    class Watches:
        pool_size = 0

    watches = Watches()
    session = None


def _config() -> KindConfig:
    def reconcile(*_: Any, **__: Any) -> Any:
        raise AssertionError("not called")

    return KindConfig(KIND, "serviceaccountcredentials", reconcile, secret_name_of)


def _resource(name: str, ready: bool) -> ResourceSnapshot:
    condition = {"type": "Ready", "status": "True", "observedGeneration": 1}
    return ResourceSnapshot(
        api_version="credsmith.io/v1alpha1", kind=KIND, namespace="ns", name=name, uid=name,
        generation=1, labels={}, annotations={}, spec={},
        status={"observedGeneration": 1, "conditions": [condition]} if ready else {},
    )  # fmt: skip


def _secret(owner: str) -> SecretSnapshot:
    return SecretSnapshot(
        namespace="ns", name=owner, type="Opaque", data={}, labels={},
        annotations={OWNER: f"{KIND}/{owner}"}, owner_references=(), resource_version="1",
    )  # fmt: skip


def _order(controller: Controller) -> list[str]:
    async def drain() -> list[str]:
        taken: list[Key] = []
        while len(controller.queue):
            key = await controller.queue.get()
            controller.queue.done(key)
            taken.append(key)
        return [name for _, _, name in taken]

    return asyncio.run(drain())


def test_the_listing_s_settled_resources_wait_behind_new_and_changed_ones() -> None:
    controller = Controller(FakeSessions(), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    config = controller.kinds[KIND]
    for name in ("old-1", "old-2"):
        controller._resource_changed(config, LISTED, {}, _resource(name, ready=True))
        controller._secret_changed(LISTED, {}, _secret(name))
    controller._secret_changed(LISTED, {}, _secret("old-3"))  # its resource listed later
    controller._resource_changed(config, LISTED, {}, _resource("old-3", ready=True))
    controller._resource_changed(config, LISTED, {}, _resource("unready", ready=False))
    controller._resource_changed(config, "ADDED", {}, _resource("new", ready=False))
    controller._resource_changed(config, "MODIFIED", {}, _resource("old-2", ready=True))

    assert _order(controller) == ["unready", "new", "old-2", "old-1", "old-3"]
