"""Check a presented secret against the hash strings the credsmith operator writes.

The strings are ones that libraries of other languages already parse:

- SHA256: ``{SHA256}<base64 of the digest>``, the RFC 2307 scheme-prefix syntax of LDAP
  ``userPassword`` values as OpenLDAP (pw-sha2), 389 Directory Server and Dovecot write it.
  No PHC identifier exists for a bare digest. Unsalted and fast on purpose: the operator's
  secrets are random with at least 128 bits of entropy, so there is no dictionary to
  precompute and no work factor would change the odds of brute force.
- PBKDF2SHA256: ``$pbkdf2-sha256$i=<iterations>,l=<length>$<salt>$<hash>``, the PHC string
  format with its parameter syntax (``name=value``), as RustCrypto's ``pbkdf2`` crate writes
  it and Node's ``@phc/format`` / ``@phc/pbkdf2`` read it.
- Argon2id: the reference PHC string ``$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>``.

Salts and hashes of the PHC strings are standard base64 without padding (the PHC "B64").

Strings written by credsmith 0.1.0 keep verifying: ``sha256$<hex>`` and
``pbkdf2-sha256$<iterations>$<salt>$<hash>``.

`verify_secret` never raises and compares in constant time. Parameters are bounded, so a
hash string from an untrusted place cannot make one verification cost more than
`MAX_PBKDF2_ITERATIONS` or `MAX_ARGON2_MEMORY_KIB`, nor less than what the operator writes
(`MIN_PBKDF2_ITERATIONS`, `MIN_ARGON2_*`): a weaker string (``i=1``, ``m=8,t=1``) is
malformed, as one planted to make a value cheap to brute-force would be.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

SHA256_PREFIX = "{SHA256}"
PBKDF2_SHA256_ID = "pbkdf2-sha256"
ARGON2ID_ID = "argon2id"
ARGON2_VERSION = 19

# Bounds on the parameters verify_secret accepts. A stored hash may use other costs than the
# operator's, but never so high that one verification could exhaust a server's CPU or memory.
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_ARGON2_MEMORY_KIB = 1024 * 1024
MAX_ARGON2_ITERATIONS = 64
MAX_ARGON2_LANES = 16
# Floors: what the operator writes (OWASP Password Storage Cheat Sheet). A string below them
# is refused as malformed; the operator never writes one.
MIN_PBKDF2_ITERATIONS = 600_000
MIN_ARGON2_MEMORY_KIB = 19_456
MIN_ARGON2_ITERATIONS = 2
MIN_ARGON2_LANES = 1
MIN_SALT_BYTES = 8
MIN_HASH_BYTES = 16
MAX_HASH_BYTES = 64

_DEC = r"([1-9][0-9]{0,9})"
_B64 = r"([A-Za-z0-9+/]+)"
_SHA256_RE = re.compile(r"\{SHA256\}([A-Za-z0-9+/]{43}=)")
_PBKDF2_RE = re.compile(rf"\$pbkdf2-sha256\$i={_DEC}(?:,l={_DEC})?\${_B64}\${_B64}")
_ARGON2_RE = re.compile(rf"\$argon2id\$v=19\$m={_DEC},t={_DEC},p={_DEC}\${_B64}\${_B64}")
# What credsmith 0.1.0 wrote.
_LEGACY_SHA256_RE = re.compile(r"sha256\$([0-9a-f]{64})")
_LEGACY_PBKDF2_RE = re.compile(rf"pbkdf2-sha256\${_DEC}\${_B64}\${_B64}")

_DECOY_SECRET = b"credsmith-decoy"
_DECOY_SALT = b"credsmith-decoy!"


@dataclass(frozen=True)
class _Parsed:
    scheme: str  # "sha256", "pbkdf2-sha256" or "argon2id"
    expected: bytes
    salt: bytes = b""
    iterations: int = 0  # PBKDF2 iterations, Argon2 passes
    memory_kib: int = 0
    lanes: int = 0


def verify_secret(secret: str, encoded: str) -> bool:
    """Whether `secret` matches the hash string `encoded`.

    Never raises: a malformed string, an unknown scheme or out-of-bounds parameters simply
    do not verify. The final comparison is constant-time.
    """
    try:
        data = secret.encode("utf-8")
        parsed = _parse(encoded)
        if parsed is None:
            return False
        actual = _derive(parsed, data)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return False
    return hmac.compare_digest(parsed.expected, actual)


def is_known_hash(encoded: str) -> bool:
    """Whether `encoded` is a well-formed hash string with parameters within bounds."""
    try:
        return _parse(encoded) is not None
    except (ValueError, TypeError, OverflowError, AttributeError):
        return False


CostClass = tuple[str, int, int, int, int]


def cost_class(encoded: str) -> CostClass | None:
    """What checking a secret against `encoded` costs: scheme, iterations, memory, lanes and
    hash length (never the salt or the hash). None for a string that is not a known hash."""
    try:
        parsed = _parse(encoded)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return None
    if parsed is None:
        return None
    length = len(parsed.expected)
    return (parsed.scheme, parsed.iterations, parsed.memory_kib, parsed.lanes, length)


def decoy_like(encoded: str) -> str:
    """A hash string of a fixed value in `encoded`'s scheme with its costs and lengths.

    Checking a presented secret against it costs what checking against `encoded` costs, so
    a server can spend the same time on an unknown client ID as on a known one. Raises
    ValueError if `encoded` is not a known hash string.
    """
    parsed = _parse(encoded)
    if parsed is None:
        raise ValueError("not a known hash string")
    if parsed.scheme != "sha256":
        parsed = replace(parsed, salt=_DECOY_SALT)
    decoy = replace(parsed, expected=_derive(parsed, _DECOY_SECRET))
    return _encode(decoy)


# ---- encodings, shared with the operator that writes them --------------------------------


def b64_phc(data: bytes) -> str:
    """Standard base64 without padding, as in the PHC string format."""
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def encode_sha256(digest: bytes) -> str:
    return SHA256_PREFIX + base64.b64encode(digest).decode("ascii")


def encode_pbkdf2_sha256(iterations: int, salt: bytes, digest: bytes) -> str:
    return f"${PBKDF2_SHA256_ID}$i={iterations},l={len(digest)}${b64_phc(salt)}${b64_phc(digest)}"


def pbkdf2_sha256(data: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=salt, iterations=iterations)
    return kdf.derive(data)


# ---- parsing ------------------------------------------------------------------------------


def _parse(encoded: str) -> _Parsed | None:
    if (match := _SHA256_RE.fullmatch(encoded)) is not None:
        digest = base64.b64decode(match[1], validate=True)
        return _Parsed("sha256", digest) if encode_sha256(digest) == encoded else None
    if (match := _LEGACY_SHA256_RE.fullmatch(encoded)) is not None:
        return _Parsed("sha256", bytes.fromhex(match[1]))
    if (match := _PBKDF2_RE.fullmatch(encoded)) is not None:
        parsed = _pbkdf2(match[1], match[3], match[4])
        if parsed is None or (match[2] is not None and int(match[2]) != len(parsed.expected)):
            return None
        return parsed
    if (match := _LEGACY_PBKDF2_RE.fullmatch(encoded)) is not None:
        return _pbkdf2(match[1], match[2], match[3])
    if (match := _ARGON2_RE.fullmatch(encoded)) is not None:
        memory, passes, lanes = int(match[1]), int(match[2]), int(match[3])
        salt, expected = _unb64(match[4]), _unb64(match[5])
        if salt is None or expected is None or not _sizes_ok(salt, expected):
            return None
        if not (
            MIN_ARGON2_MEMORY_KIB <= memory <= MAX_ARGON2_MEMORY_KIB
            and MIN_ARGON2_ITERATIONS <= passes <= MAX_ARGON2_ITERATIONS
            and MIN_ARGON2_LANES <= lanes <= MAX_ARGON2_LANES
            and memory >= 8 * lanes
        ):
            return None
        return _Parsed("argon2id", expected, salt, passes, memory, lanes)
    return None


def _pbkdf2(iterations_text: str, salt_text: str, hash_text: str) -> _Parsed | None:
    iterations = int(iterations_text)
    salt, expected = _unb64(salt_text), _unb64(hash_text)
    if salt is None or expected is None or not _sizes_ok(salt, expected):
        return None
    if not MIN_PBKDF2_ITERATIONS <= iterations <= MAX_PBKDF2_ITERATIONS:
        return None
    return _Parsed("pbkdf2-sha256", expected, salt, iterations)


def _derive(parsed: _Parsed, data: bytes) -> bytes:
    length = len(parsed.expected)
    if parsed.scheme == "sha256":
        return hashlib.sha256(data).digest()
    if parsed.scheme == "pbkdf2-sha256":
        return pbkdf2_sha256(data, parsed.salt, parsed.iterations, length)
    kdf = Argon2id(
        salt=parsed.salt,
        length=length,
        iterations=parsed.iterations,
        lanes=parsed.lanes,
        memory_cost=parsed.memory_kib,
    )
    return kdf.derive(data)


def _encode(parsed: _Parsed) -> str:
    if parsed.scheme == "sha256":
        return encode_sha256(parsed.expected)
    if parsed.scheme == "pbkdf2-sha256":
        return encode_pbkdf2_sha256(parsed.iterations, parsed.salt, parsed.expected)
    return (
        f"${ARGON2ID_ID}$v={ARGON2_VERSION}$m={parsed.memory_kib},t={parsed.iterations},"
        f"p={parsed.lanes}${b64_phc(parsed.salt)}${b64_phc(parsed.expected)}"
    )


def _sizes_ok(salt: bytes, digest: bytes) -> bool:
    return len(salt) >= MIN_SALT_BYTES and MIN_HASH_BYTES <= len(digest) <= MAX_HASH_BYTES


def _unb64(text: str) -> bytes | None:
    """Decode unpadded standard base64, accepting only the canonical encoding."""
    if len(text) % 4 == 1:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    return data if b64_phc(data) == text else None
