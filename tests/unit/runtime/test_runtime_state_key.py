"""The state key Secret: read if there, created if not, the winner's read after a lost race,
and a malformed one refused (never silently replaced). The race against the real API server
is in tests/e2e/test_authenticated_state.py."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from credsmith.runtime.session import ApiError
from credsmith.runtime.state_key import StateKeyError, load_state_key


class Secrets:
    def __init__(self, stored: dict[str, Any] | None = None, lose_race: bool = False) -> None:
        self.stored, self.lose_race, self.created = stored, lose_race, 0

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.stored

    async def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.lose_race:  # another replica's create landed in between
            self.stored = {"data": {"key": base64.b64encode(b"w" * 32).decode()}}
            raise ApiError(409, "AlreadyExists", "secrets exists")
        self.created += 1
        self.stored = body
        return body


def test_created_once_then_read() -> None:
    api = Secrets()
    made = asyncio.run(load_state_key(api, "ops"))
    assert api.created == 1
    assert api.stored is not None
    assert api.stored["immutable"] is True
    assert asyncio.run(load_state_key(api, "ops")) == made
    assert api.created == 1


def test_a_lost_race_uses_the_winners_key() -> None:
    key = asyncio.run(load_state_key(Secrets(lose_race=True), "ops"))
    assert key.material == b"w" * 32


@pytest.mark.parametrize("data", [{}, {"key": "not base64!"}, {"key": "c2hvcnQ="}])
def test_a_malformed_key_secret_is_refused_without_showing_it(data: dict[str, str]) -> None:
    with pytest.raises(StateKeyError, match="Delete it to have a new key made") as caught:
        asyncio.run(load_state_key(Secrets({"data": data}), "ops"))
    assert "c2hvcnQ" not in str(caught.value)
