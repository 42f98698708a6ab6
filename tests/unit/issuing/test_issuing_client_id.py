"""Client IDs: format, prefix, randomness."""

import string
import uuid

from credsmith.api.enums import ClientIdFormat
from credsmith.issuing.client_id import TOKEN_LENGTH, new_client_id

BASE62 = set(string.digits + string.ascii_letters)


def test_uuid_is_a_canonical_version_4_uuid() -> None:
    value = new_client_id(ClientIdFormat.UUID)
    parsed = uuid.UUID(value)
    assert parsed.version == 4
    assert str(parsed) == value


def test_token_is_22_base62_characters() -> None:
    value = new_client_id(ClientIdFormat.TOKEN)
    assert TOKEN_LENGTH == 22
    assert len(value) == 22
    assert set(value) <= BASE62


def test_prefix_is_prepended_verbatim() -> None:
    assert new_client_id(ClientIdFormat.UUID, "svc-").startswith("svc-")
    token = new_client_id(ClientIdFormat.TOKEN, "ci_")
    assert token.startswith("ci_")
    assert len(token) == len("ci_") + 22
    uuid.UUID(new_client_id(ClientIdFormat.UUID, "x_")[2:])


def test_no_prefix_and_empty_prefix_mean_the_same() -> None:
    assert len(new_client_id(ClientIdFormat.TOKEN, "")) == 22
    assert len(new_client_id(ClientIdFormat.TOKEN, None)) == 22


def test_ids_do_not_repeat() -> None:
    for fmt in ClientIdFormat:
        assert len({new_client_id(fmt) for _ in range(10_000)}) == 10_000


def test_tokens_use_the_whole_alphabet() -> None:
    seen = set("".join(new_client_id(ClientIdFormat.TOKEN) for _ in range(2_000)))
    assert seen == BASE62
