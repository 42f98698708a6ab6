"""Hashes of client secrets for the ApiClient registry: an API server checks a presented
secret against them without ever holding the plaintext.

The strings are ones that libraries of other languages already parse (the credsmith-verify
distribution, `credsmith_verify.hashes`, says which and why):

- SHA256: ``{SHA256}<base64 digest>`` (RFC 2307 / LDAP ``userPassword`` scheme syntax),
  unsalted and fast. That is right for our secrets: they are random with at least 128 bits
  of entropy, so there is no dictionary to precompute and brute force is hopeless whatever
  the hash speed; salt and work factor defend weak (human) secrets.
- PBKDF2SHA256: the PHC string ``$pbkdf2-sha256$i=<iterations>,l=<length>$<salt>$<hash>``,
  for FIPS-minded environments.
- Argon2id: the PHC string ``$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>``,
  for policies that demand a memory-hard hash whatever the secret's entropy.

Every string names its scheme and parameters, so verifying needs only the string, and old
hashes stay verifiable after the defaults below change. `verify_secret` (from
credsmith-verify) also accepts what credsmith 0.1.0 wrote (``sha256$<hex>``,
``pbkdf2-sha256$<iterations>$<salt>$<hash>``).
"""

import hashlib
import secrets

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from credsmith.api.enums import HashAlgorithm
from credsmith_verify.hashes import (
    MAX_ARGON2_ITERATIONS,
    MAX_ARGON2_LANES,
    MAX_ARGON2_MEMORY_KIB,
    MAX_PBKDF2_ITERATIONS,
    encode_pbkdf2_sha256,
    encode_sha256,
    pbkdf2_sha256,
    verify_secret,
)

__all__ = [
    "ARGON2_ITERATIONS",
    "ARGON2_LANES",
    "ARGON2_MEMORY_KIB",
    "HASH_BYTES",
    "MAX_ARGON2_ITERATIONS",
    "MAX_ARGON2_LANES",
    "MAX_ARGON2_MEMORY_KIB",
    "MAX_PBKDF2_ITERATIONS",
    "PBKDF2_ITERATIONS",
    "SALT_BYTES",
    "hash_secret",
    "verify_secret",
]

SALT_BYTES = 16
HASH_BYTES = 32

# OWASP Password Storage Cheat Sheet: PBKDF2-HMAC-SHA256 with 600,000 iterations.
PBKDF2_ITERATIONS = 600_000
# OWASP: Argon2id with 19 MiB of memory, 2 passes, 1 lane.
ARGON2_MEMORY_KIB = 19_456
ARGON2_ITERATIONS = 2
ARGON2_LANES = 1


def hash_secret(secret: str, algorithm: HashAlgorithm, *, salt: bytes | None = None) -> str:
    """A self-describing hash string of `secret`, salted (where salted) with fresh randomness,
    or with `salt` when given (for test vectors only: a salt must never be reused)."""
    data = secret.encode("utf-8")
    if algorithm is HashAlgorithm.SHA256:
        return encode_sha256(hashlib.sha256(data).digest())
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    if algorithm is HashAlgorithm.PBKDF2_SHA256:
        digest = pbkdf2_sha256(data, salt, PBKDF2_ITERATIONS, HASH_BYTES)
        return encode_pbkdf2_sha256(PBKDF2_ITERATIONS, salt, digest)
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
