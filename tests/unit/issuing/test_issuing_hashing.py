"""Secret verifiers for the ApiClient registry."""

import base64
import hashlib
import re

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from credsmith.api.enums import HashAlgorithm
from credsmith.issuing import hashing
from credsmith.issuing.hashing import hash_secret, verify_secret

SECRET = "Zq8'\"\\u-secret-\u00e9-0123456789abcdef"


def b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def encoded() -> dict[HashAlgorithm, str]:
    """One verifier per algorithm (PBKDF2 at 600k iterations takes a while)."""
    return {algorithm: hash_secret(SECRET, algorithm) for algorithm in HashAlgorithm}


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_round_trip(encoded: dict[HashAlgorithm, str], algorithm: HashAlgorithm) -> None:
    assert verify_secret(SECRET, encoded[algorithm])


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_wrong_secret_fails(encoded: dict[HashAlgorithm, str], algorithm: HashAlgorithm) -> None:
    assert not verify_secret(SECRET + "x", encoded[algorithm])
    assert not verify_secret(SECRET[:-1], encoded[algorithm])
    assert not verify_secret("", encoded[algorithm])


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_encoding_never_contains_the_secret(
    encoded: dict[HashAlgorithm, str], algorithm: HashAlgorithm
) -> None:
    assert SECRET not in encoded[algorithm]


def test_sha256_encoding(encoded: dict[HashAlgorithm, str]) -> None:
    expected = "sha256$" + hashlib.sha256(SECRET.encode()).hexdigest()
    assert encoded[HashAlgorithm.SHA256] == expected
    assert hash_secret(SECRET, HashAlgorithm.SHA256) == expected  # unsalted: deterministic


def test_pbkdf2_encoding(encoded: dict[HashAlgorithm, str]) -> None:
    text = encoded[HashAlgorithm.PBKDF2_SHA256]
    match = re.fullmatch(r"pbkdf2-sha256\$600000\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", text)
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
    # Another implementation accepts it ...
    Argon2id.verify_phc_encoded(SECRET.encode(), text)
    # ... and ours accepts another implementation's string, with other parameters.
    other = Argon2id(
        salt=b"0123456789abcdef", length=32, iterations=1, lanes=2, memory_cost=1024
    ).derive_phc_encoded(SECRET.encode())
    assert verify_secret(SECRET, other)
    assert not verify_secret(SECRET + "x", other)


def test_salted_hashes_differ_each_time() -> None:
    first = hash_secret(SECRET, HashAlgorithm.ARGON2ID)
    second = hash_secret(SECRET, HashAlgorithm.ARGON2ID)
    assert first != second
    assert verify_secret(SECRET, first)
    assert verify_secret(SECRET, second)


def test_pbkdf2_with_other_costs_verifies() -> None:
    salt = b"saltsaltsaltsalt"
    digest = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, 1000, 32)
    text = f"pbkdf2-sha256$1000${b64(salt)}${b64(digest)}"
    assert verify_secret(SECRET, text)
    assert not verify_secret(SECRET + "x", text)
    # The iteration count is bound into the verification.
    assert not verify_secret(SECRET, f"pbkdf2-sha256$1001${b64(salt)}${b64(digest)}")


def valid_pbkdf2(iterations: int = 1000, salt: bytes = b"saltsaltsaltsalt") -> str:
    digest = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, iterations, 32)
    return f"pbkdf2-sha256${iterations}${b64(salt)}${b64(digest)}"


def valid_argon2(memory: int = 1024, passes: int = 1, lanes: int = 1) -> str:
    kdf = Argon2id(
        salt=b"0123456789abcdef", length=32, iterations=passes, lanes=lanes, memory_cost=memory
    )
    return kdf.derive_phc_encoded(SECRET.encode())


