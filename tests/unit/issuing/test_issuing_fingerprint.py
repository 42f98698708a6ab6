"""Audit fingerprints."""

import hashlib
import re

from credsmith.issuing.fingerprint import fingerprint


def test_known_vector() -> None:
    # SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    assert fingerprint("abc") == "sha256:ba7816bf8f01cfea"


def test_format_and_definition() -> None:
    value = "s3cr3t-\u00e9-value"
    result = fingerprint(value)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", result)
    assert result == "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def test_distinguishes_values_and_does_not_contain_them() -> None:
    first, second = "AAAAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAAAB"
    assert fingerprint(first) != fingerprint(second)
    assert first not in fingerprint(first)
    assert fingerprint(first) == fingerprint(first)
