"""verify_secret: the published vectors, other writers' strings, and everything malformed."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from credsmith_verify import hashes
from credsmith_verify.hashes import decoy_like, is_known_hash, verify_secret

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "hashes.json"
SECRET = "Zq8'\"\\u-secret-\u00e9-0123456789abcdef"


def load_vectors() -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]
    return vectors


def b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("vector", load_vectors(), ids=lambda v: v["name"])
def test_published_vectors_verify_and_nothing_else_does(
    vector: dict[str, Any], operator_floors: None
) -> None:
    secret, encoded = vector["secret"], vector["encoded"]
    assert verify_secret(secret, encoded)
    assert not verify_secret(secret + "x", encoded)
    assert not verify_secret(secret[:-1], encoded)
    assert not verify_secret("", encoded)


def test_the_vectors_cover_every_scheme_and_writer() -> None:
    seen = {(v["algorithm"], v["writer"]) for v in load_vectors()}
    for algorithm in ("SHA256", "PBKDF2SHA256", "Argon2id"):
        assert (algorithm, "credsmith") in seen
    assert ("SHA256", "credsmith-0.1.0") in seen
    assert ("PBKDF2SHA256", "credsmith-0.1.0") in seen


def test_current_strings_have_the_standard_shapes() -> None:
    current = {v["algorithm"]: v["encoded"] for v in load_vectors() if v["writer"] == "credsmith"}
    assert re.fullmatch(r"\{SHA256\}[A-Za-z0-9+/]{43}=", current["SHA256"])
    assert re.fullmatch(
        r"\$pbkdf2-sha256\$i=600000,l=32\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}",
        current["PBKDF2SHA256"],
    )
    assert re.fullmatch(
        r"\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}",
        current["Argon2id"],
    )


def test_sha256_is_the_ldap_scheme() -> None:
    digest = hashlib.sha256(SECRET.encode()).digest()
    text = "{SHA256}" + base64.b64encode(digest).decode()
    assert verify_secret(SECRET, text)
    assert hashes.encode_sha256(digest) == text


def test_pbkdf2_phc_string_from_another_writer() -> None:
    salt = b"saltsaltsaltsalt"
    digest = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, 1000, 32)
    for params in ("i=1000", "i=1000,l=32"):
        text = f"$pbkdf2-sha256${params}${b64(salt)}${b64(digest)}"
        assert verify_secret(SECRET, text)
        assert not verify_secret(SECRET + "x", text)
    # The iteration count and the length are bound into the verification.
    assert not verify_secret(SECRET, f"$pbkdf2-sha256$i=1001${b64(salt)}${b64(digest)}")
    assert not verify_secret(SECRET, f"$pbkdf2-sha256$i=1000,l=31${b64(salt)}${b64(digest)}")


def test_argon2id_from_another_implementation() -> None:
    other = Argon2id(
        salt=b"0123456789abcdef", length=32, iterations=1, lanes=2, memory_cost=1024
    ).derive_phc_encoded(SECRET.encode())
    assert verify_secret(SECRET, other)
    assert not verify_secret(SECRET + "x", other)


def valid_pbkdf2(iterations: int = 1000, salt: bytes = b"saltsaltsaltsalt") -> str:
    digest = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, iterations, 32)
    return f"$pbkdf2-sha256$i={iterations},l=32${b64(salt)}${b64(digest)}"


def legacy_pbkdf2(iterations: int = 1000, salt: bytes = b"saltsaltsaltsalt") -> str:
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


SHA = "{SHA256}" + base64.b64encode(hashlib.sha256(SECRET.encode()).digest()).decode()
LEGACY_SHA = "sha256$" + hashlib.sha256(SECRET.encode()).hexdigest()
PBKDF2 = valid_pbkdf2()
LEGACY_PBKDF2 = legacy_pbkdf2()
ARGON2 = valid_argon2()


def test_the_bases_of_the_malformed_cases_are_valid() -> None:
    """So that each malformed case below fails for its own defect."""
    for text in (SHA, LEGACY_SHA, PBKDF2, LEGACY_PBKDF2, ARGON2):
        assert verify_secret(SECRET, text), text
        assert is_known_hash(text)


MALFORMED = {
    "empty": "",
    "scheme only": "{SHA256}",
    "unknown scheme": "{MD5}" + base64.b64encode(hashlib.md5(SECRET.encode()).digest()).decode(),  # noqa: S324
    "lower-case scheme": SHA.replace("{SHA256}", "{sha256}"),
    "sha256 unpadded": SHA.rstrip("="),
    "sha256 non-canonical": SHA[:-2] + chr(ord(SHA[-2]) ^ 1) + "=",
    "sha256 short": "{SHA256}" + base64.b64encode(bytes(31)).decode(),
    "sha256 hex": "{SHA256}" + hashlib.sha256(SECRET.encode()).hexdigest(),
    "legacy upper-case scheme": LEGACY_SHA.upper(),
    "legacy upper-case hex": "sha256$" + LEGACY_SHA[7:].upper(),
    "legacy short digest": LEGACY_SHA[:-2],
    "legacy non-hex digest": LEGACY_SHA[:-1] + "g",
    "trailing newline": SHA + "\n",
    "leading space": " " + SHA,
    "pbkdf2 zero iterations": PBKDF2.replace("i=1000", "i=0"),
    "pbkdf2 leading zero": PBKDF2.replace("i=1000", "i=01000"),
    "pbkdf2 non-ascii digits": PBKDF2.replace("i=1000", "i=\u0661\u0660\u0660\u0660"),
    "pbkdf2 too many iterations": PBKDF2.replace("i=1000", "i=10000001"),
    "pbkdf2 no iterations": PBKDF2.replace("i=1000,", ""),
    "pbkdf2 parameters reordered": PBKDF2.replace("i=1000,l=32", "l=32,i=1000"),
    "pbkdf2 unknown parameter": PBKDF2.replace("l=32", "l=32,x=1"),
    "pbkdf2 no leading dollar": PBKDF2[1:],
    "pbkdf2 short salt": valid_pbkdf2(salt=b"short"),
    "pbkdf2 padded base64": PBKDF2 + "=",
    "pbkdf2 bad base64": PBKDF2[:-3] + "!!!",
    "pbkdf2 url-safe base64": PBKDF2.replace("/", "_").replace("+", "-")
    if ("/" in PBKDF2 or "+" in PBKDF2)
    else PBKDF2[:-1] + "_",
    "pbkdf2 non-canonical base64": non_canonical(PBKDF2),
    "pbkdf2 missing field": PBKDF2.rsplit("$", 1)[0],
    "pbkdf2 extra field": PBKDF2 + "$AAAA",
    "legacy pbkdf2 zero iterations": "pbkdf2-sha256$0$" + LEGACY_PBKDF2.split("$", 2)[2],
    "legacy pbkdf2 too many iterations": LEGACY_PBKDF2.replace("$1000$", "$10000001$"),
    "legacy pbkdf2 non-canonical base64": non_canonical(LEGACY_PBKDF2),
    "argon2 non-canonical base64": non_canonical(ARGON2),
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


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_encodings_do_not_verify(text: str) -> None:
    assert verify_secret(SECRET, text) is False
    assert is_known_hash(text) is False


@pytest.mark.parametrize("value", [None, 42, b"sha256$00"], ids=["None", "int", "bytes"])
def test_wrong_types_do_not_raise(value: object) -> None:
    assert verify_secret(SECRET, value) is False  # type: ignore[arg-type]
    assert verify_secret(value, SHA) is False  # type: ignore[arg-type]


def test_unencodable_secret_does_not_raise() -> None:
    assert verify_secret("\ud800", SHA) is False


def test_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The final comparison goes through hmac.compare_digest."""
    calls: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return a == b

    monkeypatch.setattr("credsmith_verify.hashes.hmac.compare_digest", spy)
    texts = (SHA, LEGACY_SHA, PBKDF2, LEGACY_PBKDF2, ARGON2)
    for text in texts:
        assert verify_secret(SECRET, text)
    assert len(calls) == len(texts)


