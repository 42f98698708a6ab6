"""Ory Hydra for the tests: a real `hydra serve all --dev` (credsmith.dev.hydra.LocalHydra,
built by tests/cluster/build.sh), and token requests against it.

Fixtures (import them into a conftest, as tests/e2e/conftest.py does):

- `hydra`: one Hydra per pytest process, so each xdist worker has its own (in-memory,
  ready in about a second); tests share it, so each uses client IDs of its own.
- `fresh_hydra`: a Hydra of the test's own, which the test may stop and start.

Token requests (tests/providers/tokens.py, imported from here too) and admin API calls
return (status, JSON body): a test asserts on both, and a failed request is an answer, not
an exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from credsmith.dev.cluster import build_binaries
from credsmith.dev.hydra import HYDRA_BINARY, LocalHydra
from tests.providers.tokens import call
from tests.providers.tokens import token_with_assertion as token_with_assertion  # tests import
from tests.providers.tokens import token_with_secret as token_with_secret  # them from here


@pytest.fixture(scope="session")
def hydra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHydra]:
    """This pytest process's Hydra (each xdist worker starts its own)."""
    with LocalHydra(
        build_binaries() / HYDRA_BINARY, tmp_path_factory.mktemp("hydra") / "hydra.log"
    ) as found:
        yield found


@pytest.fixture
def fresh_hydra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHydra]:
    """A Hydra of this test's own: it may stop it (stop() is idempotent)."""
    with LocalHydra(
        build_binaries() / HYDRA_BINARY, tmp_path_factory.mktemp("hydra") / "hydra.log"
    ) as found:
        yield found


def admin_call(
    hydra: LocalHydra, method: str, path: str, body: Any = None, *, patch: bool = False
) -> tuple[int, Any]:
    """A call to Hydra's admin API as a person editing it would make (the drift tests)."""
    headers = {"Content-Type": "application/json-patch+json"} if patch else None
    return call(method, f"{hydra.admin_url}{path}", json_body=body, headers=headers)


def clients_owned_by(hydra: LocalHydra, owner_uid: str) -> list[str]:
    """The IDs of Hydra's clients whose credsmith marker names this owner (by UID)."""
    status, clients = admin_call(hydra, "GET", "/admin/clients?page_size=500")
    assert status == 200
    return [
        c["client_id"]
        for c in clients
        if ((c.get("metadata") or {}).get("credsmith") or {}).get("owner", {}).get("uid")
        == owner_uid
    ]
