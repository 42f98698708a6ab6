"""A registry (or JWK Set) whose document would pass the API server's 1 MiB limit on a
Secret's (ConfigMap's) data: the latest created are left out, the rest stays valid; and the
memo that makes a rebuild check only the members that changed."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from credsmith.api.status import Reason
from credsmith.reconcile.document_size import DATA_LIMIT
from credsmith.reconcile.registry import (
    EntryMemo,
    reconcile_registry,
    registry_contents,
    render_document,
)
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.registry import ClientRegistry
from tests.state_key import TEST_STATE_KEY
from tests.unit.registry.test_registry_verifier import NOW, client, issued, value_of

# About 19 KB of clients.json per client: 1 MiB holds some 55 of them.
LONG_ROLES = [{"id": f"role.{i:03}." + "x" * 119, "name": "y" * 128} for i in range(64)]


def created(
    member: tuple[ResourceSnapshot, SecretSnapshot], second: int
) -> tuple[ResourceSnapshot, SecretSnapshot]:
    resource, secret = member
    return replace(resource, creation_timestamp=f"2026-11-22T10:00:{second:02}Z"), secret


def test_rendered_from_memoised_texts_as_json_dumps_renders_the_whole_document() -> None:
    for count in (0, 1, 3):
        members = [issued(f"c{i}", value_of(f"v{i}")) for i in range(count)]
        entries = registry_contents(members, NOW, TEST_STATE_KEY).entries
        whole = {
            "apiVersion": "credsmith.io/v1alpha1",
            "kind": "ClientRegistry",
            "clients": sorted(entries, key=lambda e: (e["clientId"], e["id"])),
        }
        assert render_document(entries) == json.dumps(whole, indent=2, sort_keys=True) + "\n"


def test_a_registry_past_the_limit_leaves_out_the_latest_created(tmp_path: Path) -> None:
    # Created in the reverse order of their names: the order is creation's, not the name's.
    members = [
        created(issued(f"c{i:03}", value_of(f"v{i}"), roles=LONG_ROLES), 59 - i % 60)
        for i in range(60)
    ]
    decision = reconcile_registry("ns", "reg", members, None, NOW, TEST_STATE_KEY)
    assert decision.secret is not None
    data = decision.secret["data"]
    size = sum(len(base64.b64decode(v)) for v in data.values())
    assert size <= DATA_LIMIT
    full = {name for name, why in decision.left_out.items() if why.reason is Reason.REGISTRY_FULL}
    assert full
    assert len(full) + decision.clients == 60
    # The latest created (the first names) are out; each one earlier than all that are in.
    order = sorted(members, key=lambda m: (m[0].creation_timestamp, m[0].name))
    names = [r.name for r, _ in order]
    assert set(names[decision.clients :]) == full
    assert "registry reg would pass the 1 MiB limit" in decision.left_out[names[-1]].message
    assert "spec.registry.name" in decision.left_out[names[-1]].message
    # The document stays valid and verifies the clients that fit, not the others.
    path = tmp_path / "clients.json"
    path.write_bytes(base64.b64decode(data["clients.json"]))
    registry = ClientRegistry.load(path)
    assert registry.verify(f"id-{names[0]}", value_of(f"v{int(names[0][1:])}")) is not None
    assert registry.verify(f"id-{names[-1]}", value_of(f"v{int(names[-1][1:])}")) is None


def test_one_client_more_than_fits_is_the_only_one_left_out() -> None:
    members = [issued(f"c{i:03}", value_of(f"v{i}"), roles=LONG_ROLES) for i in range(60)]
    fits = registry_contents(members, NOW, TEST_STATE_KEY)
    kept = len(fits.entries)
    decision = reconcile_registry("ns", "reg", members[: kept + 1], None, NOW, TEST_STATE_KEY)
    assert decision.clients == kept
    assert set(decision.left_out) == {members[kept][0].name}
    # Under the limit nothing is left out, and the size counted is the size written.
    assert not reconcile_registry("ns", "reg", members[:kept], None, NOW, TEST_STATE_KEY).left_out


def test_the_memo_checks_again_only_when_either_resource_version_changes() -> None:
    memo = EntryMemo()
    resource, secret = issued("a", value_of("a"))
    resource = replace(resource, resource_version="10")
    first = registry_contents([(resource, secret)], NOW, TEST_STATE_KEY, memo=memo)
    assert memo.checks == 1
    assert (
        registry_contents([(resource, secret)], NOW + timedelta(days=1), TEST_STATE_KEY, memo=memo)
        == first
    )
    assert memo.checks == 1
    # The resource changed (its spec: a new role), then its Secret changed.
    roles = [{"id": "r", "name": "R"}]
    changed = replace(resource, resource_version="11", spec={**resource.spec, "roles": roles})
    found = registry_contents([(changed, secret)], NOW, TEST_STATE_KEY, memo=memo)
    assert memo.checks == 2
    assert found.entries[0]["roles"] == [{"id": "r", "name": "R"}]
    lost = replace(secret, resource_version="99", data={})
    assert registry_contents([(changed, lost)], NOW, TEST_STATE_KEY, memo=memo).entries == []
    assert memo.checks == 3
    # A stale memo would publish a client whose Secret no longer holds its credential.
    assert registry_contents([(changed, lost)], NOW, TEST_STATE_KEY, memo=memo).entries == []
    assert memo.checks == 3


def test_the_memo_forgets_members_that_left() -> None:
    memo = EntryMemo()
    members = [issued(n, value_of(n)) for n in ("a", "b")]
    members = [(replace(r, resource_version="1"), s) for r, s in members]
    registry_contents(members, NOW, TEST_STATE_KEY, memo=memo)
    assert len(memo) == 2
    memo.retain(["a"])
    assert len(memo) == 1


def test_a_registry_of_unchanged_members_is_rebuilt_without_checking_them() -> None:
    memo = EntryMemo()
    members = [issued(f"c{i}", value_of(f"v{i}")) for i in range(20)]
    members = [(replace(r, resource_version="1"), s) for r, s in members]
    registry_contents(members, NOW, TEST_STATE_KEY, memo=memo)
    assert memo.checks == 20
    new = issued("late", value_of("late"))
    registry_contents(
        [*members, (replace(new[0], resource_version="1"), new[1])], NOW, TEST_STATE_KEY, memo=memo
    )
    assert memo.checks == 21


def test_a_client_is_not_checked_from_a_memo_without_resource_versions() -> None:
    memo = EntryMemo()
    members = [(client("x"), None)]
    registry_contents(members, NOW, TEST_STATE_KEY, memo=memo)
    registry_contents(members, NOW, TEST_STATE_KEY, memo=memo)
    assert memo.checks == 2
