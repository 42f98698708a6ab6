"""Which objects of a restart's first listing can wait: those whose status says the last
pass saw this generation and found it Ready, and that ask for no rotation it has not
made (the annotation changes no generation). Only an order: each still gets its pass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.reconcile.policy import remembered_request
from credsmith.reconcile.snapshots import ResourceSnapshot


def settled(resource: ResourceSnapshot) -> bool:
    """Ready=True for the current generation: a pass now is most likely a no-op. A new
    resource (no status), a changed spec, or one not Ready goes first."""
    status = resource.status
    if status.get("observedGeneration") != resource.generation:
        return False
    request = remembered_request(resource.annotations.get(ROTATE_ANNOTATION))
    if request is not None and request != status.get("lastRotateRequest"):
        return False  # a rotation asked for while the operator was down
    conditions = status.get("conditions")
    if not isinstance(conditions, list):
        return False
    return any(_ready_now(c, resource.generation) for c in conditions)


def _ready_now(condition: Any, generation: int) -> bool:
    return (
        isinstance(condition, Mapping)
        and condition.get("type") == "Ready"
        and condition.get("status") == "True"
        and condition.get("observedGeneration", generation) == generation
    )
