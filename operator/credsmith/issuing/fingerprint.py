"""Audit fingerprints of secret values, safe to show in status."""

import hashlib

FINGERPRINT_HEX_CHARS = 16


def fingerprint(value: str) -> str:
    """ "sha256:" + the first 16 hex characters of SHA-256 of the UTF-8 value.

    It tells two values apart (and matches a value someone holds) without revealing it: a
    truncated hash of a random secret of at least 128 bits cannot be inverted or brute-forced.
    """
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
    return "sha256:" + digest[:FINGERPRINT_HEX_CHARS]
