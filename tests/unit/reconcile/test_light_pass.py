"""reconcile.kinds.is_light: which passes may run on the event loop (nothing slow in them)."""

from __future__ import annotations

from typing import Any

import pytest

from credsmith.reconcile.kinds import is_light
from credsmith.reconcile.snapshots import ResourceSnapshot


def resource(spec: dict[str, Any]) -> ResourceSnapshot:
    return ResourceSnapshot(
        "credsmith.io/v1alpha1", "ApiClient", "ns", "a", "uid", 1, {}, {}, spec, {}
    )


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"serviceAccount": "a", "rotation": {"period": "720h"}},
        {"type": "APIKey"},
        {"type": "BasicAuth"},
        {"registry": {"name": "r"}},
        {"registry": {"name": "r", "hash": "SHA256", "formats": ["ClientsJSON"]}},
    ],
)
def test_random_strings_hashed_with_sha256_at_most_are_light(spec: dict[str, Any]) -> None:
    assert is_light(resource(spec))


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "KeyPair"},
        {"type": "KeyPair", "keyPair": {"algorithm": "RSA4096"}},
        {"keyPair": {}},  # refused by the schema; not light either
        {"type": "SomethingNew"},
        {"registry": {"name": "r", "hash": "Argon2id"}},
        {"registry": {"name": "r", "hash": "PBKDF2SHA256"}},
        {"registry": {"name": "r", "formats": ["ClientsJSON", "Htpasswd"]}},
        {"registry": {"name": "r", "formats": "Htpasswd"}},
        {"registry": "r"},
    ],
)
def test_key_pairs_slow_hashes_and_anything_unclear_take_a_thread(spec: dict[str, Any]) -> None:
    assert not is_light(resource(spec))


def test_a_registry_holding_htpasswd_for_another_client_is_not_light() -> None:
    assert not is_light(resource({"registry": {"name": "r"}}), registry_htpasswd=True)
