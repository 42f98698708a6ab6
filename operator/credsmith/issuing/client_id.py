"""Client IDs: public identifiers, unique rather than secret, but still unguessable."""

import uuid

from credsmith.api.alphabets import ALPHABETS
from credsmith.api.enums import ClientIdFormat, SecretAlphabet
from credsmith.issuing.random_secret import uniform_choices

# 22 base62 characters carry 22 * log2(62) ≈ 131 bits: as unguessable as a UUIDv4 (122 bits),
# shorter, and free of dashes so it survives double-click selection and URL userinfo.
TOKEN_LENGTH = 22
_BASE62 = ALPHABETS[SecretAlphabet.ALPHANUMERIC]


def new_client_id(format: ClientIdFormat, prefix: str | None = None) -> str:
    """A new random client ID in `format`, with `prefix` prepended verbatim.

    The prefix is not validated here: the CRD schema restricts it at apply time.
    """
    if format is ClientIdFormat.UUID:
        body = str(uuid.uuid4())
    elif format is ClientIdFormat.TOKEN:
        body = uniform_choices(_BASE62, TOKEN_LENGTH)
    else:  # pragma: no cover - exhaustive over the enum
        raise ValueError(f"unknown client ID format: {format!r}")
    return (prefix or "") + body
