"""Go duration strings ("720h", "1h30m", "1.5h"), as `rotation` takes them.

Go's syntax because Kubernetes users know it (kubectl, cert-manager) and CEL's
`duration()` parses the same strings, so the apiserver and the operator agree.
"""

import re
from datetime import timedelta
from fractions import Fraction
from functools import lru_cache

# The units of Go's time.ParseDuration; "µs" is U+00B5 and "μs" U+03BC, Go takes both.
_UNIT_SECONDS: dict[str, Fraction] = {
    "ns": Fraction(1, 10**9),
    "us": Fraction(1, 10**6),
    "µs": Fraction(1, 10**6),
    "μs": Fraction(1, 10**6),
    "ms": Fraction(1, 10**3),
    "s": Fraction(1),
    "m": Fraction(60),
    "h": Fraction(3600),
}
_UNITS = "ns|us|µs|μs|ms|s|m|h"
_TERM = re.compile(rf"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)({_UNITS})")
# Go's int64 nanoseconds: longer durations do not parse in Go, nor in CEL.
_MAX_NANOSECONDS = 2**63 - 1

# The schema pattern: unsigned Go durations (a negative period or overlap means nothing).
GO_DURATION_PATTERN = rf"^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)({_UNITS}))+)$"


# Cached: every pass reads the same few strings ("720h", "24h") several times, and the
# exact arithmetic (Fraction) costs ~20 us a call. A timedelta is immutable.
@lru_cache(maxsize=512)
def parse_go_duration(value: str) -> timedelta:
    """Parse a Go duration string, e.g. "720h", "1h30m", "1.5h", "20s", "-5m" or "0".

    The result is truncated to microseconds (timedelta's resolution). Raises
    ValueError for anything Go's time.ParseDuration rejects.
    """
    text = value
    negative = text[:1] == "-"
    if text[:1] in ("-", "+"):
        text = text[1:]
    if text == "0":
        return timedelta(0)
    if not text:
        raise ValueError(f"invalid Go duration {value!r}")
    seconds = Fraction(0)
    position = 0
    while position < len(text):
        term = _TERM.match(text, position)
        if term is None:
            raise ValueError(
                f"invalid Go duration {value!r}: expected a number and a unit "
                f"({', '.join(_UNIT_SECONDS)}) at {text[position:]!r}"
            )
        seconds += Fraction(term.group(1)) * _UNIT_SECONDS[term.group(2)]
        position = term.end()
    limit = _MAX_NANOSECONDS + (1 if negative else 0)
    if seconds * 10**9 > limit:
        raise ValueError(f"invalid Go duration {value!r}: longer than about 292 years")
    microseconds = int(seconds * 10**6)
    return timedelta(microseconds=-microseconds if negative else microseconds)
