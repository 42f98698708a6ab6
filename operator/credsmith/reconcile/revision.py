"""Revisions are bounded: a pass never makes a state the next pass would reject. Pure.

The Secret records revisions below 2^31 (secret_state.py: a status integer's range). A new
value past that would be rejected on the next pass and issued again, a new value every pass,
for as long as the revision recorded (say a `credsmith.io/revision` annotation written by
someone else) stays: a loop. So a revision that cannot advance is Stalled, nothing issued.
"""

from __future__ import annotations

from credsmith.api.status import MAX_REVISION, Reason
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.readiness import stop
from credsmith.reconcile.snapshots import Decision

__all__ = ["MAX_REVISION", "bound_revision"]


def bound_revision(p: Pass) -> Pass | Decision:
    """The stage after decide_value: a new revision past MAX_REVISION ends the pass."""
    revision = p.credential.state.revision
    if revision <= MAX_REVISION:
        return p
    name = p.valid.secret_name
    return stop(
        p,
        Reason.REVISION_EXHAUSTED,
        f"revision {revision - 1} of Secret {name} cannot be followed: revisions end at "
        f"{MAX_REVISION}. Nothing was issued or rotated; delete Secret {name} to have the "
        "credential issued anew at the revision status records",
    )
