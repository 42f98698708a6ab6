"""Verifiers of client secrets for the ApiClient registry: an API server checks a presented
secret against them without ever holding the plaintext.

Every encoding names its scheme and parameters, PHC-string style, so `verify_secret` needs
only the stored string, and old hashes stay verifiable after the defaults below change.

- SHA256: "sha256$<hex digest>", unsalted and fast. That is right for our secrets: they are
  random with at least 128 bits of entropy, so there is no dictionary to precompute and brute
  force is hopeless whatever the hash speed; salt and work factor defend weak (human) secrets.
- PBKDF2SHA256: "pbkdf2-sha256$<iterations>$<salt>$<hash>", for FIPS-minded environments.
- Argon2id: the standard PHC string "$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>",
  for policies that demand a memory-hard hash whatever the secret's entropy.

Salts and hashes are standard base64 without padding, as in the PHC string format.
"""

import base64
import binascii
import hashlib
import hmac
import re
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from credsmith.api.enums import HashAlgorithm

SALT_BYTES = 16
HASH_BYTES = 32

# OWASP Password Storage Cheat Sheet: PBKDF2-HMAC-SHA256 with 600,000 iterations.
PBKDF2_ITERATIONS = 600_000
# OWASP: Argon2id with 19 MiB of memory, 2 passes, 1 lane.
ARGON2_MEMORY_KIB = 19_456
ARGON2_ITERATIONS = 2
ARGON2_LANES = 1

# Bounds on the parameters verify_secret accepts. A stored hash may use other costs than ours,
# but never so high that one verification could exhaust an API server's CPU or memory.
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_ARGON2_MEMORY_KIB = 1024 * 1024
MAX_ARGON2_ITERATIONS = 64
MAX_ARGON2_LANES = 16
_MIN_SALT_BYTES = 8
_MIN_HASH_BYTES = 16
_MAX_HASH_BYTES = 64

_SHA256_PREFIX = "sha256$"
_PBKDF2_SCHEME = "pbkdf2-sha256"
_SHA256_RE = re.compile(r"sha256\$([0-9a-f]{64})")
_PBKDF2_RE = re.compile(r"pbkdf2-sha256\$([1-9][0-9]{0,9})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)")
_ARGON2_RE = re.compile(
    r"\$argon2id\$v=19\$m=([1-9][0-9]{0,9}),t=([1-9][0-9]{0,9}),p=([1-9][0-9]{0,9})"
    r"\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)"
)


def hash_secret(secret: str, algorithm: HashAlgorithm) -> str:
    """A self-describing verifier of `secret`, salted with fresh randomness where salted."""
    data = secret.encode("utf-8")
    if algorithm is HashAlgorithm.SHA256:
        return _SHA256_PREFIX + hashlib.sha256(data).hexdigest()
    salt = secrets.token_bytes(SALT_BYTES)
    if algorithm is HashAlgorithm.PBKDF2_SHA256:
        derived = _pbkdf2(data, salt, PBKDF2_ITERATIONS, HASH_BYTES)
        return f"{_PBKDF2_SCHEME}${PBKDF2_ITERATIONS}${_b64(salt)}${_b64(derived)}"
    if algorithm is HashAlgorithm.ARGON2ID:
        kdf = Argon2id(
            salt=salt,
            length=HASH_BYTES,
            iterations=ARGON2_ITERATIONS,
            lanes=ARGON2_LANES,
            memory_cost=ARGON2_MEMORY_KIB,
        )
        return kdf.derive_phc_encoded(data)
    raise ValueError(f"unsupported hash algorithm: {algorithm!r}")  # pragma: no cover


def verify_secret(secret: str, encoded: str) -> bool:
    """Whether `secret` matches the verifier `encoded`.

    Digests are compared in constant time. Never raises: a malformed encoding, an unknown
    scheme or out-of-bounds parameters simply do not verify.
    """
    try:
        data = secret.encode("utf-8")
        expected, actual = _expected_and_actual(data, encoded)
    except (ValueError, TypeError, OverflowError, AttributeError):
        return False
    if expected is None or actual is None:
        return False
    return hmac.compare_digest(expected, actual)


def _expected_and_actual(data: bytes, encoded: str) -> tuple[bytes | None, bytes | None]:
    """The stored digest and the digest of `data` under the stored parameters, or Nones."""
    if (match := _SHA256_RE.fullmatch(encoded)) is not None:
        return bytes.fromhex(match[1]), hashlib.sha256(data).digest()
    if (match := _PBKDF2_RE.fullmatch(encoded)) is not None:
        iterations = int(match[1])
        salt, expected = _unb64(match[2]), _unb64(match[3])
        if salt is None or expected is None or not _sizes_ok(salt, expected):
            return None, None
        if iterations > MAX_PBKDF2_ITERATIONS:
            return None, None
        return expected, _pbkdf2(data, salt, iterations, len(expected))
    if (match := _ARGON2_RE.fullmatch(encoded)) is not None:
        memory, passes, lanes = int(match[1]), int(match[2]), int(match[3])
        salt, expected = _unb64(match[4]), _unb64(match[5])
        if salt is None or expected is None or not _sizes_ok(salt, expected):
            return None, None
        if (
            memory > MAX_ARGON2_MEMORY_KIB
            or passes > MAX_ARGON2_ITERATIONS
            or lanes > MAX_ARGON2_LANES
            or memory < 8 * lanes
        ):
            return None, None
        kdf = Argon2id(
            salt=salt, length=len(expected), iterations=passes, lanes=lanes, memory_cost=memory
        )
        return expected, kdf.derive(data)
    return None, None


def _sizes_ok(salt: bytes, digest: bytes) -> bool:
    return len(salt) >= _MIN_SALT_BYTES and _MIN_HASH_BYTES <= len(digest) <= _MAX_HASH_BYTES


def _pbkdf2(data: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=length, salt=salt, iterations=iterations)
    return kdf.derive(data)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    """Decode unpadded standard base64, accepting only the canonical encoding."""
    if len(text) % 4 == 1:
        return None
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        return None
    return data if _b64(data) == text else None
