"""JSON to and from the API server: request bodies, responses and watch events.

orjson (a C extension) instead of the standard library's json: every issued credential
costs three request bodies encoded and two responses and three watch events decoded, and on
those bodies orjson takes a fraction of json's CPU (`bench/json_cpu.py`; bench/README.md,
"Operator CPU per credential"). Only the wire goes through here: canonical forms that a MAC
or a fingerprint covers (sorted keys, ASCII escapes) keep the standard library's exact bytes.

What differs from json and does not matter on this path: orjson writes no spaces (the API
server does not care) and non-ASCII as UTF-8 rather than \\u escapes (the same text once
decoded); it refuses to encode non-str keys and integers beyond 64 bits and decodes such
integers as floats (a Kubernetes object has neither), and refuses a lone surrogate (the API
server never writes one). Like json it encodes dicts, lists, tuples and their subclasses, not
other mappings, and `loads` raises `json.JSONDecodeError` (a ValueError).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["dumps", "dumps_text", "loads"]


def dumps(value: Any) -> bytes:
    """A request body, as UTF-8 bytes."""
    return orjson.dumps(value)


def dumps_text(value: Any) -> str:
    """As `dumps`, as text (aiohttp's `json_serialize` wants a str)."""
    return orjson.dumps(value).decode()


def loads(data: bytes | str) -> Any:
    """A response body or one watch event line."""
    return orjson.loads(data)
