"""Hash strings the operator writes for the ApiClient registry.

Verification itself (malformed strings, cost bounds, constant time) is tested with the
credsmith-verify distribution, in verifier/tests/.
"""

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

import credsmith_verify.hashes
from credsmith.api.enums import HashAlgorithm
from credsmith.issuing import hashing
from credsmith.issuing.hashing import hash_secret, verify_secret
from tests.vectors import generate

SECRET = "Zq8'\"\\u-secret-\u00e9-0123456789abcdef"
VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "hashes.json"


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def encoded() -> dict[HashAlgorithm, str]:
    """One hash per algorithm (PBKDF2 at 600k iterations takes a while)."""
    return {algorithm: hash_secret(SECRET, algorithm) for algorithm in HashAlgorithm}


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_round_trip(encoded: dict[HashAlgorithm, str], algorithm: HashAlgorithm) -> None:
    assert verify_secret(SECRET, encoded[algorithm])
    assert not verify_secret(SECRET + "x", encoded[algorithm])
    assert not verify_secret("", encoded[algorithm])
    assert SECRET not in encoded[algorithm]


def test_verify_secret_is_the_verifiers() -> None:
    assert verify_secret is credsmith_verify.hashes.verify_secret


def test_sha256_encoding_is_the_ldap_scheme(encoded: dict[HashAlgorithm, str]) -> None:
    digest = hashlib.sha256(SECRET.encode()).digest()
    expected = "{SHA256}" + base64.b64encode(digest).decode()
    assert encoded[HashAlgorithm.SHA256] == expected
    assert hash_secret(SECRET, HashAlgorithm.SHA256) == expected  # unsalted: deterministic


def test_pbkdf2_encoding_is_a_phc_string(encoded: dict[HashAlgorithm, str]) -> None:
    text = encoded[HashAlgorithm.PBKDF2_SHA256]
    match = re.fullmatch(
        r"\$pbkdf2-sha256\$i=600000,l=32\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})", text
    )
    assert match is not None
    salt, digest = unb64(match[1]), unb64(match[2])
    assert hashing.PBKDF2_ITERATIONS == 600_000
    assert len(salt) == 16
    assert digest == hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, 600_000, 32)


def test_argon2id_encoding_is_the_standard_phc_string(encoded: dict[HashAlgorithm, str]) -> None:
    text = encoded[HashAlgorithm.ARGON2ID]
    match = re.fullmatch(
        r"\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", text
    )
    assert match is not None
    assert len(unb64(match[1])) == 16
    assert len(unb64(match[2])) == 32
    Argon2id.verify_phc_encoded(SECRET.encode(), text)  # another implementation accepts it


def test_salted_hashes_differ_each_time() -> None:
    first = hash_secret(SECRET, HashAlgorithm.ARGON2ID)
    second = hash_secret(SECRET, HashAlgorithm.ARGON2ID)
    assert first != second
    assert verify_secret(SECRET, first)
    assert verify_secret(SECRET, second)


def test_parameters_are_module_constants() -> None:
    assert (hashing.ARGON2_MEMORY_KIB, hashing.ARGON2_ITERATIONS, hashing.ARGON2_LANES) == (
        19456,
        2,
        1,
    )
    assert (hashing.SALT_BYTES, hashing.HASH_BYTES) == (16, 32)
    # What the operator writes is within what verifiers accept.
    assert hashing.PBKDF2_ITERATIONS <= hashing.MAX_PBKDF2_ITERATIONS
    assert hashing.ARGON2_MEMORY_KIB <= hashing.MAX_ARGON2_MEMORY_KIB


def published() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    return vectors


@pytest.mark.parametrize(
    "vector", [v for v in published() if v["writer"] == "credsmith"], ids=lambda v: v["name"]
)
def test_the_operator_still_writes_the_published_vectors(vector: dict[str, Any]) -> None:
    """With the vector's salt, today's writer gives the published string byte for byte: a
    format change shows here, and needs new vectors and a look at who reads the old ones."""
    salt = bytes.fromhex(vector["salt"]) if "salt" in vector else None
    algorithm = HashAlgorithm(vector["algorithm"])
    assert hash_secret(vector["secret"], algorithm, salt=salt) == vector["encoded"]


def test_the_published_file_is_what_the_generator_writes() -> None:
    assert published() == generate.vectors()


def test_the_operator_writes_exactly_the_verifiers_floors() -> None:
    """The verifier refuses costs below these as malformed: the operator writes no less
    (and, writing no more, its hashes cost what the verifier's floors promise)."""
    floors = credsmith_verify.hashes
    assert hashing.PBKDF2_ITERATIONS == floors.MIN_PBKDF2_ITERATIONS
    assert hashing.ARGON2_MEMORY_KIB == floors.MIN_ARGON2_MEMORY_KIB
    assert hashing.ARGON2_ITERATIONS == floors.MIN_ARGON2_ITERATIONS
    assert hashing.ARGON2_LANES == floors.MIN_ARGON2_LANES
