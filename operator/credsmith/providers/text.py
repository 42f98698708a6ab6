"""Text a provider answers with (error fields, client IDs, internal ids in a URL), made fit
for a status message, an Event and a plain-text log line: printable and bounded.

One cleaner for every provider: `str.isprintable` refuses not only ASCII control
characters but C1 controls (\\x9b), line and paragraph separators and format characters
(U+202E turns text around, U+200B hides), which a regex of ASCII controls lets through.
"""

from __future__ import annotations

# Characters of a URL in a message: what follows it (a status, the provider's hint) must
# fit the message's bound too, and a client ID in a path can be long.
MAX_URL = 120


def printable(value: object) -> str:
    """On one line: every character that does not print a space, runs of spaces one."""
    text = "".join(char if char.isprintable() else " " for char in str(value))
    return " ".join(text.split())


def bounded(value: object, limit: int) -> str:
    """printable(), at most `limit` characters (… where cut)."""
    text = printable(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_tail(value: object, limit: int) -> str:
    """printable(), at most `limit` characters: a long one keeps its last sentences (a
    provider's description ends with its particular hint)."""
    text = printable(value)
    if len(text) <= limit:
        return text
    end = text[-(limit - 1) :]
    sentence = end.find(". ")
    return "…" + (end[sentence + 2 :] if sentence >= 0 else end)


def shown_url(url: object) -> str:
    """A URL for a message: printable, at most MAX_URL characters."""
    return bounded(url, MAX_URL)
