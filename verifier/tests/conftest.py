"""Cheap hashes for speed: most tests here check parsing and logic, not costs.

The verifier refuses hash strings below the operator's costs (600,000 PBKDF2 iterations,
Argon2id m=19456,t=2). Tests lower those floors to what their helpers write (1000
iterations, m=1024,t=1), unless they ask for the `operator_floors` fixture, which keeps the
real floors (the tests of the floors themselves and of the published vectors).
"""

from __future__ import annotations

import pytest

from credsmith_verify import hashes


@pytest.fixture
def operator_floors() -> None:
    """The floors as shipped (the autouse fixture below leaves them alone)."""


@pytest.fixture(autouse=True)
def cheap_floors(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "operator_floors" in request.fixturenames:
        return
    monkeypatch.setattr(hashes, "MIN_PBKDF2_ITERATIONS", 1000, raising=False)
    monkeypatch.setattr(hashes, "MIN_ARGON2_MEMORY_KIB", 1024, raising=False)
    monkeypatch.setattr(hashes, "MIN_ARGON2_ITERATIONS", 1, raising=False)
