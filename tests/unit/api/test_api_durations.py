"""parse_go_duration follows Go's time.ParseDuration, which CEL's duration() uses too."""

import re
from datetime import timedelta

import pytest

from credsmith.api.durations import GO_DURATION_PATTERN, parse_go_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("720h", timedelta(days=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("20s", timedelta(seconds=20)),
        ("300ms", timedelta(milliseconds=300)),
        ("2h45m30.5s", timedelta(hours=2, minutes=45, seconds=30.5)),
        ("1us", timedelta(microseconds=1)),
        ("1µs", timedelta(microseconds=1)),  # U+00B5 MICRO SIGN
        ("1μs", timedelta(microseconds=1)),  # U+03BC GREEK SMALL LETTER MU
        ("1500ns", timedelta(microseconds=1)),  # truncated to microseconds
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        (".5s", timedelta(milliseconds=500)),
        ("1.s", timedelta(seconds=1)),
        ("-1.5h", -timedelta(hours=1, minutes=30)),
        ("+5s", timedelta(seconds=5)),
        ("1m1m", timedelta(minutes=2)),
        ("2562047h", timedelta(hours=2562047)),
    ],
)
def test_parses_go_durations(text: str, expected: timedelta) -> None:
    assert parse_go_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "h",
        "1d",
        "1h1",
        " 1h",
        "1h ",
        "1.5.h",
        "--1h",
        "-",
        ".",
        ".s",
        "1H",
        "\u0661h",  # an Arabic-Indic digit: Python's \d would take it, Go does not
        "2562048h",  # past Go's int64 nanoseconds
    ],
)
def test_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid Go duration"):
        parse_go_duration(text)


@pytest.mark.parametrize("text", ["720h", "1h30m", "1.5h", "20s", "10µs", "0", ".5s"])
def test_schema_pattern_accepts_unsigned_durations(text: str) -> None:
    assert re.fullmatch(GO_DURATION_PATTERN, text)
    parse_go_duration(text)


@pytest.mark.parametrize("text", ["-1h", "+1h", "1d", "", "1", "1h1"])
def test_schema_pattern_rejects_signs_and_garbage(text: str) -> None:
    assert not re.fullmatch(GO_DURATION_PATTERN, text)
