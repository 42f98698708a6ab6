"""The published hash vectors, checked by a Go program with Go's own libraries.

tests/verify-go (built by tests/cluster/build.sh like helm) verifies each string with
golang.org/x/crypto (argon2, pbkdf2, bcrypt) and crypto/sha256, sharing no code with the
Python verifier: what it accepts, servers in other languages can check with stock libraries.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest

from credsmith.dev.cluster import build_binaries

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "hashes.json"


@pytest.fixture(scope="module")
def verify_go() -> Path:
    return build_binaries() / "verify-go"


def run(verify_go: Path, *args: str, stdin: Any = None) -> Any:
    result = subprocess.run(
        [str(verify_go), *args],
        input=None if stdin is None else json.dumps(stdin),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def published() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    return vectors


def test_go_accepts_every_published_vector_and_rejects_wrong_secrets(verify_go: Path) -> None:
    outcome = run(verify_go, "vectors", str(VECTORS))
    assert set(outcome) == {v["name"] for v in published()}
    for name, result in outcome.items():
        assert result == {"accepted": True, "wrongRejected": True}, name


def test_go_rejects_tampered_strings(verify_go: Path) -> None:
    pairs = []
    for vector in published():
        encoded = vector["encoded"]
        flipped = "A" if encoded[-3] != "A" else "B"
        pairs.append({"secret": vector["secret"], "encoded": encoded[:-3] + flipped + encoded[-2:]})
    assert run(verify_go, "check", stdin=pairs) == [False] * len(pairs)


def test_go_checks_bcrypt_from_libxcrypt(verify_go: Path) -> None:
    """bcrypt (for htpasswd): a `$2b$` string made by another implementation, libxcrypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # Python 3.11's binding of the system crypt(3)

    secret = "correct-horse-battery-staple-0123456789"
    encoded = crypt.crypt(secret, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # noqa: S324
    assert encoded.startswith("$2b$04$")
    pairs = [
        {"secret": secret, "encoded": encoded},
        {"secret": secret + "x", "encoded": encoded},
    ]
    assert run(verify_go, "check", stdin=pairs) == [True, False]


def test_go_reads_a_registry_document(verify_go: Path, tmp_path: Path) -> None:
    """The registry mode the e2e test uses against live registries: current hashes, and
    previous ones only before they expire."""
    by_name = {v["name"]: v for v in published()}
    a, b, c = by_name["sha256-ascii"], by_name["pbkdf2sha256-unicode"], by_name["argon2id-long"]
    document = {
        "kind": "ClientRegistry",
        "clients": [
            {"clientId": "a", "secret": {"hash": a["encoded"]}},
            {
                "clientId": "b",
                "secret": {"hash": a["encoded"]},
                "previousSecret": {"hash": b["encoded"], "expiresAt": "2999-01-01T00:00:00Z"},
            },
            {
                "clientId": "c",
                "secret": {"hash": a["encoded"]},
                "previousSecret": {"hash": c["encoded"], "expiresAt": "2000-01-01T00:00:00Z"},
            },
        ],
    }
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(document))
    presented = {"a": a["secret"], "b": b["secret"], "c": c["secret"], "unknown": a["secret"]}
    assert run(verify_go, "registry", str(path), stdin=presented) == {
        "a": True,
        "b": True,  # previous, not yet expired
        "c": False,  # previous, expired
        "unknown": False,
    }
