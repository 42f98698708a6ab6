"""The clean-up's log lines show the client IDs (and owners) a provider lists as status and
Events do: a provider's admin API may hold any string, and a log line is one line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

import pytest

from credsmith.providers.base import MarkedClient, Marker, Owner
from credsmith.reconcile.provider_status import MAX_CLIENT_ID_NAMED
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.provider_cleanup import clean_up

HOSTILE = "evil\nINFO forged line\r\x1b[31m\x00" + "x" * 2000


class _Listing:
    """Lists `marked`; a client in `kept` is another provider's when read again."""

    def __init__(self, marked: list[MarkedClient], kept: set[str]) -> None:
        self.marked, self.kept = marked, kept

    async def list_marked(self, provider_uid: str) -> list[MarkedClient]:
        return self.marked

    async def delete_if(self, client_id: str, doomed: Callable[[Marker | None], bool]) -> bool:
        if client_id in self.kept:
            marker = next(m.marker for m in self.marked if m.client_id == client_id)
            return doomed(replace(marker, provider_uid="another-provider-uid"))
        return doomed(next(m.marker for m in self.marked if m.client_id == client_id))


def test_a_listed_client_id_is_logged_on_one_bounded_printable_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = Owner("ApiClient", "ns\nforged", HOSTILE, "gone-uid")
    marked = [
        MarkedClient(HOSTILE, Marker("p-uid", owner, 1)),
        MarkedClient("kept-" + HOSTILE, Marker("p-uid", owner, 1)),
    ]
    provider = ResourceSnapshot.from_api(
        {"kind": "IdentityProvider", "metadata": {"namespace": "ns", "name": "h", "uid": "p-uid"}}
    )
    client = _Listing(marked, kept={"kept-" + HOSTILE})
    caplog.set_level(logging.INFO, logger="credsmith.providers")
    left, outcome = asyncio.run(
        clean_up(
            ("IdentityProvider", "ns", "h"),
            provider,
            client,  # type: ignore[arg-type]  # the two calls clean_up makes
            lambda: {},
            lambda uid: {},
            lambda namespace: True,
            lambda client_id, owner_uid: None,
        )
    )
    assert (left, outcome.deleted) == (1, 1)
    lines = [record.getMessage() for record in caplog.records]
    assert any("deleted client evil" in line for line in lines)
    assert any("client kept-evil" in line for line in lines)
    for line in lines:
        assert line.isprintable(), repr(line[:200])
        assert len(line) < 5 * MAX_CLIENT_ID_NAMED
