"""Rotations that fall due together are spread: every scheduled rotation happens a
deterministic delay after its period, a fraction of the period (ROTATION_SPREAD, at most
ROTATION_SPREAD_MAX) chosen by its UID, so that a thousand credentials created by one
`kubectl apply` neither rotate nor roll their consumers in the same second. Pure.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

ROTATION_SPREAD = 0.1
ROTATION_SPREAD_MAX = timedelta(hours=1)


def rotation_spread(uid: str, period: timedelta) -> timedelta:
    """The delay after `period` at which a credential's scheduled rotation happens: the same
    for the same resource every time, spread evenly over ROTATION_SPREAD of the period (at
    most ROTATION_SPREAD_MAX). Whole seconds: timestamps are written with whole seconds, so
    a fraction would make the pass that rotates and the one after it disagree about
    nextRotationAt by a second (a needless status write)."""
    fraction = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:8]) / 2**64
    spread = min(period * ROTATION_SPREAD, ROTATION_SPREAD_MAX) * fraction
    return timedelta(seconds=int(spread.total_seconds()))
