"""A version 1 Secret's hashes carry no binding, so the operator verifies them against the
value (trust.py). Anyone who can write the Secret's annotations (no read needed) can put a
hash string there: one with the verifier's largest costs (PBKDF2 10^7 iterations, Argon2id
1 GiB x 64 passes) would cost seconds to minutes of CPU and a GiB of memory on every new
string, in the operator (the registry is rebuilt on its event loop). Only the costs 0.1.0
wrote are verified; any other string is not trusted and is made again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith.issuing.hashing import verify_secret
from credsmith.reconcile import trust
from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.registry import registry_contents
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith_verify.hashes import MAX_ARGON2_MEMORY_KIB, MAX_PBKDF2_ITERATIONS
from tests.state_key import TEST_STATE_KEY

LATER = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # after the capture, before any expiry
FIXTURES = Path(__file__).parents[2] / "fixtures" / "state_v1"
SALT = "c2FsdHNhbHRzYWx0c2FsdA"  # 16 bytes, standard base64 without padding
HASH = "A" * 43  # 32 bytes' worth; never compared (the cost is the point)
COSTLY = {
    "api-client-argon2id": f"$argon2id$v=19$m={MAX_ARGON2_MEMORY_KIB},t=64,p=16${SALT}${HASH}",
    "api-client-pbkdf2": f"$pbkdf2-sha256$i={MAX_PBKDF2_ITERATIONS},l=32${SALT}${HASH}",
}


def planted(name: str, encoded: str) -> tuple[ResourceSnapshot, SecretSnapshot]:
    case: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    case["secret"]["metadata"]["annotations"]["credsmith.io/secret-hash"] = encoded
    return ResourceSnapshot.from_api(case["resource"]), SecretSnapshot.from_api(case["secret"])


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hash strings the operator verifies (a costly one is refused here, not run)."""
    seen: list[str] = []

    def recording(value: str, encoded: str) -> bool:
        seen.append(encoded)
        return False if encoded in COSTLY.values() else verify_secret(value, encoded)

    trust._verifies.cache_clear()
    monkeypatch.setattr(trust, "verify_secret", recording)
    yield seen
    trust._verifies.cache_clear()


@pytest.mark.parametrize("name", sorted(COSTLY))
def test_a_planted_costly_hash_is_never_verified(name: str, verified: list[str]) -> None:
    resource, secret = planted(name, COSTLY[name])
    registry_contents([(resource, secret)], LATER, TEST_STATE_KEY)
    decision = reconcile(API_CLIENT, resource, secret, LATER, state_key=TEST_STATE_KEY)
    assert COSTLY[name] not in verified
    # Not trusted, so made again (bound to the value) and written.
    assert decision.secret is not None
    assert decision.secret["metadata"]["annotations"]["credsmith.io/secret-hash"] != COSTLY[name]


@pytest.mark.parametrize("name", sorted(COSTLY))
def test_the_hashes_0_1_0_wrote_are_still_verified(name: str, verified: list[str]) -> None:
    case: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    resource = ResourceSnapshot.from_api(case["resource"])
    secret = SecretSnapshot.from_api(case["secret"])
    found = registry_contents([(resource, secret)], LATER, TEST_STATE_KEY)
    assert len(found.entries) == 1
    assert secret.annotations["credsmith.io/secret-hash"] in verified
