"""Promises kept (design behaviour 14): when a rotation that came due waits. Pure.

A previous value stays valid until the previousExpiresAt it was given: a rotation that comes
due meanwhile (the period, a request, a change of generation parameters) would drop it, so it
waits, and status says until when (Reconciling, RotationWaiting). Requested rotations obey
rotation.period's floor: at most one a minute, however often the annotation changes. A
request seen while waiting is remembered in status (pendingRotateRequest), which only the
operator writes, and acted on once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from credsmith.api.common import MIN_ROTATION_PERIOD
from credsmith.api.durations import parse_go_duration
from credsmith.api.status import format_timestamp
from credsmith.reconcile.consumers import held_until
from credsmith.reconcile.pass_state import Pass, Waiting
from credsmith.reconcile.secret_state import SecretState
from credsmith.reconcile.trust import Credential

ROTATION_FLOOR = parse_go_duration(MIN_ROTATION_PERIOD)


def rotation_wait(p: Pass, credential: Credential, why: str, *, requested: bool) -> Waiting | None:
    """Whether a rotation that came due must wait: while the previous value is still
    promised (previousExpiresAt, held further while consumers lag: consumers.held_until) a
    rotation would drop it; a requested rotation waits for the 1m floor too (at most one a
    minute, as rotation.period allows). It then happens once: its cause (the period, the
    parameters, the request on the resource or remembered in status) is still there."""
    waits: list[tuple[datetime, str]] = []
    held = held_until(p, credential)
    if held is not None and held > p.now:
        waits.append((held, f"the previous value was promised until {format_timestamp(held)}"))
    # The floor counts from the last rotation or re-issue (revision 1, a first issue, is not
    # one: a request right after it is honoured, as before). Not by comparing rotatedAt and
    # issuedAt: they have whole seconds, and a rotation can follow the issue in the second.
    state = credential.state
    floor = state.rotated_at + ROTATION_FLOOR
    if requested and state.revision > 1 and floor > p.now:
        waits.append((floor, f"rotations happen at most once per {MIN_ROTATION_PERIOD}"))
    if not waits:
        return None
    until = max(at for at, _ in waits)
    revision = credential.state.revision + 1
    because = " and ".join(reason for _, reason in waits)
    message = (
        f"rotation to revision {revision} ({why}) waits until {format_timestamp(until)}: {because}"
    )
    return Waiting(until, message)


def pending_or(request: str | None, state: SecretState, status: Mapping[str, Any]) -> str | None:
    """The request to act on: the annotation's, or, when it is gone or back at the one acted
    upon, a request seen while a rotation waited (status.pendingRotateRequest: remembered,
    not lost)."""
    pending = status.get("pendingRotateRequest")
    pending = pending if isinstance(pending, str) and pending else None
    if pending is not None and request in (None, state.rotate_request):
        return pending
    return request
