"""Trust nothing read back from the cluster (issue 11): one test per finding, against the
local control plane, asserting the fixed behaviour.

Chosen values (what an attacker writes into a Secret) are never recorded as issued values
and never printed: assertion messages describe them by role, not by content.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from credsmith.api.enums import HashAlgorithm
from credsmith.issuing.hashing import hash_secret
from credsmith.reconcile.consumers import rotation_spread
from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    b64,
    load_registry,
    manifest,
    present,
    ready_condition,
    registry_if_written,
    wait_for,
)

PLURALS = {"ServiceAccountCredential": "serviceaccountcredentials", "ApiClient": "apiclients"}
SECRET_HASH = "credsmith.io/secret-hash"
REVISION = "credsmith.io/revision"


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def api_client(name: str, registry: str = "reg", **spec: Any) -> dict[str, Any]:
    body = {"displayName": f"Client {name}", "registry": {"name": registry}, **spec}
    return manifest("ApiClient", name, body)


def sacred(name: str, **spec: Any) -> dict[str, Any]:
    return manifest("ServiceAccountCredential", name, {"serviceAccount": f"sa-{name}", **spec})


def get(custom: client.CustomObjectsApi, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name),
    )
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == type_:
            return dict(found)
    return None


def wait_reason(
    custom: client.CustomObjectsApi,
    namespace: str,
    kind: str,
    name: str,
    reason: str,
    timeout: float = 60,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        obj = get(custom, namespace, kind, name)
        ready = ready_condition(obj)
        return obj if ready and ready["reason"] == reason else None

    found: dict[str, Any] = wait_for(reached, timeout, what=f"Ready reason {reason} on {name}")
    return found


def wait_revision(
    custom: client.CustomObjectsApi,
    namespace: str,
    kind: str,
    name: str,
    revision: int,
    timeout: float = 60,
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        obj = get(custom, namespace, kind, name)
        ready = ready_condition(obj)
        status = obj.get("status") or {}
        ok = status.get("revision") == revision and ready and ready["status"] == "True"
        return obj if ok else None

    found: dict[str, Any] = wait_for(reached, timeout, what=f"revision {revision} of {name}")
    return found


def secret_data(
    core: client.CoreV1Api, exposure: Exposure, namespace: str, name: str
) -> dict[str, str]:
    """Decoded data of one of our Secrets, recording its (issued) secret values."""
    raw = client.ApiClient().sanitize_for_serialization(
        core.read_namespaced_secret(name, namespace)
    )
    return exposure.record_secret(raw)


def document(core: client.CoreV1Api, namespace: str, name: str = "reg") -> dict[str, Any] | None:
    try:
        secret = core.read_namespaced_secret(name, namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    found: dict[str, Any] = json.loads(base64.b64decode((secret.data or {})["clients.json"]))
    return found


def entries_for(core: client.CoreV1Api, namespace: str, client_id: str) -> list[dict[str, Any]]:
    found = document(core, namespace) or {"clients": []}
    return [e for e in found["clients"] if e["clientId"] == client_id]


def events(core: client.CoreV1Api, namespace: str, name: str) -> list[Any]:
    found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return list(found.items)


def events_once_posted(
    core: client.CoreV1Api, namespace: str, name: str, type_: str, reason: str
) -> list[Any]:
    """The object's Events once one of `type_` and `reason` is among them. A pass posts its
    Events after its Secret and status writes, so a test that saw those waits a moment."""

    def posted() -> list[Any] | None:
        found = events(core, namespace, name)
        return found if any((e.type, e.reason) == (type_, reason) for e in found) else None

    return list(wait_for(posted, 10, what=f"a {type_} {reason} Event"))


def sha256_forms(value: str) -> list[str]:
    """The SHA256 of `value` as the registry could spell it: credsmith's hash string, and the
    bare digest in hex and base64."""
    digest = hashlib.sha256(value.encode()).digest()
    return [
        hash_secret(value, HashAlgorithm.SHA256),
        digest.hex(),
        base64.b64encode(digest).decode(),
    ]


def published(value: str, text: str) -> bool:
    return any(form in text for form in sha256_forms(value))


# Secret values are compared outside `assert` statements: pytest explains a failed
# assertion with the values of its operands and call arguments, and these must not be shown.
def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def same_data(a: dict[str, str], b: dict[str, str]) -> bool:
    return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)


# (1) A client naming another's Secret gains nothing.
def test_a_client_naming_another_clients_secret_gets_no_registry_entry(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    alice_roles = [{"id": "reports.read", "name": "Read reports"}]
    apply(cluster, namespace, api_client("alice", roles=alice_roles))
    wait_revision(custom, namespace, "ApiClient", "alice", 1)
    alice = secret_data(core, exposure, namespace, "alice")
    wait_for(lambda: entries_for(core, namespace, alice["client_id"]), 60, what="alice listed")

    mallory_roles = [{"id": "admin", "name": "Everything"}]
    apply(cluster, namespace, api_client("mallory", secretName="alice", roles=mallory_roles))
    obj = wait_reason(custom, namespace, "ApiClient", "mallory", "SecretConflict")
    assert ready_condition(obj)["status"] == "False"  # type: ignore[index]
    time.sleep(5)  # the registry is re-derived after mallory's pass; give it every chance

    entries = entries_for(core, namespace, alice["client_id"])
    assert len(entries) == 1, f"{len(entries)} entries for alice's client ID"
    assert entries[0]["name"] == "alice"
    assert entries[0]["roles"] == alice_roles
    assert all(e["name"] != "mallory" for e in (document(core, namespace) or {})["clients"])
    verified = load_registry(core, namespace, "reg", tmp_path).verify(
        alice["client_id"], alice["client_secret"]
    )
    assert verified is not None
    assert verified.name == "alice"
    assert verified.role_ids == {"reports.read"}
    # alice's Secret was not touched by mallory's presence.
    untouched = same_data(secret_data(core, exposure, namespace, "alice"), alice)
    assert untouched, "alice's Secret changed"


# (2) One entry per client ID; the later client is told why.
def test_a_duplicate_client_id_is_refused_to_the_later_client(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    shared = {"value": "svc-shared-client"}
    apply(cluster, namespace, api_client("first", clientId=shared, roles=[{"id": "one"}]))
    wait_revision(custom, namespace, "ApiClient", "first", 1)
    time.sleep(1.1)  # creationTimestamp has whole seconds
    apply(cluster, namespace, api_client("second", clientId=shared, roles=[{"id": "two"}]))

    later = wait_reason(custom, namespace, "ApiClient", "second", "DuplicateClientId")
    assert ready_condition(later)["status"] == "False"  # type: ignore[index]
    stalled = condition(later, "Stalled")
    assert stalled is not None
    assert stalled["status"] == "True"
    assert "first" in ready_condition(later)["message"]  # type: ignore[index]
    earlier = get(custom, namespace, "ApiClient", "first")
    assert ready_condition(earlier)["status"] == "True"  # type: ignore[index]

    first = secret_data(core, exposure, namespace, "first")
    wait_for(lambda: entries_for(core, namespace, "svc-shared-client"), 60, what="listed")
    time.sleep(3)
    entries = entries_for(core, namespace, "svc-shared-client")
    assert [(e["name"], e["roles"]) for e in entries] == [("first", [{"id": "one"}])]
    registry = load_registry(core, namespace, "reg", tmp_path)
    found = registry.verify("svc-shared-client", first["client_secret"])
    assert found is not None
    assert found.name == "first"
    second_data = core.list_namespaced_secret(namespace, field_selector="metadata.name=second")
    if second_data.items:  # the later client may have its own Secret; it must not verify
        second = secret_data(core, exposure, namespace, "second")
        found = registry.verify("svc-shared-client", second["client_secret"])
        assert found is None, "the later client's secret verifies"

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "apiclients", "first")

    def second_listed() -> bool:
        entries = entries_for(core, namespace, "svc-shared-client")
        return len(entries) == 1 and entries[0]["name"] == "second"

    wait_for(second_listed, 60, what="the later client listed once the earlier is gone")
    obj = wait_for(
        lambda: (
            (o := get(custom, namespace, "ApiClient", "second"))
            and (c := ready_condition(o))
            and c["status"] == "True"
            and o
        ),
        60,
        what="the later client Ready",
    )
    assert condition(obj, "Stalled") is None or condition(obj, "Stalled")["status"] == "False"  # type: ignore[index]
    second = secret_data(core, exposure, namespace, "second")
    found = load_registry(core, namespace, "reg", tmp_path).verify(
        "svc-shared-client", second["client_secret"]
    )
    assert found is not None
    assert found.name == "second"
    assert found.role_ids == {"two"}
    found = load_registry(core, namespace, "reg", tmp_path).verify(
        "svc-shared-client", first["client_secret"]
    )
    assert found is None, "the deleted client's secret still verifies"


# (3) A hand-edited value is replaced, never published.
CHOSEN = {
    "weak": "password123",
    # Right length and alphabet (the recorded shape): only the fingerprint can catch it.
    "well-shaped": "Chosen0value0of0the0right0shape0AbCdEfGhIjKlMnOp",
}


@pytest.mark.parametrize("kind_of_value", sorted(CHOSEN))
def test_a_hand_edited_value_is_reissued_and_never_published(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
    kind_of_value: str,
) -> None:
    chosen = CHOSEN[kind_of_value]
    assert kind_of_value == "weak" or (len(chosen) == 48 and chosen.isalnum())
    apply(cluster, namespace, api_client("victim", roles=[{"id": "admin"}]))
    wait_revision(custom, namespace, "ApiClient", "victim", 1)
    before = secret_data(core, exposure, namespace, "victim")
    client_id = before["client_id"]
    wait_for(lambda: entries_for(core, namespace, client_id), 60, what="listed")

    core.patch_namespaced_secret("victim", namespace, {"data": {"client_secret": b64(chosen)}})

    deadline = time.monotonic() + 60
    checks = 0
    while True:
        # Never, at any moment we look: the chosen value verifies or its hash is published.
        text = json.dumps(document(core, namespace))
        leaked = published(chosen, text)
        assert not leaked, "the hash of the chosen value was published"
        registry = load_registry(core, namespace, "reg", tmp_path)
        found = registry.verify(client_id, chosen)
        assert found is None, "the chosen value verifies"
        checks += 1
        obj = get(custom, namespace, "ApiClient", "victim")
        if (obj.get("status") or {}).get("revision") == 2:
            break
        assert time.monotonic() < deadline, "no re-issue within 60s"
        time.sleep(0.2)
    assert checks >= 1

    raw = core.read_namespaced_secret("victim", namespace)
    current = base64.b64decode(present(raw.data)["client_secret"]).decode()
    kept = same(current, chosen)
    assert not kept, "the chosen value was kept"
    after = secret_data(core, exposure, namespace, "victim")  # records only the new value
    renewed = not same(after["client_secret"], before["client_secret"])
    assert renewed, "the value before the edit came back"
    shaped = len(after["client_secret"]) == 48 and after["client_secret"].isalnum()
    assert shaped, "the re-issued value does not have the spec's shape"
    assert after["client_id"] == client_id
    assert present(present(raw.metadata).annotations)[REVISION] == "2"
    assert "client_secret_previous" not in after  # an untrusted value is not kept valid

    reissued = [
        e
        for e in events_once_posted(core, namespace, "victim", "Warning", "Reissued")
        if e.reason == "Reissued" and e.type == "Warning"
    ]
    assert len(reissued) == 1
    message = reissued[0].message
    assert "client_secret" in message  # says what was wrong ...
    expected = "shape" if kind_of_value == "weak" else "fingerprint"
    assert expected in message, "the Reissued event does not name the problem"
    named = chosen in message
    assert not named, "the Reissued event shows the chosen value"  # ... never the value
    assert exposure.leaks(message) == []

    def new_value_verifies() -> bool:
        found = load_registry(core, namespace, "reg", tmp_path).verify(
            client_id, after["client_secret"]
        )
        return found is not None and found.name == "victim"

    wait_for(new_value_verifies, 60, what="the re-issued value registered")
    registry = load_registry(core, namespace, "reg", tmp_path)
    found = registry.verify(client_id, chosen)
    assert found is None, "the chosen value verifies"
    found = registry.verify(client_id, before["client_secret"])
    assert found is None, "the value before the edit still verifies"
    leaked = published(chosen, json.dumps(document(core, namespace)))
    assert not leaked, "the hash of the chosen value was published"


# (4) A forged hash annotation never verifies.
def test_a_forged_hash_annotation_never_verifies(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    apply(cluster, namespace, api_client("target", roles=[{"id": "admin"}]))
    wait_revision(custom, namespace, "ApiClient", "target", 1)
    real = secret_data(core, exposure, namespace, "target")
    client_id = real["client_id"]

    def real_verifies() -> bool:
        registry = registry_if_written(core, namespace, "reg", tmp_path)
        return (
            registry is not None and registry.verify(client_id, real["client_secret"]) is not None
        )

    wait_for(real_verifies, 60, what="the real value registered")
    original_hash = present(
        present(core.read_namespaced_secret("target", namespace).metadata).annotations
    )[SECRET_HASH]
    made_from_value = original_hash == hash_secret(real["client_secret"], HashAlgorithm.SHA256)
    assert made_from_value, "the hash annotation is not the SHA256 of the value"

    chosen = "Forged0value0of0the0attackers0choice0XyZ0123456"
    forged = hash_secret(chosen, HashAlgorithm.SHA256)
    core.patch_namespaced_secret(
        "target", namespace, {"metadata": {"annotations": {SECRET_HASH: forged}}}
    )

    deadline = time.monotonic() + 60
    while True:
        registry = load_registry(core, namespace, "reg", tmp_path)
        found = registry.verify(client_id, chosen)
        assert found is None, "the forged hash verifies"
        leaked = published(chosen, json.dumps(document(core, namespace)))
        assert not leaked, "the forged hash was published"
        notes = present(core.read_namespaced_secret("target", namespace).metadata).annotations
        if present(notes).get(SECRET_HASH) == original_hash and real_verifies():
            break
        assert time.monotonic() < deadline, "the hash was not re-made within 60s"
        time.sleep(0.2)

    # Re-made from the value, not re-issued: same value, same revision.
    after = secret_data(core, exposure, namespace, "target")
    unchanged = same_data(after, real)
    assert unchanged, "the credential changed"
    obj = get(custom, namespace, "ApiClient", "target")
    assert obj["status"]["revision"] == 1
    assert ready_condition(obj)["status"] == "True"  # type: ignore[index]
    posted = events_once_posted(core, namespace, "target", "Warning", "Untrusted")
    reasons = [(e.type, e.reason) for e in posted]
    assert ("Warning", "Untrusted") in reasons
    assert ("Warning", "Reissued") not in reasons
    time.sleep(2)
    found = load_registry(core, namespace, "reg", tmp_path).verify(client_id, chosen)
    assert found is None, "the forged hash verifies"


# (5) Expiry of the previous value does not wait for a valid spec.
def test_the_previous_value_expires_on_time_while_the_template_is_broken(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    template = {"data": {"url": "https://{{ clientId }}@api.example"}}
    body = sacred("typo", rotation={"overlap": "20s"}, secretTemplate=template)
    apply(cluster, namespace, body)
    wait_revision(custom, namespace, "ServiceAccountCredential", "typo", 1)
    first = secret_data(core, exposure, namespace, "typo")

    body["metadata"]["annotations"] = {"credsmith.io/rotate": "now"}
    apply(cluster, namespace, body)
    rotated = wait_revision(custom, namespace, "ServiceAccountCredential", "typo", 2, 30)
    expires = datetime_of(rotated["status"]["previousExpiresAt"])
    data = secret_data(core, exposure, namespace, "typo")
    kept = same(data["client_secret_previous"], first["client_secret"])
    assert kept, "the previous value is not the first one"

    body["spec"]["secretTemplate"] = {"data": {"url": "https://{{ clientId @api.example"}}
    apply(cluster, namespace, body)
    wait_reason(custom, namespace, "ServiceAccountCredential", "typo", "InvalidTemplate", 30)
    assert time.time() < expires - 3, "the template broke too late to test anything"
    secret = core.read_namespaced_secret("typo", namespace)
    assert "client_secret_previous" in present(secret.data)  # still within the overlap

    def previous_gone() -> bool:
        found = core.read_namespaced_secret("typo", namespace)
        notes = present(found.metadata).annotations or {}
        return "client_secret_previous" not in present(found.data) and not any(
            key.startswith("credsmith.io/previous-") for key in notes
        )

    wait_for(previous_gone, expires - time.time() + 30, what="the previous value to expire")
    assert abs(time.time() - expires) < 5, "expiry was not on time"
    after = secret_data(core, exposure, namespace, "typo")
    unchanged = same(after["client_secret"], data["client_secret"])
    assert unchanged, "the current value changed"
    assert after["url"] == data["url"]  # the existing template output, not a new rendering
    obj = get(custom, namespace, "ServiceAccountCredential", "typo")
    assert ready_condition(obj)["reason"] == "InvalidTemplate"  # type: ignore[index]
    assert obj["status"]["revision"] == 2


def datetime_of(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


# (7) A rotation period floor of 1m at apply.
@pytest.mark.parametrize("period", ["1s", "59s", "59999ms"])
def test_a_rotation_period_below_one_minute_is_refused_at_apply(
    cluster: Cluster, namespace: str, period: str
) -> None:
    for body in (
        sacred("fast", rotation={"period": period}),
        api_client("fast", rotation={"period": period}),
    ):
        result = cluster.kubectl(
            "apply", "-n", namespace, "-f", "-", stdin=json.dumps(body), check=False
        )
        assert result.returncode != 0, f"period {period} accepted for {body['kind']}"
        assert "spec.rotation" in result.stderr
        assert "rotation.period must be at least 1m" in result.stderr
    listed = cluster.kubectl("get", "sacred,apiclients", "-n", namespace, "-o", "name").stdout
    assert listed.strip() == ""


def test_a_rotation_period_of_one_minute_is_accepted(
    cluster: Cluster, custom: client.CustomObjectsApi, operator: Operator, namespace: str
) -> None:
    apply(cluster, namespace, sacred("minutely", rotation={"period": "1m", "overlap": "30s"}))
    apply(cluster, namespace, api_client("minutely-client", rotation={"period": "60s"}))
    for kind, name in (("ServiceAccountCredential", "minutely"), ("ApiClient", "minutely-client")):
        obj = wait_revision(custom, namespace, kind, name, 1)
        status = obj["status"]
        # A period after the rotation, and the resource's spread (up to a tenth of it).
        spread = rotation_spread(obj["metadata"]["uid"], timedelta(minutes=1)).total_seconds()
        due = datetime_of(status["rotatedAt"]) + 60 + spread
        assert -1 <= datetime_of(status["nextRotationAt"]) - due <= 1, (status, spread)


# (8) No oracle on the secret value in a template's outcome.
ORACLE = "{% if clientSecret[0] == 'a' %}{{ 1/0 }}{% endif %}"


def test_a_template_that_inspects_the_secret_is_refused_and_the_secret_untouched(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    body = sacred("oracle", secretTemplate={"data": {"probe": "{{ clientId }}"}})
    apply(cluster, namespace, body)
    wait_revision(custom, namespace, "ServiceAccountCredential", "oracle", 1)
    before = core.read_namespaced_secret("oracle", namespace)
    data = secret_data(core, exposure, namespace, "oracle")

    body["spec"]["secretTemplate"] = {"data": {"probe": ORACLE}}
    apply(cluster, namespace, body)
    obj = wait_reason(custom, namespace, "ServiceAccountCredential", "oracle", "InvalidTemplate")
    ready = ready_condition(obj)
    assert ready is not None
    assert ready["status"] == "False"
    assert "clientSecret" in ready["message"]
    assert exposure.leaks(ready["message"]) == []
    time.sleep(3)
    after = core.read_namespaced_secret("oracle", namespace)
    assert present(after.metadata).resource_version == present(before.metadata).resource_version
    unchanged = same_data(secret_data(core, exposure, namespace, "oracle"), data)
    assert unchanged, "the Secret's data changed"

    # The outcome is the same whatever the value: fresh credentials (values starting with
    # 'a' or not) with the oracle from the start are all refused, none issued.
    names = [f"fresh-{i}" for i in range(6)]
    for name in names:
        apply(cluster, namespace, sacred(name, secretTemplate={"data": {"probe": ORACLE}}))
    messages = set()
    for name in names:
        fresh = wait_reason(custom, namespace, "ServiceAccountCredential", name, "InvalidTemplate")
        messages.add(ready_condition(fresh)["message"].replace(name, "NAME"))  # type: ignore[index]
    assert len(messages) == 1, "the message depends on something per resource"
