"""A worker outlives whatever a failed pass leaves to record: the status read back may hold
anything its writers chose (a condition at a time the CRD's date-time lets through and the
operator does not read), and an exception while recording the failure must not end the
worker, whose end stops the controller."""

from __future__ import annotations

import asyncio
from typing import Any

from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.controller import Controller
from tests.state_key import TEST_STATE_KEY
from tests.unit.runtime.test_runtime_early_passes import KIND, FakeKube, _config

KEY = (KIND, "ns", "a")


def controller(last_transition: str) -> tuple[Controller, list[dict[str, Any]]]:
    """A controller whose every pass of KEY fails, with KEY's status holding a Ready
    condition of `last_transition`; the statuses it patched."""
    ready = {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 1,
        "lastTransitionTime": last_transition,
        "reason": "Issued",
        "message": "m",
    }
    resource = ResourceSnapshot(
        api_version="credsmith.io/v1alpha1",
        kind=KIND,
        namespace="ns",
        name="a",
        uid="a",
        generation=1,
        labels={},
        annotations={},
        spec={},
        status={"observedGeneration": 1, "conditions": [ready]},
    )
    made = Controller(FakeKube({}), [_config()], TEST_STATE_KEY)  # type: ignore[arg-type]
    made.resources[KIND][("ns", "a")] = resource
    made.synced = True
    patched: list[dict[str, Any]] = []

    async def failing(key: Any) -> None:
        raise TypeError("a bug in a pass")

    async def patch_status(key: Any, kind: Any, current: Any, status: dict[str, Any]) -> None:
        patched.append(status)

    made.reconcile = failing  # type: ignore[method-assign]
    made.writes.patch_status = patch_status  # type: ignore[method-assign,assignment]
    return made, patched


def worker_after_failures(made: Controller, failures: int = 4) -> asyncio.Task[None] | None:
    """Run a worker while KEY fails `failures` times; the worker's task if it ended."""

    async def main() -> asyncio.Task[None] | None:
        worker = asyncio.create_task(made._worker())
        for _ in range(failures):
            made.queue.add(KEY)
            await asyncio.sleep(0.05)
        if worker.done():
            return worker
        worker.cancel()
        return None

    return asyncio.run(main())


def test_a_condition_read_back_at_a_time_we_do_not_read_ends_no_worker() -> None:
    made, patched = controller("3000-01-01T00:00:00Z")
    assert worker_after_failures(made) is None
    # The failure is shown all the same, without the condition it could not read.
    assert patched
    conditions = patched[-1]["conditions"]
    assert "Reconciling" in {c["type"] for c in conditions}
    assert all(c["lastTransitionTime"].startswith("20") for c in conditions)


def test_an_exception_recording_a_failure_ends_no_worker() -> None:
    made, _ = controller("2026-01-01T00:00:00Z")

    async def broken(key: Any, exc: Exception) -> None:
        raise ValueError("a bug in recording")

    made._failed = broken  # type: ignore[method-assign]
    assert worker_after_failures(made) is None
    assert KEY in made.queue._due  # tried again later
