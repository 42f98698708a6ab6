"""Character sets for generated secrets, and the entropy they give per character."""

import math
import string

from credsmith.api.enums import SecretAlphabet

ALPHABETS: dict[SecretAlphabet, str] = {
    SecretAlphabet.ALPHANUMERIC: string.digits + string.ascii_uppercase + string.ascii_lowercase,
    SecretAlphabet.URL_SAFE: string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_",
    SecretAlphabet.HEX: string.digits + "abcdef",
    SecretAlphabet.BASE64: string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/",
    # Every visible ASCII character: no space, no control characters.
    SecretAlphabet.PRINTABLE: "".join(chr(c) for c in range(33, 127)),
}

MIN_ENTROPY_BITS = 128
MIN_LENGTH = 16
MAX_LENGTH = 256
DEFAULT_LENGTH = 48
CHECKSUM_LENGTH = 6
"""Base62 characters of the optional checksum: 62**6 > 2**32, so every CRC32 value fits."""


def entropy_bits(length: int, alphabet: SecretAlphabet) -> float:
    """Bits of entropy in `length` characters drawn uniformly from `alphabet`."""
    return length * math.log2(len(ALPHABETS[alphabet]))


def min_length(alphabet: SecretAlphabet) -> int:
    """The shortest allowed length: at least MIN_LENGTH and MIN_ENTROPY_BITS of entropy."""
    per_char = math.log2(len(ALPHABETS[alphabet]))
    return max(MIN_LENGTH, math.ceil(MIN_ENTROPY_BITS / per_char))