@pytest.mark.parametrize(
    ("constant", "limit", "within", "beyond"),
    [
        ("MAX_PBKDF2_ITERATIONS", 1000, valid_pbkdf2(1000), valid_pbkdf2(1001)),
        ("MAX_PBKDF2_ITERATIONS", 1000, legacy_pbkdf2(1000), legacy_pbkdf2(1001)),
        ("MAX_ARGON2_MEMORY_KIB", 1024, valid_argon2(memory=1024), valid_argon2(memory=1032)),
        ("MAX_ARGON2_ITERATIONS", 1, valid_argon2(passes=1), valid_argon2(passes=2)),
        ("MAX_ARGON2_LANES", 1, valid_argon2(lanes=1), valid_argon2(lanes=2)),
    ],
)
def test_cost_bounds_are_enforced(
    monkeypatch: pytest.MonkeyPatch, constant: str, limit: int, within: str, beyond: str
) -> None:
    """With a bound lowered, a hash at the bound verifies and one past it does not."""
    monkeypatch.setattr(hashes, constant, limit)
    assert verify_secret(SECRET, within)
    assert not verify_secret(SECRET, beyond)


@pytest.mark.parametrize(
    "text", [SHA, LEGACY_SHA, PBKDF2, LEGACY_PBKDF2, ARGON2], ids=lambda t: t[:14]
)
def test_decoys_have_the_same_scheme_and_costs_but_not_the_secret(text: str) -> None:
    decoy = decoy_like(text)
    assert is_known_hash(decoy)
    assert not verify_secret(SECRET, decoy)

    original, copy = hashes._parse(text), hashes._parse(decoy)
    assert original is not None
    assert copy is not None

    def costs(parsed: hashes._Parsed) -> tuple[str, int, int, int, int]:
        length = len(parsed.expected)
        return (parsed.scheme, parsed.iterations, parsed.memory_kib, parsed.lanes, length)

    assert costs(copy) == costs(original)


