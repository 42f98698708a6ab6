"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.

Replicas compete for one Lease; the holder renews it every `retry_period`. A
standby takes it over once it has seen the same record unchanged for
`lease_duration` (measured on its own monotonic clock, so clock skew between nodes
does not matter). A leader that cannot renew within `renew_deadline` stops leading
by exiting the process (crash-only, like controller-runtime): its Deployment
restarts it as a standby.

No two replicas act at once: the deadline is counted from the moment the last
successful renewal was *sent* (the server's renewTime cannot be earlier), and every
attempt is cut off by asyncio.timeout at that deadline, so a GET or PUT that hangs
cannot carry the leader past it. With renew_deadline < lease_duration the old
leader has stopped before a standby may take over. A leader that sees another
holder in the Lease steps down at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credsmith.runtime.kube import ApiError, Kube

log = logging.getLogger("credsmith.leader")


class LostLeadership(Exception):
    """The Lease could not be renewed in time; the process must stop acting."""


@dataclass
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(self, kube: Kube, config: LeaseConfig) -> None:
        self.kube = kube
        self.config = config
        self.is_leader = False
        # The last record seen, and when (monotonic) it was first seen.
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._acquired_at = 0.0

    async def run(self, lead: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Wait to become leader, then run `lead()` while renewing; release on exit."""
        await self._acquire()
        leading = asyncio.create_task(lead(), name="leading")
        renewing = asyncio.create_task(self._keep_renewing(), name="renew-lease")
        try:
            done, _ = await asyncio.wait({leading, renewing}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # LostLeadership or the operator's own error
        finally:
            for task in (leading, renewing):
                task.cancel()
            for task in (leading, renewing):
                with contextlib.suppress(asyncio.CancelledError, LostLeadership):
                    await task
            await self._release()

    async def _acquire(self) -> None:
        log.info(
            "waiting to lead: Lease %s/%s as %s",
            self.config.namespace,
            self.config.name,
            self.config.identity,
        )
        while True:
            attempt = time.monotonic()
            try:
                async with asyncio.timeout(self.config.renew_deadline):
                    if await self._try_acquire_or_renew():
                        break
            except (ApiError, TimeoutError) as exc:
                log.debug("could not acquire the Lease: %s", exc)
            await asyncio.sleep(self.config.retry_period)
        self._acquired_at = attempt
        self.is_leader = True
        log.info("leading: Lease %s/%s acquired", self.config.namespace, self.config.name)

    async def _keep_renewing(self) -> None:
        # When the last successful renewal was sent (acquiring counts as one).
        last_renewal = self._acquired_at
        while True:
            await asyncio.sleep(self.config.retry_period)
            deadline = last_renewal + self.config.renew_deadline
            attempt = time.monotonic()
            try:
                # The attempt may not outlive the deadline, however the network behaves.
                async with asyncio.timeout(max(0.0, deadline - attempt)):
                    renewed = await self._try_acquire_or_renew()
            except LostLeadership:
                self.is_leader = False
                raise
            except Exception as exc:  # any failure counts against the renew deadline
                log.warning("could not renew the Lease: %s", type(exc).__name__ + f" {exc}")
                renewed = False
            if renewed:
                last_renewal = attempt
            elif time.monotonic() >= deadline:
                self.is_leader = False
                raise LostLeadership(
                    f"Lease {self.config.namespace}/{self.config.name} not renewed "
                    f"for {self.config.renew_deadline:.0f}s"
                )

    async def _try_acquire_or_renew(self) -> bool:
        now = datetime.now(UTC)
        me = self.config.identity
        try:
            lease = await self.kube.get_lease(self.config.namespace, self.config.name)
        except ApiError as exc:
            if exc.status != 404:
                raise
            body = self._body(now, holder_changed=True, transitions=0)
            try:
                await self.kube.create_lease(self.config.namespace, body)
            except ApiError as create_error:
                if create_error.status == 409:  # another replica was quicker
                    return False
                raise
            return True

        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, time.monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        expired = time.monotonic() - self._observed_at > duration
        if holder and holder != me and not expired:
            if self.is_leader:
                # Someone else holds it (we were too slow, or it was taken by hand):
                # stop acting now, not at the renew deadline.
                raise LostLeadership(f"Lease {self.config.name} is held by {holder}")
            return False
        transitions = int(spec.get("leaseTransitions") or 0)
        changed = holder != me
        body = self._body(
            now,
            holder_changed=changed,
            transitions=transitions + 1 if changed else transitions,
            acquired=spec.get("acquireTime"),
        )
        body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
        try:
            await self.kube.replace_lease(self.config.namespace, self.config.name, body)
        except ApiError as exc:
            if exc.status == 409:  # someone else wrote it first
                return False
            raise
        return True

    def _body(
        self,
        now: datetime,
        *,
        holder_changed: bool,
        transitions: int,
        acquired: str | None = None,
    ) -> dict[str, Any]:
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.config.name, "namespace": self.config.namespace},
            "spec": {
                "holderIdentity": self.config.identity,
                "leaseDurationSeconds": int(self.config.lease_duration),
                "acquireTime": _micro_time(now) if holder_changed or not acquired else acquired,
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }

    async def _release(self) -> None:
        """Give the Lease up on a clean stop, so a standby takes over at once."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            async with asyncio.timeout(self.config.retry_period):
                lease = await self.kube.get_lease(self.config.namespace, self.config.name)
            if (lease.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            lease["spec"]["holderIdentity"] = ""
            lease["spec"]["leaseDurationSeconds"] = 1
            async with asyncio.timeout(self.config.retry_period):
                await self.kube.replace_lease(self.config.namespace, self.config.name, lease)
            log.info("released the Lease")
        except (ApiError, TimeoutError) as exc:
            log.warning("could not release the Lease: %s", type(exc).__name__)
