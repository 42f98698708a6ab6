"""Secrets written before the state MAC, by 0.1.0 (state version 1) and by main d4f13bf
(version 2 without it: tests/fixtures/state_v2/capture.py), are believed once because status
agrees with them: no write, no Event, no new value, and the registry lists them. The MAC is
added on the next write that happens for another reason; and the same Secret with one
annotation moved is not believed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.registry import registry_contents
from credsmith.reconcile.secret_state import STATE_MAC, StateScope, is_sealed
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from tests.state_key import TEST_STATE_KEY

FIXTURES = Path(__file__).parents[2] / "fixtures"
RULES = {r.kind: r for r in (SERVICE_ACCOUNT_CREDENTIAL, API_CLIENT)}
LATER = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # after the capture, before any expiry
CASES = [
    (version, path.stem)
    for version in ("state_v1", "state_v2")
    for path in sorted((FIXTURES / version).glob("*.yaml"))
]


def load(version: str, name: str) -> tuple[ResourceSnapshot, SecretSnapshot]:
    case: dict[str, Any] = yaml.safe_load((FIXTURES / version / f"{name}.yaml").read_text())
    return ResourceSnapshot.from_api(case["resource"]), SecretSnapshot.from_api(case["secret"])


def with_annotation(secret: SecretSnapshot, key: str, value: str) -> SecretSnapshot:
    return SecretSnapshot(
        secret.namespace, secret.name, secret.type, secret.data, secret.labels,
        {**secret.annotations, key: value}, secret.owner_references, secret.resource_version,
    )  # fmt: skip


def test_fixtures_of_both_versions_are_there_and_have_no_mac() -> None:
    assert sorted({v for v, _ in CASES}) == ["state_v1", "state_v2"]
    assert len(CASES) == 15
    assert all(STATE_MAC not in load(*case)[1].annotations for case in CASES)


@pytest.mark.parametrize(("version", "name"), CASES)
def test_adopted_once_with_no_write(version: str, name: str) -> None:
    resource, secret = load(version, name)
    decision = reconcile(RULES[resource.kind], resource, secret, LATER, state_key=TEST_STATE_KEY)
    assert decision.secret is None
    assert decision.status == resource.status
    assert decision.events == ()


@pytest.mark.parametrize(("version", "name"), CASES)
def test_the_next_write_adds_the_mac_and_keeps_the_value(version: str, name: str) -> None:
    resource, secret = load(version, name)
    spec = dict(resource.spec)
    template = dict(spec.get("secretTemplate") or {})
    spec["secretTemplate"] = {**template, "labels": {"upgraded": "yes"}}  # re-renders only
    changed = ResourceSnapshot.from_api(
        {"apiVersion": resource.api_version, "kind": resource.kind,
         "metadata": {"name": resource.name, "namespace": resource.namespace, "uid": resource.uid,
                      "generation": 2, "annotations": dict(resource.annotations)},
         "spec": spec, "status": dict(resource.status)}
    )  # fmt: skip
    decision = reconcile(RULES[resource.kind], changed, secret, LATER, state_key=TEST_STATE_KEY)
    assert decision.secret is not None
    written = SecretSnapshot.from_api(decision.secret)
    scope = StateScope(resource.kind, resource.namespace, resource.name, secret.name)
    assert is_sealed(written.annotations, TEST_STATE_KEY, scope)
    assert written.data == secret.data
    assert decision.status["revision"] == resource.status["revision"]
    assert [e.reason for e in decision.events] == []
    # ... and from then on it is believed by its MAC, with nothing more to write.
    again = reconcile(RULES[resource.kind], changed, written, LATER, state_key=TEST_STATE_KEY)
    assert again.secret is None


@pytest.mark.parametrize(("version", "name"), CASES)
def test_without_a_mac_a_moved_timestamp_is_not_believed(version: str, name: str) -> None:
    resource, secret = load(version, name)
    moved = with_annotation(secret, "credsmith.io/rotated-at", "2099-01-01T00:00:00Z")
    decision = reconcile(RULES[resource.kind], resource, moved, LATER, state_key=TEST_STATE_KEY)
    assert decision.status["revision"] == resource.status["revision"] + 1
    untrusted = [e.message for e in decision.events if e.reason == "Untrusted"]
    assert len(untrusted) == 1
    assert "rotated-at" in untrusted[0]


@pytest.mark.parametrize("version", ["state_v1", "state_v2"])
def test_the_registry_lists_them(version: str) -> None:
    members = [load(version, n) for v, n in CASES if v == version and n.startswith("api-client")]
    found = registry_contents(members, LATER, TEST_STATE_KEY)
    assert sorted(e["name"] for e in found.entries) == sorted(m[0].name for m in members)
