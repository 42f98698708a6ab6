"""Before every cache holds its first listing (a restart with many credentials lists for
tens of seconds), a credential whose pass reads only itself and its Secret goes at once;
a Secret not listed yet is asked of the API server, never taken for missing; every other
key waits for the listings, and what they found settled waits behind everything."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from credsmith.reconcile.kinds import jwks_name_of, registry_name_of, secret_name_of
from credsmith.reconcile.secret_state import OWNER
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.runtime.controller import Controller
from credsmith.runtime.early import passes_before_sync
from credsmith.runtime.informer import LISTED
from credsmith.runtime.kinds import Key, KindConfig
from tests.state_key import TEST_STATE_KEY

KIND = "ApiClient"


def _config() -> KindConfig:
    def reconcile(*_: Any, **__: Any) -> Any:
        raise AssertionError("not called")

    return KindConfig(
        KIND, "apiclients", reconcile, secret_name_of,
        registry_of=registry_name_of, jwks_of=jwks_name_of,
    )  # fmt: skip


def _resource(name: str, spec: dict[str, Any] | None = None, ready: bool = False) -> Any:
    condition = {"type": "Ready", "status": "True", "observedGeneration": 1}
    return ResourceSnapshot(
        api_version="credsmith.io/v1alpha1", kind=KIND, namespace="ns", name=name, uid=name,
        generation=1, labels={}, annotations={}, spec=spec or {},
        status={"observedGeneration": 1, "conditions": [condition]} if ready else {},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "early"),
    [
        ({"clientIdPrefix": "x"}, True),
        ({"registry": {"name": "reg"}}, False),  # built from every member
        ({"keyPair": {"jwks": {"name": "keys"}}}, False),
        ({"identityProvider": {"name": "idp"}}, False),  # the provider's cache
        ({"consumers": [{"kind": "Deployment", "name": "web"}]}, False),  # shared rollouts
    ],
)
def test_only_a_pass_that_reads_itself_and_its_secret_goes_before_the_listings(
    spec: dict[str, Any], early: bool
) -> None:
    assert passes_before_sync(_config(), _resource("a", spec)) is early


class FakeInformer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.synced = asyncio.Event()

    async def run(self) -> None:
        await asyncio.Event().wait()

    def liveness_problem(self, stale_after: float) -> str | None:
        return None


class FakeKube:
    class Watches:
        pool_size = 0

    def __init__(self, secrets: dict[str, dict[str, Any]]) -> None:
        self.watches = self.Watches()
        self.session = None
        self.secrets = secrets
        self.gets: list[str] = []

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets.append(name)
        return self.secrets.get(name)


def _secret_body(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": "5"}, "data": {}}


def test_a_secret_not_listed_yet_is_asked_of_the_api_server_not_taken_for_missing() -> None:
    kube = FakeKube({"there": _secret_body("there")})
    controller = Controller(kube, [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    informer = FakeInformer("/api/v1/namespaces/ns/secrets")
    controller._secret_informers["ns"] = informer  # type: ignore[assignment]

    async def look(name: str) -> str | None:
        found = await controller.passes.secret_for_pass("ns", name)
        return None if found is None else found.resource_version

    assert asyncio.run(look("there")) == "5"  # not in the cache, but it exists
    assert asyncio.run(look("absent")) is None  # the API server says 404
    assert kube.gets == ["there", "absent"]
    informer.synced.set()  # once listed, the cache is the answer
    assert asyncio.run(look("absent")) is None
    assert kube.gets == ["there", "absent"]


def test_before_the_listings_end_only_independent_changes_pass_the_rest_waits() -> None:
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    config = controller.kinds[KIND]
    passed: list[str] = []

    async def reconcile(key: Key) -> None:
        passed.append(key[2])

    controller.reconcile = reconcile  # type: ignore[method-assign]
    informers = [FakeInformer("credentials"), FakeInformer("secrets")]

    async def scenario() -> list[list[str]]:
        task = asyncio.create_task(controller.run(informers))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        registry = {"spec": {"registry": {"name": "reg"}}}
        for type_, body, resource in (
            (LISTED, {}, _resource("settled", ready=True)),
            (LISTED, {}, _resource("unready")),
            ("ADDED", registry, _resource("member", registry["spec"])),
            ("ADDED", {}, _resource("new")),
        ):
            # As the informer does: into the cache, then the handler.
            controller.resources[KIND][("ns", resource.name)] = resource
            controller._resource_changed(config, type_, body, resource)
        await asyncio.sleep(0.2)
        before = sorted(passed)
        for informer in informers:
            informer.synced.set()
        await asyncio.sleep(0.2)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return [before, passed[len(before) :]]

    before, after = asyncio.run(scenario())
    # The member's pass (and its registry's) needs every member listed; the settled one
    # waits behind everything.
    assert before == ["new", "unready"]
    assert after[-1] == "settled"
    assert sorted(after[:-1]) == ["member", "reg"]


def _secret(version: str) -> SecretSnapshot:
    return SecretSnapshot(
        namespace="ns", name="a", type="Opaque", data={}, labels={},
        annotations={OWNER: f"{KIND}/a"}, owner_references=(), resource_version=version,
    )  # fmt: skip


def test_a_write_before_the_secrets_were_listed_is_not_undone_by_the_listing() -> None:
    # The listing began before the write: it holds the version the write replaced.
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    controller.writes.remember_secret(_secret("7"))
    controller.secrets[("ns", "a")] = _secret("5")
    controller._secret_changed(LISTED, {}, _secret("5"))
    found = controller.secret("ns", "a")
    assert found is not None
    assert found.resource_version == "7"
    # The watch delivers the write: the cache has it now.
    controller.secrets[("ns", "a")] = _secret("7")
    controller._secret_changed("MODIFIED", {}, _secret("7"))
    assert controller.writes.secrets == {}


def test_a_backlog_of_passes_that_never_suspend_does_not_hold_a_new_one_s_pass() -> None:
    # A settled credential's pass runs on the loop without suspending; a new one's waits
    # for its thread and its writes. Two workers: one takes the new key, the other the
    # backlog; the new pass must not wait for the whole backlog to resume.
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY, workers=2)  # type: ignore[arg-type]
    done: list[str] = []

    async def reconcile(key: Key) -> None:
        if key[2] == "new":
            await asyncio.sleep(0.001)  # a write's response
        done.append(key[2])

    controller.reconcile = reconcile  # type: ignore[method-assign]
    informers = [FakeInformer("credentials")]
    informers[0].synced.set()

    async def scenario() -> None:
        for i in range(5000):
            controller.queue.add_backlog((KIND, "ns", f"old-{i}"))
        controller.queue.add((KIND, "ns", "new"))
        task = asyncio.create_task(controller.run(informers))  # type: ignore[arg-type]
        while len(done) < 5001:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert done.index("new") < 2500  # not after the backlog (5000) but among it (~200 here)


def test_a_status_written_before_a_listing_again_is_not_undone_by_that_listing() -> None:
    # A first listing cut off is streamed again; a pass wrote the status meanwhile, and the
    # new stream began before that write: it holds the version the write replaced.
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    config = controller.kinds[KIND]
    key = (KIND, "ns", "a")
    written = {"observedGeneration": 1, "revision": 1}
    controller.writes.status[key] = ("7", written)
    before = replace(_resource("a"), resource_version="5")
    controller.resources[KIND][("ns", "a")] = before
    controller._resource_changed(config, LISTED, {}, before)
    assert controller.writes.status.get(key) == ("7", written)  # the next pass reads it
    # The watch delivers the write: the cache has it now.
    after = replace(before, resource_version="7", status=written)
    controller.resources[KIND][("ns", "a")] = after
    controller._resource_changed(config, "MODIFIED", {}, after)
    assert controller.writes.status == {}


def test_a_listing_that_began_after_a_write_has_the_last_word() -> None:
    # Our write replaced version 5 and made 7; the listing holds 9: someone wrote after us
    # (before the listing began), and the watch will not deliver 7 or 9 again. Kept, our
    # copy would hide that change from every pass until the Secret changes once more.
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    sent = {"metadata": {"resourceVersion": "5"}}
    controller.writes.remember_secret(_secret("7"), sent)
    controller.secrets[("ns", "a")] = _secret("9")
    controller._secret_changed(LISTED, {}, _secret("9"))
    found = controller.secret("ns", "a")
    assert found is not None
    assert found.resource_version == "9"


def test_a_listing_that_holds_the_version_a_write_replaced_does_not_undo_it() -> None:
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    sent = {"metadata": {"resourceVersion": "5"}}
    controller.writes.remember_secret(_secret("7"), sent)
    controller.secrets[("ns", "a")] = _secret("5")
    controller._secret_changed(LISTED, {}, _secret("5"))
    found = controller.secret("ns", "a")
    assert found is not None
    assert found.resource_version == "7"


def test_a_listing_that_holds_a_version_between_two_of_our_writes_does_not_undo_them() -> None:
    controller = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    controller.writes.remember_secret(_secret("7"), {"metadata": {"resourceVersion": "5"}})
    controller.writes.remember_secret(_secret("9"), {"metadata": {"resourceVersion": "7"}})
    controller.secrets[("ns", "a")] = _secret("5")
    controller._secret_changed(LISTED, {}, _secret("5"))
    found = controller.secret("ns", "a")
    assert found is not None
    assert found.resource_version == "9"
