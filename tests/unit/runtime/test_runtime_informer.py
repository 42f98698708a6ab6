"""The informer's bookkeeping: paged listing, resuming watches, and the diff after a 410.

The session is scripted here (pages and watch events); that the informer talks to a
real API server is shown by every e2e test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from credsmith.runtime.informer import Informer
from credsmith.runtime.session import ApiError, Gone


@dataclass(frozen=True)
class Snap:
    name: str
    resource_version: str


def obj(name: str, version: str, namespace: str = "ns") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "name": name, "resourceVersion": version}}


def decode(body: Mapping[str, Any]) -> Snap:
    return Snap(body["metadata"]["name"], body["metadata"]["resourceVersion"])


class ScriptedSession:
    """Listings and watch streams handed out in order; records what was asked."""

    def __init__(self, listings: list[list[dict[str, Any]]], watches: list[list[Any]]) -> None:
        self.listings = listings  # each: the pages of one listing
        self.watches = watches  # each: events, or an exception to raise
        self.requests: list[dict[str, str]] = []
        self.watched_from: list[str] = []
        self.exhausted = asyncio.Event()

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        params = dict(kwargs.get("params") or {})
        self.requests.append(params)
        if "continue" not in params:
            self.pages = iter(self.listings.pop(0))
        page: dict[str, Any] = next(self.pages)
        return page

    async def watch(
        self, path: str, params: Mapping[str, str], idle_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        self.watched_from.append(params["resourceVersion"])
        if not self.watches:
            self.exhausted.set()
            await asyncio.Event().wait()  # a quiet stream, until cancelled
        for item in self.watches.pop(0):
            if isinstance(item, Exception):
                raise item
            yield item


def run(session: ScriptedSession, informer: Informer[Snap]) -> None:
    async def until_exhausted() -> None:
        task = asyncio.create_task(informer.run())
        await asyncio.wait_for(session.exhausted.wait(), 5)
        task.cancel()

    asyncio.run(until_exhausted())


def informer_of(
    session: ScriptedSession,
    changes: list[tuple[str, str]] | None = None,
    path: str = "/api/v1/secrets",
    **options: Any,
) -> Informer[Snap]:
    def record(type_: str, body: Mapping[str, Any], snap: Snap) -> None:
        if changes is not None:
            changes.append((type_, snap.name))

    return Informer(session, path, decode, record, **options)  # type: ignore[arg-type]


def page(items: list[dict[str, Any]], version: str, token: str = "") -> dict[str, Any]:
    return {"items": items, "metadata": {"resourceVersion": version, "continue": token}}


def test_pages_fill_the_cache_and_the_watch_resumes_from_the_last_version_seen() -> None:
    session = ScriptedSession(
        listings=[[page([obj("a", "1")], "", token="t1"), page([obj("b", "2")], "10")]],
        watches=[
            [
                {"type": "MODIFIED", "object": obj("a", "11")},
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
            ],
            [{"type": "DELETED", "object": obj("b", "16")}],
        ],
    )
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes, label_selector="app=x")
    run(session, informer)

    assert session.requests[0] == {"labelSelector": "app=x", "limit": "500"}
    assert session.requests[1]["continue"] == "t1"
    assert informer.synced.is_set()
    # The first listing's version, then the bookmark's, then the deletion's.
    assert session.watched_from == ["10", "15", "16"]
    # The first listing's objects are found, not changed: LISTED.
    assert changes == [("LISTED", "a"), ("LISTED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]
    assert informer.cache == {("ns", "a"): Snap("a", "11")}


def test_an_expired_version_lists_again_and_reports_what_changed_meanwhile() -> None:
    session = ScriptedSession(
        listings=[
            [page([obj("a", "1"), obj("b", "2"), obj("c", "3")], "10")],
            # Meanwhile: a unchanged, b deleted, c modified, d created.
            [page([obj("a", "1"), obj("c", "30"), obj("d", "31")], "40")],
        ],
        watches=[[{"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}]],
    )
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes)
    run(session, informer)

    assert changes[3:] == [("MODIFIED", "c"), ("ADDED", "d"), ("DELETED", "b")]
    assert set(informer.cache) == {("ns", "a"), ("ns", "c"), ("ns", "d")}
    assert session.watched_from == ["10", "40"]


def test_a_namespaced_informer_leaves_other_namespaces_in_a_shared_cache_alone() -> None:
    shared = {("other", "x"): Snap("x", "5")}
    session = ScriptedSession(listings=[[page([obj("a", "1")], "10")]], watches=[])
    informer = informer_of(session, path="/api/v1/namespaces/ns/secrets", cache=shared,
                           namespace="ns")  # fmt: skip
    run(session, informer)
    assert shared == {("other", "x"): Snap("x", "5"), ("ns", "a"): Snap("a", "1")}


@pytest.mark.parametrize(
    "failure", [ApiError(0, "Unreachable", "ClientConnectorError"), ApiError(500, "x", "y")]
)
def test_a_failed_watch_is_retried_from_where_it_was(failure: Exception) -> None:
    session = ScriptedSession(
        listings=[[page([obj("a", "1")], "10")]],
        watches=[[{"type": "ADDED", "object": obj("b", "12")}, failure]],
    )
    informer = informer_of(session)
    run(session, informer)
    assert session.watched_from == ["10", "12"]  # no second listing
    assert len(session.requests) == 1


def test_gone_raised_by_the_session_lists_again() -> None:
    session = ScriptedSession(
        listings=[[page([], "10")], [page([obj("a", "1")], "20")]],
        watches=[[Gone()]],
    )
    informer = informer_of(session)
    run(session, informer)
    assert session.watched_from == ["10", "20"]
    assert informer.cache == {("ns", "a"): Snap("a", "1")}


def test_watches_that_end_at_once_are_not_reopened_in_a_busy_loop() -> None:
    session = ScriptedSession(listings=[[page([], "10")]], watches=[[] for _ in range(1000)])
    informer = informer_of(session)

    async def for_a_while() -> None:
        task = asyncio.create_task(informer.run())
        await asyncio.sleep(1.5)
        task.cancel()

    asyncio.run(for_a_while())
    assert 1 <= len(session.watched_from) <= 2


def test_repeated_watch_errors_other_than_410_list_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import credsmith.runtime.informer as informer_module

    monkeypatch.setattr(informer_module, "BACKOFF_BASE", 0.01)
    failure = ApiError(500, "InternalError", "etcd trouble")
    session = ScriptedSession(
        listings=[[page([obj("a", "1")], "10")], [page([obj("a", "20")], "20")]],
        watches=[[failure], [failure], [failure]],
    )
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes)
    run(session, informer)
    # Three failures at the same version, then a new listing and a watch from its version.
    assert session.watched_from == ["10", "10", "10", "20"]
    assert changes == [("LISTED", "a"), ("MODIFIED", "a")]