def test_decoy_of_garbage_raises() -> None:
    with pytest.raises(ValueError, match="not a known hash string"):
        decoy_like("md5$abc")


def pbkdf2_at(iterations: int) -> str:
    salt = b"saltsaltsaltsalt"
    digest = hashlib.pbkdf2_hmac("sha256", SECRET.encode(), salt, iterations, 32)
    return f"$pbkdf2-sha256$i={iterations},l=32${b64(salt)}${b64(digest)}"


WEAK = {
    "pbkdf2 i=1": lambda: pbkdf2_at(1),
    "pbkdf2 one below the floor": lambda: pbkdf2_at(599_999),
    "legacy pbkdf2 i=1000": lambda: legacy_pbkdf2(1000),
    "argon2 m=8,t=1": lambda: valid_argon2(memory=8, passes=1),
    "argon2 memory below": lambda: valid_argon2(memory=19_455, passes=2),
    "argon2 one pass": lambda: valid_argon2(memory=19_456, passes=1),
}


@pytest.mark.parametrize("make", list(WEAK.values()), ids=list(WEAK))
def test_costs_below_the_operators_are_malformed(make: Any, operator_floors: None) -> None:
    """A string weaker than what the operator writes (planted to make a value cheap to
    brute-force) neither verifies nor counts as a known hash, nor gives a decoy."""
    text = make()
    assert not verify_secret(SECRET, text)
    assert not is_known_hash(text)
    assert hashes.cost_class(text) is None
    with pytest.raises(ValueError, match="not a known hash string"):
        decoy_like(text)


def test_costs_at_the_floor_verify(operator_floors: None) -> None:
    for text in (
        valid_argon2(memory=19_456, passes=2),
        valid_argon2(memory=19_456, passes=2, lanes=2),
        legacy_pbkdf2(600_000),
    ):
        assert verify_secret(SECRET, text), text
        assert not verify_secret(SECRET + "x", text)


def test_cost_classes_tell_costs_apart_but_not_salts() -> None:
    assert hashes.cost_class(valid_pbkdf2(1000)) == ("pbkdf2-sha256", 1000, 0, 0, 32)
    assert hashes.cost_class(valid_pbkdf2(1000, salt=b"othersaltothersa")) == hashes.cost_class(
        valid_pbkdf2(1000)
    )
    assert hashes.cost_class(legacy_pbkdf2(1000)) == hashes.cost_class(valid_pbkdf2(1000))
    assert hashes.cost_class(valid_argon2(passes=2)) != hashes.cost_class(valid_argon2())
    assert hashes.cost_class(SHA) == hashes.cost_class(LEGACY_SHA)
    assert hashes.cost_class("md5$abc") is None
