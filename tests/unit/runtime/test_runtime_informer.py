"""The informer's bookkeeping: paged listing, resuming watches, and the diff after a 410.

The session is scripted here (pages and watch events); that the informer talks to a
real API server is shown by every e2e test.
"""

from __future__ import annotations

import asyncio
import time
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
        # A streaming listing has no version to start from: "stream".
        streaming = params.get("sendInitialEvents") == "true"
        self.watched_from.append("stream" if streaming else params["resourceVersion"])
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

    options.setdefault("stream_listing", False)  # listings by pages, unless a test says
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


# ---- listings streamed (WatchList) -------------------------------------------------------


def end_of_listing(version: str) -> dict[str, Any]:
    metadata = {"resourceVersion": version, "annotations": {"k8s.io/initial-events-end": "true"}}
    return {"type": "BOOKMARK", "object": {"metadata": metadata}}


def added(name: str, version: str) -> dict[str, Any]:
    return {"type": "ADDED", "object": obj(name, version)}


def test_a_streamed_listing_reports_each_object_as_it_arrives_and_syncs_at_its_end() -> None:
    session = ScriptedSession(
        listings=[],
        watches=[
            [added("a", "1"), added("b", "2"), end_of_listing("10"),
             {"type": "MODIFIED", "object": obj("a", "11")}],
        ],
    )  # fmt: skip
    seen: list[tuple[str, str, bool]] = []
    informer = informer_of(session, stream_listing=True)
    informer.on_change = lambda type_, body, snap: seen.append(
        (type_, snap.name, informer.synced.is_set())
    )
    run(session, informer)

    assert session.requests == []  # no page requested
    # Found while listing (not synced yet), then a change on the same stream.
    assert seen == [("LISTED", "a", False), ("LISTED", "b", False), ("MODIFIED", "a", True)]
    # The next watch resumes from the last version seen on the stream.
    assert session.watched_from == ["stream", "11"]
    assert informer.cache == {("ns", "a"): Snap("a", "11"), ("ns", "b"): Snap("b", "2")}


def test_a_stream_cut_before_the_end_of_its_listing_lists_again_not_resumes() -> None:
    # An object's version is no place to resume from: the initial state is not complete.
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "7"), ApiError(0, "Unreachable", "x")],
                 [added("a", "7"), added("b", "3"), end_of_listing("10")]],
    )  # fmt: skip
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes, stream_listing=True)
    run(session, informer)
    assert session.watched_from == ["stream", "stream", "10"]
    assert informer.synced.is_set()
    assert changes == [("LISTED", "a"), ("LISTED", "a"), ("LISTED", "b")]


def test_a_streamed_listing_again_after_a_410_reports_what_changed_meanwhile() -> None:
    session = ScriptedSession(
        listings=[],
        watches=[
            [added("a", "1"), added("b", "2"), added("c", "3"), end_of_listing("10"),
             {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}],
            [added("a", "1"), added("c", "30"), added("d", "31"), end_of_listing("40")],
        ],
    )  # fmt: skip
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes, stream_listing=True)
    run(session, informer)
    assert changes[3:] == [("MODIFIED", "c"), ("ADDED", "d"), ("DELETED", "b")]
    assert session.watched_from == ["stream", "stream", "40"]


@pytest.mark.parametrize(
    "refusal",
    [
        ApiError(422, "Invalid", "sendInitialEvents is forbidden for watch unless ..."),
        # Before 1.27: resourceVersionMatch is forbidden for a watch.
        ApiError(400, "BadRequest", "resourceVersionMatch is forbidden for watch"),
    ],
)
def test_a_server_that_does_not_stream_listings_is_listed_by_pages(refusal: Any) -> None:
    session = ScriptedSession(
        listings=[[page([obj("a", "1")], "10")]],
        watches=[[refusal]],  # the request refused, before any event
    )
    informer = informer_of(session, stream_listing=True)
    run(session, informer)
    assert session.watched_from == ["stream", "10"]
    assert len(session.requests) == 1  # the page
    assert not informer.stream_listing
    assert informer.synced.is_set()


def test_a_bookmark_without_the_end_mark_during_a_streamed_listing_is_no_refusal() -> None:
    # The API server may send a bookmark while a long initial state streams (client-go's
    # reflector takes it for a version, not for the end): the listing goes on streaming.
    plain_bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}}
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "1"), plain_bookmark, added("b", "2"), end_of_listing("10")]],
    )
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes, stream_listing=True)
    run(session, informer)
    assert session.requests == []  # no page
    assert informer.stream_listing
    assert informer.synced.is_set()
    assert changes == [("LISTED", "a"), ("LISTED", "b")]
    # Resumed from the end of the initial state, not from the plain bookmark.
    assert session.watched_from == ["stream", "10"]


