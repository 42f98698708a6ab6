"""An upgrade is invisible (issue 11, finding 6): resources and Secrets exactly as credsmith
0.1.0 wrote them (state version 1, tests/fixtures/state_v1) are read by this operator with no
write to them, no status write and no rotation."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from credsmith.registry import ClientRegistry
from tests.e2e.cluster import GROUP, PLURALS, VERSION, Exposure, Operator, decode_data, wait_for

FIXTURES = Path(__file__).parents[1] / "fixtures" / "state_v1"


def load_fixtures() -> list[dict[str, Any]]:
    cases = [yaml.safe_load(p.read_text()) for p in sorted(FIXTURES.glob("*.yaml"))]
    assert len(cases) == 7, "a fixture is missing"
    return cases


def test_state_version_1_is_adopted_with_no_write_and_no_rotation(
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    cases = load_fixtures()
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
        created = custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, resource
        )
        created["status"] = status
        updated = custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, created
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
        assert "credsmith.io/state-version" not in (made.metadata.annotations or {})
        secrets[smeta["name"]] = made.metadata.resource_version

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

    for name, version in secrets.items():
        found = core.read_namespaced_secret(name, namespace)
        assert found.metadata.resource_version == version, f"Secret {name} was written"
        assert "credsmith.io/state-version" not in (found.metadata.annotations or {})
    for name, (plural, version) in resources.items():
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        assert obj["metadata"]["resourceVersion"] == version, f"{name}: status was written"
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
    registry = ClientRegistry.load(path)
    for case in cases:
        if case["resource"]["kind"] != "ApiClient":
            continue
        data = decode_data(case["secret"])
        for key in ("client_secret", "client_secret_previous"):
            if key in data:
                found = registry.verify(data["client_id"], data[key])
                assert found is not None, f"{case['resource']['metadata']['name']}: {key} refused"


def _registry_exists(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_secret("reg", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True