def non_canonical(text: str) -> str:
    """Set an unused low bit of the last base64 character: same bytes, different text."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    changed = text[:-1] + alphabet[alphabet.index(text[-1]) ^ 1]
    assert unb64(changed.rsplit("$", 1)[1]) == unb64(text.rsplit("$", 1)[1])
    return changed


SHA = "sha256$" + hashlib.sha256(SECRET.encode()).hexdigest()
PBKDF2 = valid_pbkdf2()
ARGON2 = valid_argon2()


def test_the_bases_of_the_malformed_cases_are_valid() -> None:
    """So that each malformed case below fails for its own defect."""
    assert verify_secret(SECRET, SHA)
    assert verify_secret(SECRET, PBKDF2)
    assert verify_secret(SECRET, ARGON2)


MALFORMED = {
    "empty": "",
    "scheme only": "sha256$",
    "unknown scheme": "md5$" + hashlib.md5(SECRET.encode()).hexdigest(),  # noqa: S324
    "upper-case scheme": SHA.upper(),
    "upper-case hex": "sha256$" + SHA[7:].upper(),
    "short digest": SHA[:-2],
    "non-hex digest": SHA[:-1] + "g",
    "trailing newline": SHA + "\n",
    "leading space": " " + SHA,
    "pbkdf2 zero iterations": "pbkdf2-sha256$0$" + PBKDF2.split("$", 2)[2],
    "pbkdf2 leading zero": PBKDF2.replace("$1000$", "$01000$"),
    "pbkdf2 non-ascii digits": PBKDF2.replace("$1000$", "$\u0661\u0660\u0660\u0660$"),
    "pbkdf2 too many iterations": valid_pbkdf2().replace("$1000$", "$10000001$"),
    "pbkdf2 short salt": valid_pbkdf2(salt=b"short"),
    "pbkdf2 padded base64": PBKDF2 + "=",
    "pbkdf2 bad base64": PBKDF2[:-3] + "!!!",
    "pbkdf2 non-canonical base64": non_canonical(PBKDF2),
    "argon2 non-canonical base64": non_canonical(ARGON2),
    "pbkdf2 missing field": PBKDF2.rsplit("$", 1)[0],
    "pbkdf2 extra field": PBKDF2 + "$AAAA",
    "argon2 version 16": ARGON2.replace("v=19", "v=16"),
    "argon2i": ARGON2.replace("$argon2id$", "$argon2i$"),
    "argon2 zero passes": ARGON2.replace("t=1", "t=0"),
    "argon2 zero lanes": ARGON2.replace("p=1", "p=0"),
    "argon2 memory below 8 per lane": ARGON2.replace("m=1024", "m=7"),
    "argon2 huge memory": ARGON2.replace("m=1024", "m=4294967295"),
    "argon2 too many passes": ARGON2.replace("t=1", "t=100000"),
    "argon2 too many lanes": ARGON2.replace("p=1", "p=255"),
    "argon2 parameters reordered": ARGON2.replace("m=1024,t=1,p=1", "t=1,m=1024,p=1"),
    "argon2 no salt": re.sub(r"\$[^$]+(\$[^$]+)$", r"$\1", ARGON2),
    "argon2 truncated hash": ARGON2[:-30],
    "argon2 with padding": ARGON2 + "=",
}


@pytest.mark.timeout(5)
@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_encodings_do_not_verify(text: str) -> None:
    assert verify_secret(SECRET, text) is False


@pytest.mark.parametrize("value", [None, 42, b"sha256$00"], ids=["None", "int", "bytes"])
def test_wrong_types_do_not_raise(value: object) -> None:
    assert verify_secret(SECRET, value) is False  # type: ignore[arg-type]
    assert verify_secret(value, SHA) is False  # type: ignore[arg-type]


def test_unencodable_secret_does_not_raise() -> None:
    assert verify_secret("\ud800", SHA) is False


def test_parameters_are_module_constants() -> None:
    assert (hashing.ARGON2_MEMORY_KIB, hashing.ARGON2_ITERATIONS, hashing.ARGON2_LANES) == (
        19456,
        2,
        1,
    )
    assert (hashing.SALT_BYTES, hashing.HASH_BYTES) == (16, 32)


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The final comparison goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr(hashing.hmac, "compare_digest", spy)
    for text in (SHA, PBKDF2, ARGON2):
        assert verify_secret(SECRET, text)
    assert len(calls) == 3


@pytest.mark.parametrize(
    ("constant", "limit", "within", "beyond"),
    [
        ("MAX_PBKDF2_ITERATIONS", 1000, valid_pbkdf2(1000), valid_pbkdf2(1001)),
        ("MAX_ARGON2_MEMORY_KIB", 1024, valid_argon2(memory=1024), valid_argon2(memory=1032)),
        ("MAX_ARGON2_ITERATIONS", 1, valid_argon2(passes=1), valid_argon2(passes=2)),
        ("MAX_ARGON2_LANES", 1, valid_argon2(lanes=1), valid_argon2(lanes=2)),
    ],
)
def test_cost_bounds_are_enforced(
    monkeypatch: pytest.MonkeyPatch, constant: str, limit: int, within: str, beyond: str
) -> None:
    """With a bound lowered, a hash at the bound verifies and one past it does not."""
    monkeypatch.setattr(hashing, constant, limit)
    assert verify_secret(SECRET, within)
    assert not verify_secret(SECRET, beyond)
