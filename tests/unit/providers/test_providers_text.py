"""The one cleaner of provider texts (providers/text.py) that status, Events and logs show."""

from __future__ import annotations

import pytest

from credsmith.providers.text import bounded, bounded_tail, printable


@pytest.mark.parametrize(
    "unprintable", ["\n", "\r", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u202e", "\u200b"]
)
def test_no_character_that_does_not_print_passes(unprintable: str) -> None:
    assert printable(f"a{unprintable}b") == "a b"
    assert bounded(f"a{unprintable}b", 10) == "a b"
    assert bounded_tail(f"a{unprintable}b", 10) == "a b"


def test_a_long_text_is_cut_at_its_bound() -> None:
    assert bounded("x" * 50, 10) == "x" * 9 + "…"
    assert bounded_tail("x" * 50 + ". The hint.", 20) == "…The hint."
    assert printable("  a \t\n b  ") == "a b"
