"""Which objects of a restart's first listing wait behind the changes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.backlog import settled


def resource(generation: int, status: dict[str, Any]) -> ResourceSnapshot:
    return ResourceSnapshot(
        api_version="credsmith.io/v1alpha1",
        kind="ServiceAccountCredential",
        namespace="ns",
        name="r",
        uid="u",
        generation=generation,
        labels={},
        annotations={},
        spec={},
        status=status,
    )


def ready(status: str = "True", observed: int = 2) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "observedGeneration": observed}


def test_ready_for_its_generation_can_wait() -> None:
    assert settled(resource(2, {"observedGeneration": 2, "conditions": [ready()]}))


@pytest.mark.parametrize(
    "status",
    [
        {},  # new: never reconciled
        {"observedGeneration": 1, "conditions": [ready(observed=1)]},  # spec changed since
        {"observedGeneration": 2, "conditions": [ready("False")]},  # not Ready
        {"observedGeneration": 2, "conditions": [ready(observed=1)]},  # Ready of an older one
        {"observedGeneration": 2, "conditions": "Ready"},  # not what we write
        {"observedGeneration": 2},
    ],
)
def test_anything_else_goes_first(status: dict[str, Any]) -> None:
    assert not settled(resource(2, status))


def test_a_rotation_requested_while_the_operator_was_down_goes_first() -> None:
    # The annotation changes no generation: a Ready status says nothing of the request.
    status = {"observedGeneration": 2, "conditions": [ready()], "lastRotateRequest": "r1"}
    asked = replace(resource(2, status), annotations={ROTATE_ANNOTATION: "r2"})
    assert not settled(asked)
    done = replace(resource(2, status), annotations={ROTATE_ANNOTATION: "r1"})
    assert settled(done)
