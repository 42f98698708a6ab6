"""Random secrets, optionally decorated GitHub-token style with a prefix and a CRC32 checksum.

The checksum lets a secret scanner recognise one of our tokens offline (prefix + valid CRC)
with almost no false positives; it adds no secrecy and needs none.
"""

import secrets
import zlib

from credsmith.api.alphabets import (
    ALPHABETS,
    CHECKSUM_LENGTH,
    MAX_LENGTH,
    MIN_ENTROPY_BITS,
    MIN_LENGTH,
    min_length,
)
from credsmith.api.enums import SecretAlphabet

_BASE62 = ALPHABETS[SecretAlphabet.ALPHANUMERIC]


def new_secret(
    length: int,
    alphabet: SecretAlphabet,
    prefix: str | None = None,
    checksum: bool = False,
) -> str:
    """`length` characters drawn uniformly from `alphabet`, then prefix and checksum added.

    `uniform_choices` draws by rejection sampling, so there is no modulo bias. The length
    must lie in MIN_LENGTH..MAX_LENGTH and give MIN_ENTROPY_BITS with this alphabet: the
    schema enforces both at apply time, and this repeats it so no code path can ever issue a
    weak secret. Only the length and alphabet appear in the error, never secret material.
    """
    if isinstance(length, bool) or not isinstance(length, int):
        raise TypeError("secret length must be an int")
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise ValueError(f"secret length must be in {MIN_LENGTH}..{MAX_LENGTH}, got {length}")
    if length < min_length(alphabet):
        raise ValueError(
            f"secret length {length} with alphabet {alphabet} gives less than "
            f"{MIN_ENTROPY_BITS} bits of entropy; use at least {min_length(alphabet)}"
        )
    chars = ALPHABETS[alphabet]
    body = (prefix or "") + uniform_choices(chars, length)
    return with_checksum(body) if checksum else body


def uniform_choices(chars: str, count: int) -> str:
    """`count` characters drawn independently and uniformly from `chars` (at most 256
    distinct ones), from the OS's CSPRNG. Bytes at or above the largest multiple of
    len(chars) that fits in a byte are rejected, so `byte % len(chars)` has no modulo bias.
    As `secrets.choice` per character, with one read of random bytes instead of one per
    character (a 48-character secret: ~50 reads, 0.1 ms of a bulk issue's CPU)."""
    size = len(chars)
    if not 0 < size <= 256:
        raise ValueError("an alphabet has 1 to 256 characters")
    limit = 256 - 256 % size
    drawn: list[str] = []
    while len(drawn) < count:
        # Enough bytes for the rest with a margin for rejections (at most half are rejected).
        missing = count - len(drawn)
        for byte in secrets.token_bytes(2 * missing + 8):
            if byte < limit:
                drawn.append(chars[byte % size])
                if len(drawn) == count:
                    break
    return "".join(drawn)


def with_checksum(body: str) -> str:
    """`body` with its checksum appended."""
    return body + _checksum(body)


def has_valid_checksum(token: str, prefix: str | None = None) -> bool:
    """Whether `token` starts with `prefix` and ends with the checksum of everything before it."""
    prefix = prefix or ""
    if not token.startswith(prefix) or len(token) <= len(prefix) + CHECKSUM_LENGTH:
        return False
    body, check = token[:-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    return _checksum(body) == check


def _checksum(body: str) -> str:
    """CRC32 of the UTF-8 body as CHECKSUM_LENGTH base62 digits, zero-padded, big-endian."""
    value = zlib.crc32(body.encode("utf-8"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, digit = divmod(value, len(_BASE62))
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def shape_problem(
    value: str,
    length: int,
    alphabet: SecretAlphabet,
    prefix: str | None = None,
    checksum: bool = False,
) -> str | None:
    """What makes `value` unlike anything `new_secret(length, alphabet, prefix, checksum)`
    returns, or None if it has that shape. Names the property, never the value."""
    prefix = prefix or ""
    if not value.startswith(prefix):
        return "it lacks the prefix secret.prefix"
    expected = len(prefix) + length + (CHECKSUM_LENGTH if checksum else 0)
    if len(value) != expected:
        return f"it has {len(value)} characters instead of {expected}"
    body = value[len(prefix) : len(prefix) + length]
    if not set(body) <= set(ALPHABETS[alphabet]):
        return f"it has characters outside the {alphabet.value} alphabet"
    if checksum and not has_valid_checksum(value, prefix):
        return "its checksum is wrong"
    return None
