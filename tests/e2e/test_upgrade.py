"""An upgrade is invisible (issue 11, finding 6; issue 21): resources and Secrets exactly as
credsmith 0.1.0 wrote them (state version 1, tests/fixtures/state_v1) and as main d4f13bf
wrote them (state version 2 without the state MAC, tests/fixtures/state_v2) are read by this
operator with no write to them, no status write and no rotation: believed once because
status agrees with them. The MAC is added on the next write for another reason."""

from __future__ import annotations

import copy
import functools
import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from credsmith.registry import ClientRegistry
from tests.e2e.cluster import (
    GROUP,
    PLURALS,
    VERSION,
    Exposure,
    Operator,
    decode_data,
    holds_for,
    present,
    wait_for,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
COUNTS = {"state_v1": 7, "state_v2": 8}
# What each version wrote in credsmith.io/state-version (none in version 1).
STATE_VERSION = {"state_v1": None, "state_v2": "2"}
STATE_MAC = "credsmith.io/state-mac"


def load_fixtures(version: str) -> list[dict[str, Any]]:
    paths = sorted((FIXTURES / version).glob("*.yaml"))
    cases = [yaml.safe_load(p.read_text()) for p in paths]
    assert len(cases) == COUNTS[version], "a fixture is missing"
    return cases


@pytest.mark.parametrize("version", sorted(COUNTS))
def test_state_written_before_is_adopted_with_no_write_and_no_rotation(
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
    version: str,
) -> None:
    cases = load_fixtures(version)
    operator.stop()  # the previous release's objects are there before the new one starts

    resources: dict[str, tuple[str, str]] = {}  # name -> (plural, resourceVersion)
    secrets: dict[str, str] = {}  # name -> resourceVersion
    for case in cases:
        resource = copy.deepcopy(case["resource"])
        name = resource["metadata"]["name"]
        plural = PLURALS[resource["kind"]]
        status = resource.pop("status")
        metadata = resource["metadata"]
        for key in ("uid", "resourceVersion", "generation", "namespace"):
            metadata.pop(key, None)
        created = cast(
            dict[str, Any],
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, resource),
        )
        created["status"] = status
        updated = cast(
            dict[str, Any],
            custom.replace_namespaced_custom_object_status(
                GROUP, VERSION, namespace, plural, name, created
            ),
        )
        assert updated["metadata"]["generation"] == status["observedGeneration"]
        assert updated["status"] == status, f"{name}: the schema dropped part of the status"
        resources[name] = (plural, updated["metadata"]["resourceVersion"])

        secret = copy.deepcopy(case["secret"])
        smeta = secret["metadata"]
        smeta["namespace"] = namespace
        smeta.pop("resourceVersion", None)
        for ref in smeta.get("ownerReferences") or ():
            ref["uid"] = created["metadata"]["uid"]
        made = core.create_namespaced_secret(namespace, secret)
        exposure.record_secret(secret)  # its values are searched for in logs and Events
        notes = present(made.metadata).annotations or {}
        assert notes.get("credsmith.io/state-version") == STATE_VERSION[version]
        assert STATE_MAC not in notes
        secrets[smeta["name"]] = present(present(made.metadata).resource_version)

    logs_before = len(operator.log_files)
    operator.start()

    def all_reconciled() -> bool:
        files = operator.log_files
        if len(files) <= logs_before:
            return False
        text = files[-1].read_text(errors="replace")
        return all(
            f"{case['resource']['kind']}/{namespace}/{name}: reconciled in" in text
            for case in cases
            for name in [case["resource"]["metadata"]["name"]]
        )

    wait_for(all_reconciled, 120, interval=0.5, what="every fixture reconciled once")
    # The registry of the three ApiClients is written by then too; give a requeue, a second
    # pass or a late Event every chance to show.
    wait_for(
        lambda: _registry_exists(core, namespace), 60, what="the registry Secret of the fixtures"
    )
    time.sleep(5)

    for name, written in secrets.items():
        found = core.read_namespaced_secret(name, namespace)
        assert present(found.metadata).resource_version == written, f"Secret {name} was written"
        assert STATE_MAC not in (present(found.metadata).annotations or {})
    for name, (plural, written) in resources.items():
        obj = cast(
            dict[str, Any],
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name),
        )
        assert obj["metadata"]["resourceVersion"] == written, f"{name}: status was written"
    reasons = [
        (e.involved_object.name, e.reason) for e in core.list_namespaced_event(namespace).items
    ]
    assert [r for r in reasons if r[1] in ("Rotated", "Reissued", "Issued", "Untrusted")] == []

    # The registry holds the three clients with their recorded (version 1) hashes: the hash
    # made by 0.1.0 is checked against the value, not re-made.
    registry = core.read_namespaced_secret("reg", namespace)
    document = decode_data(client.ApiClient().sanitize_for_serialization(registry))
    entries = json.loads(document["clients.json"])["clients"]
    assert sorted(e["name"] for e in entries) == [
        "api-client-argon2id", "api-client-pbkdf2", "api-client-sha256",
    ]  # fmt: skip
    for case in cases:
        if case["resource"]["kind"] != "ApiClient":
            continue
        notes = case["secret"]["metadata"]["annotations"]
        entry = next(e for e in entries if e["name"] == case["resource"]["metadata"]["name"])
        assert entry["secret"]["hash"] == notes["credsmith.io/secret-hash"]
    # ... and an API server still lets every client in with the value it has (and, during
    # the overlap, the previous one).
    path = tmp_path / "clients.json"
    path.write_text(document["clients.json"])
    clients = ClientRegistry.load(path)
    for case in cases:
        if case["resource"]["kind"] != "ApiClient":
            continue
        data = decode_data(case["secret"])
        for key in ("client_secret", "client_secret_previous"):
            if key in data:
                verified = clients.verify(data["client_id"], data[key])
                assert verified is not None, (
                    f"{case['resource']['metadata']['name']}: {key} refused"
                )

    # The next write for another reason (a template label: a re-render, no new value) adds
    # the state MAC, and keeps every value.
    for case in cases:
        name, kind = case["resource"]["metadata"]["name"], case["resource"]["kind"]
        template = dict(case["resource"]["spec"].get("secretTemplate") or {})
        labels = {**(template.get("labels") or {}), "upgraded": "yes"}
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name,
            {"spec": {"secretTemplate": {**template, "labels": labels}}},
        )  # fmt: skip

    def sealed(name: str) -> bool:
        found = core.read_namespaced_secret(name, namespace)
        return STATE_MAC in (present(found.metadata).annotations or {})

    for case in cases:
        name = case["secret"]["metadata"]["name"]
        wait_for(functools.partial(sealed, name), 60, what=f"the state MAC on {name}")
        found = client.ApiClient().sanitize_for_serialization(
            core.read_namespaced_secret(name, namespace)
        )
        before, after = decode_data(case["secret"]), decode_data(found)
        kept = all(after.get(k) == v for k, v in before.items())
        assert kept, f"Secret {name}: a value changed"
        assert found["metadata"]["resourceVersion"] != secrets[name]

    def no_new_value() -> bool:
        reasons = {e.reason for e in core.list_namespaced_event(namespace).items}
        return not {"Rotated", "Reissued", "Issued", "Untrusted"} & reasons

    # A pass posts its Events after its writes: make sure none follows the sealing.
    holds_for(no_new_value, what="no Rotated, Reissued, Issued or Untrusted Event")


def _registry_exists(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_secret("reg", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
