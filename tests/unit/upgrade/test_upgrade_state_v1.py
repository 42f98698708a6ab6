"""Secrets and resources as credsmith 0.1.0 wrote them (state version 1, captured by
tests/fixtures/state_v1/capture.py) are read by the current code with no write, no status
change, no Event and no rotation: an upgrade is invisible until something else changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.registry import registry_contents
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from tests.state_key import TEST_STATE_KEY

FIXTURES = Path(__file__).parents[2] / "fixtures" / "state_v1"
RULES = {r.kind: r for r in (SERVICE_ACCOUNT_CREDENTIAL, API_CLIENT)}
LATER = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # after the capture, before any expiry


def load(name: str) -> tuple[ResourceSnapshot, SecretSnapshot]:
    case: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
    return ResourceSnapshot.from_api(case["resource"]), SecretSnapshot.from_api(case["secret"])


CASES = sorted(p.stem for p in FIXTURES.glob("*.yaml"))


def test_every_kind_of_fixture_is_there() -> None:
    assert len(CASES) == 7
    assert all("credsmith.io/state-version" not in load(c)[1].annotations for c in CASES)


@pytest.mark.parametrize("name", CASES)
def test_version_1_is_read_without_a_write_or_a_rotation(name: str) -> None:
    resource, secret = load(name)
    decision = reconcile(RULES[resource.kind], resource, secret, LATER, state_key=TEST_STATE_KEY)
    assert decision.secret is None
    assert decision.status == resource.status
    assert decision.events == ()


@pytest.mark.parametrize("name", CASES)
def test_the_next_write_upgrades_to_version_2_and_keeps_the_value(name: str) -> None:
    resource, secret = load(name)
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
    assert written.annotations["credsmith.io/state-version"] == "2"
    assert written.data == secret.data
    assert decision.status["revision"] == resource.status["revision"]
    assert [e.reason for e in decision.events] == []


def test_registry_lists_version_1_clients_with_their_recorded_hashes() -> None:
    members = [load(c) for c in CASES if c.startswith("api-client")]
    found = registry_contents(members, LATER, TEST_STATE_KEY)
    entries, duplicates = found.entries, found.duplicates
    assert duplicates == {}
    assert len(entries) == len(members)
    for (_, secret), entry in zip(
        sorted(members, key=lambda m: m[0].name),
        sorted(entries, key=lambda e: e["name"]),
        strict=True,
    ):
        assert entry["secret"]["hash"] == secret.annotations["credsmith.io/secret-hash"]
        if "credsmith.io/previous-secret-hash" in secret.annotations:
            assert (
                entry["previousSecret"]["hash"]
                == secret.annotations["credsmith.io/previous-secret-hash"]
            )
