"""The key that authenticates the state the operator writes on its Secrets, and the MAC. Pure.

Anyone allowed to write Secrets of a namespace (many roles are, without being allowed to
read them) can rewrite the `credsmith.io/*` annotations on a credential's Secret. A MAC
(HMAC-SHA256) under a key only the operator holds makes those annotations its own word: a
state whose MAC verifies was written by an operator holding the key. What is covered is
decided by secret_state.py (the one codec of the annotations); this module only computes
and checks tags. runtime/state_key.py keeps the key in a Secret of the operator's namespace.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

KEY_BYTES = 32  # HMAC-SHA256: a key as long as the hash (RFC 2104 section 3)
ALGORITHM = "hmac-sha256"


@dataclass(frozen=True)
class StateKey:
    """The operator's state key. repr=False: it must never reach a log line or a traceback."""

    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) < KEY_BYTES:
            raise ValueError(f"a state key has at least {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> StateKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def tag(self, message: bytes) -> str:
        """The MAC of `message`, as written in the annotation."""
        digest = hmac.new(self.material, message, hashlib.sha256).hexdigest()
        return f"{ALGORITHM}:{digest}"

    def verifies(self, message: bytes, tag: str | None) -> bool:
        """Whether `tag` is this key's MAC of `message` (in constant time)."""
        return tag is not None and hmac.compare_digest(self.tag(message), tag)
