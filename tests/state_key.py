"""The state key the unit tests' operator holds (reconcile/state_mac.py): a fixed one, so that a
failure reproduces; what it authenticates is the operator's own writes in each test."""

from __future__ import annotations

from credsmith.reconcile.state_mac import StateKey

TEST_STATE_KEY = StateKey(bytes(range(32)))
# Another operator's key: a Secret written under it is believed only when status agrees.
OTHER_STATE_KEY = StateKey(bytes(range(100, 132)))
