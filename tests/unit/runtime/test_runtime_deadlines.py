"""Deadlines that must hold however the network behaves: the Lease's renew deadline,
stepping down when another holder is seen, and the startup cache-sync timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from credsmith.runtime.controller import CacheSyncTimeout, Controller
from credsmith.runtime.leader import LeaderElector, LeaseConfig, LostLeadership
from tests.state_key import TEST_STATE_KEY


class HangingKube:
    """A Lease API that answers until `hang` is set, then never again."""

    def __init__(self, holder: str = "me") -> None:
        self.hang = False
        self.holder = holder
        self.version = 0

    async def _maybe_hang(self) -> None:
        if self.hang:
            await asyncio.Event().wait()

    async def get_lease(self, namespace: str, name: str, timeout: float = 10) -> dict[str, Any]:
        await self._maybe_hang()
        self.version += 1
        return {
            "metadata": {"resourceVersion": str(self.version)},
            "spec": {"holderIdentity": self.holder, "renewTime": str(self.version),
                     "leaseDurationSeconds": 3, "leaseTransitions": 0},
        }  # fmt: skip

    async def replace_lease(
        self, namespace: str, name: str, body: Any, timeout: float = 10
    ) -> dict[str, Any]:
        await self._maybe_hang()
        return dict(body)

    async def create_lease(self, namespace: str, body: Any, timeout: float = 10) -> Any:
        raise AssertionError("not expected")


def elector(kube: HangingKube) -> LeaderElector:
    config = LeaseConfig("ns", "lease", "me", lease_duration=3, renew_deadline=2,
                         retry_period=0.4)  # fmt: skip
    return LeaderElector(kube, config)  # type: ignore[arg-type]


def test_a_hanging_renewal_ends_leadership_at_the_renew_deadline() -> None:
    kube = HangingKube()

    async def scenario() -> float:
        leader = elector(kube)
        await leader._acquire()
        kube.hang = True  # from now on every GET and PUT hangs
        started = time.monotonic()
        with pytest.raises(LostLeadership):
            await leader._keep_renewing()
        return time.monotonic() - started

    # Bounded by the deadline (2 s after the last renewal was sent), not by request
    # timeouts; well before the lease duration (3 s).
    assert asyncio.run(scenario()) < 2.5


def test_a_leader_that_sees_another_holder_steps_down_at_once() -> None:
    kube = HangingKube()

    async def scenario() -> float:
        leader = elector(kube)
        await leader._acquire()
        kube.holder = "someone-else"
        started = time.monotonic()
        with pytest.raises(LostLeadership, match="held by someone-else"):
            await leader._keep_renewing()
        return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0  # one retry period, not the renew deadline


class NeverSynced:
    path = "/api/v1/secrets"

    def __init__(self) -> None:
        self.synced = asyncio.Event()

    async def run(self) -> None:
        await asyncio.Event().wait()


class FakeSessions:
    class Watches:
        pool_size = 0

    watches = Watches()
    session = None


def test_caches_that_never_sync_end_the_run() -> None:
    async def scenario() -> None:
        controller = Controller(FakeSessions(), [], TEST_STATE_KEY, cache_sync_timeout=0.3)  # type: ignore[arg-type]
        await controller.run([NeverSynced()])  # type: ignore[list-item]

    with pytest.raises(CacheSyncTimeout, match="/api/v1/secrets"):
        asyncio.run(scenario())