def test_a_stream_cut_after_a_plain_bookmark_lists_again_from_a_stream() -> None:
    # The plain bookmark's version is no place to resume from: the state was not complete.
    plain_bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "5"}}}
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "1"), plain_bookmark, ApiError(0, "Unreachable", "x")],
                 [added("b", "2"), end_of_listing("10")]],
    )  # fmt: skip
    changes: list[tuple[str, str]] = []
    informer = informer_of(session, changes, stream_listing=True)
    run(session, informer)
    assert session.watched_from == ["stream", "stream", "10"]
    # What the second stream did not hold was deleted meanwhile.
    assert changes == [("LISTED", "a"), ("LISTED", "b"), ("DELETED", "a")]
    assert informer.cache == {("ns", "b"): Snap("b", "2")}


@pytest.mark.parametrize("code", [400, 422])
def test_an_error_event_in_the_middle_of_a_streamed_listing_is_no_refusal(code: int) -> None:
    # Only the request refused (the feature off) means the server does not stream; an
    # ERROR event after objects came is a stream cut like any other.
    error = {"type": "ERROR", "object": {"code": code, "reason": "BadRequest", "message": "x"}}
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "1"), error], [added("a", "1"), end_of_listing("10")]],
    )
    informer = informer_of(session, stream_listing=True)
    run(session, informer)
    assert informer.stream_listing
    assert session.requests == []
    assert session.watched_from == ["stream", "stream", "10"]
    assert informer.synced.is_set()


def test_streamed_listings_cut_by_a_410_again_and_again_are_not_retried_in_a_busy_loop() -> None:
    # A 410 after a resumed watch costs one listing at once; a listing itself cut by 410s
    # in a row backs off (each would send every object again).
    gone = {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}
    session = ScriptedSession(listings=[], watches=[[added("a", "1"), gone] for _ in range(1000)])
    informer = informer_of(session, stream_listing=True)

    async def for_a_while() -> None:
        task = asyncio.create_task(informer.run())
        await asyncio.sleep(1.5)
        task.cancel()

    asyncio.run(for_a_while())
    assert 2 <= len(session.watched_from) <= 4
    assert not informer.synced.is_set()


def test_a_410_after_a_listing_ended_lists_again_at_once() -> None:
    gone = {"type": "ERROR", "object": {"code": 410, "reason": "Expired"}}
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "1"), end_of_listing("10"), gone],
                 [added("a", "1"), end_of_listing("20"), gone],
                 [added("a", "1"), end_of_listing("30")]],
    )  # fmt: skip
    informer = informer_of(session, stream_listing=True)
    started = time.monotonic()
    run(session, informer)
    assert session.watched_from == ["stream", "stream", "stream", "30"]
    assert time.monotonic() - started < 2.5  # no back-off (only the 1 s after a short watch)


def test_a_change_amid_the_initial_state_gives_no_version_to_resume_from() -> None:
    # The API server sends only ADDED before the end mark; a stream that sends anything
    # else (a proxy, another server) must not leave a version that skips the rest.
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "1"), {"type": "MODIFIED", "object": obj("b", "8")},
                  {"type": "DELETED", "object": obj("c", "9")}, ApiError(0, "Unreachable", "x")],
                 [added("a", "1"), added("b", "8"), end_of_listing("10")]],
    )  # fmt: skip
    informer = informer_of(session, stream_listing=True)
    run(session, informer)
    assert session.watched_from == ["stream", "stream", "10"]
    assert informer.synced.is_set()
    assert informer.cache == {("ns", "a"): Snap("a", "1"), ("ns", "b"): Snap("b", "8")}


def test_an_end_of_listing_without_a_version_is_no_place_to_watch_from() -> None:
    # A watch from "" would be one without initial events from "now" on some servers and
    # every object again as ADDED on others: the listing is made again instead.
    session = ScriptedSession(
        listings=[],
        watches=[[added("a", "1"), end_of_listing("")], [added("a", "1"), end_of_listing("10")]],
    )
    informer = informer_of(session, stream_listing=True)
    run(session, informer)
    assert session.watched_from == ["stream", "stream", "10"]


def test_a_paged_listing_without_a_version_is_made_again() -> None:
    session = ScriptedSession(
        listings=[[page([obj("a", "1")], "")], [page([obj("a", "1")], "10")]], watches=[]
    )
    informer = informer_of(session)
    run(session, informer)
    assert session.watched_from == ["10"]
    assert len(session.requests) == 2
