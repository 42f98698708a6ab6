"""A registry the operator cannot write (a foreign Secret of its name) blocks its members:
each one is reconciled again to say so, including a member that joins while the document is
already blocked for the same reason (issued a moment before the block was known, it would
otherwise keep saying Ready)."""

from __future__ import annotations

from typing import Any, cast

from credsmith.api.status import Reason
from credsmith.reconcile.published import Unpublished
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.documents import Documents
from credsmith.runtime.kube import Kube
from credsmith.runtime.workqueue import WorkQueue
from tests.state_key import TEST_STATE_KEY

KEY = ("Secret", "team", "registry")
BLOCKED = Unpublished(Reason.REGISTRY_CONFLICT, "Secret registry exists and is not ours")


def member(name: str) -> tuple[ResourceSnapshot, None]:
    resource = ResourceSnapshot(
        api_version="credsmith.io/v1alpha1",
        kind="ApiClient",
        namespace="team",
        name=name,
        uid=f"uid-{name}",
        generation=1,
        labels={},
        annotations={},
        spec={},
        status={},
    )
    return resource, None


def documents() -> tuple[Documents, list[Any]]:
    queue: WorkQueue[Any] = WorkQueue()
    added: list[Any] = []
    queue.add = added.append  # type: ignore[method-assign,assignment]  # record, not queue
    found = Documents(
        cast(Kube, None),
        {},
        queue,
        lambda key: None,
        lambda namespace, name: None,
        lambda secret: None,
        TEST_STATE_KEY,
    )
    return found, added


def test_a_member_joining_a_blocked_document_is_told() -> None:
    docs, added = documents()
    docs._block(KEY, [member("one")], BLOCKED)
    assert added == [("ApiClient", "team", "one")]
    added.clear()
    docs._block(KEY, [member("one"), member("two")], BLOCKED)
    assert added == [("ApiClient", "team", "two")]  # the newcomer; "one" knows already
    added.clear()
    docs._block(KEY, [member("one"), member("two")], BLOCKED)
    assert added == []  # nothing changed: no pass
    docs._block(KEY, [member("one"), member("two")], None)
    assert added == [("ApiClient", "team", "one"), ("ApiClient", "team", "two")]
