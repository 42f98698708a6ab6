"""Compact cache copies: equal to what was decoded, one copy of each string, and a pool
that forgets the strings nothing refers to any more."""

from __future__ import annotations

import base64
import json

from credsmith.reconcile.compact import StringPool, compact
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot


def _fresh(text: str) -> str:
    """A new string object equal to `text` (as json.loads makes one per event)."""
    made: str = json.loads(json.dumps(text))
    return made


def test_compact_copy_equals_the_original_and_keeps_its_types() -> None:
    body = {"spec": {"a": [1, "x", {"b": None, "c": True}], "d": 2.5}, "e": []}
    copy = compact(json.loads(json.dumps(body)), StringPool())
    assert copy == body
    assert isinstance(copy["spec"]["a"], list)
    assert isinstance(copy["spec"], dict)


def test_equal_strings_of_two_objects_become_one() -> None:
    pool = StringPool()
    first = compact({_fresh("lastTransitionTime"): _fresh("2026-12-06T22:00:00Z")}, pool)
    second = compact({_fresh("lastTransitionTime"): _fresh("2026-12-06T22:00:00Z")}, pool)
    (key1, value1), (key2, value2) = next(iter(first.items())), next(iter(second.items()))
    assert key1 is key2
    assert value1 is value2


def test_long_strings_are_left_alone() -> None:
    pool = StringPool()
    long = _fresh("m" * 1000)
    assert pool.get(long) is long
    assert pool.get(_fresh("m" * 1000)) is not long
    assert len(pool) == 0


def test_the_pool_forgets_unreferenced_strings_when_it_has_doubled() -> None:
    pool = StringPool()
    kept = [pool.get(_fresh(f"kept-{i}")) for i in range(100)]
    for i in range(10_000):  # each dropped at once: only the pool holds it
        pool.get(_fresh(f"gone-{i}"))
    assert len(pool) < 4096 + 100  # swept at least once on the way
    assert all(pool.get(_fresh(f"kept-{i}")) is kept[i] for i in range(100))


def test_snapshots_share_strings_but_never_secret_values() -> None:
    def secret(i: int) -> SecretSnapshot:
        return SecretSnapshot.from_api(
            json.loads(
                json.dumps(
                    {
                        "metadata": {
                            "namespace": "ns",
                            "name": f"s{i}",
                            "labels": {"app.kubernetes.io/managed-by": "credsmith"},
                            "annotations": {"credsmith.io/revision": "1"},
                        },
                        "data": {"client_secret": base64.b64encode(b"hunter2").decode()},
                    }
                )
            )
        )

    a, b = secret(1), secret(2)
    assert a.data == {"client_secret": b"hunter2"}
    assert a.data["client_secret"] is not b.data["client_secret"]
    assert next(iter(a.labels.values())) is next(iter(b.labels.values()))
    assert a.namespace is b.namespace


def test_resource_snapshot_from_api_keeps_every_field() -> None:
    body = {
        "apiVersion": "credsmith.io/v1alpha1",
        "kind": "ServiceAccountCredential",
        "metadata": {
            "namespace": "ns",
            "name": "r",
            "uid": "u-1",
            "generation": 3,
            "resourceVersion": "42",
            "creationTimestamp": "2026-12-06T22:00:00Z",
            "labels": {"l": "1"},
            "annotations": {"a": "2"},
            "managedFields": [{"manager": "kubectl"}],
        },
        "spec": {"serviceAccount": "r"},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]},
    }
    snapshot = ResourceSnapshot.from_api(json.loads(json.dumps(body)))
    assert (snapshot.api_version, snapshot.kind, snapshot.namespace, snapshot.name) == (
        "credsmith.io/v1alpha1",
        "ServiceAccountCredential",
        "ns",
        "r",
    )
    assert (snapshot.uid, snapshot.generation, snapshot.resource_version) == ("u-1", 3, "42")
    assert snapshot.creation_timestamp == "2026-12-06T22:00:00Z"
    assert (snapshot.labels, snapshot.annotations) == ({"l": "1"}, {"a": "2"})
    assert snapshot.spec == body["spec"]
    assert snapshot.status == body["status"]
    assert not hasattr(snapshot, "__dict__")  # slots: no per-object dict
