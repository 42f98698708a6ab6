"""ServiceAccountCredential end to end: the operator against a real API server."""

from __future__ import annotations

import json
import string
import time
from typing import Any, cast

import pytest
from kubernetes import client

from credsmith.runtime.writes import CRASH_AFTER_SECRET_WRITE, CRASH_EXIT_CODE
from tests.e2e.cluster import (
    GROUP,
    VERSION,
    Cluster,
    Exposure,
    Operator,
    manifest,
    present,
    ready_condition,
    wait_for,
)

KIND = "ServiceAccountCredential"
PLURAL = "serviceaccountcredentials"


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def sacred(name: str, **spec: Any) -> dict[str, Any]:
    return manifest(KIND, name, {"serviceAccount": f"sa-{name}", **spec})


def get(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    return obj


def wait_ready(cluster: Cluster, namespace: str, name: str, timeout: int = 60) -> None:
    cluster.kubectl(
        "wait", "--for=condition=Ready", f"--timeout={timeout}s", "-n", namespace, f"sacred/{name}"
    )


def wait_reason(
    custom: client.CustomObjectsApi, namespace: str, name: str, reason: str, timeout: float = 60
) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        obj = get(custom, namespace, name)
        condition = ready_condition(obj)
        return obj if condition and condition["reason"] == reason else None

    found: dict[str, Any] = wait_for(reached, timeout, what=f"Ready reason {reason} on {name}")
    return found


def read_secret(
    core: client.CoreV1Api, exposure: Exposure, namespace: str, name: str
) -> tuple[dict[str, str], client.V1Secret]:
    secret = core.read_namespaced_secret(name, namespace)
    raw = client.ApiClient().sanitize_for_serialization(secret)
    return exposure.record_secret(raw), secret


def events(core: client.CoreV1Api, namespace: str, name: str) -> list[client.CoreV1Event]:
    found = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    return list(found.items)


ALPHANUMERIC = set(string.ascii_letters + string.digits)


@pytest.mark.parametrize(
    ("spec", "secret_type", "keys"),
    [
        ({}, "Opaque", {"client_id", "client_secret"}),
        ({"type": "APIKey"}, "Opaque", {"key_id", "api_key"}),
        ({"type": "BasicAuth"}, "kubernetes.io/basic-auth", {"username", "password"}),
        (
            {"type": "KeyPair", "keyPair": {"algorithm": "ECDSA-P256"}},
            "Opaque",
            {"client_id", "key_id", "private_key.pem", "public_key.pem", "public_jwk.json"},
        ),
    ],
    ids=["ClientSecret", "APIKey", "BasicAuth", "KeyPair"],
)
def test_each_type_issues_exactly_its_keys(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    spec: dict[str, Any],
    secret_type: str,
    keys: set[str],
) -> None:
    apply(
        cluster,
        namespace,
        sacred("cred", **spec, secret={"length": 40} if "keyPair" not in spec else {}),
    )
    wait_ready(cluster, namespace, "cred")

    data, secret = read_secret(core, exposure, namespace, "cred")
    assert set(data) == keys
    assert secret.type == secret_type
    status = get(custom, namespace, "cred")["status"]
    assert status["revision"] == 1
    assert status["secretName"] == "cred"
    assert status["observedGeneration"] == 1
    assert status["fingerprint"].startswith("sha256:")
    client_id = data.get("client_id") or data.get("key_id") or data.get("username")
    assert status["clientId"] in (client_id, data.get("client_id"))
    value = data.get("client_secret") or data.get("api_key") or data.get("password")
    if value is not None:
        assert len(value) == 40
        assert set(value) <= ALPHANUMERIC
    else:
        assert data["private_key.pem"].startswith("-----BEGIN PRIVATE KEY-----")
        assert status["keyId"] == data["key_id"] == json.loads(data["public_jwk.json"])["kid"]
    wait_for(
        lambda: "Issued" in [e.reason for e in events(core, namespace, "cred")],
        30,
        what="an Issued event",
    )


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"title": "no service account"}, "spec.serviceAccount"),
        (
            {"serviceAccount": "a", "secret": {"alphabet": "Hex", "length": 20}},
            "spec.secret.length",
        ),
        ({"serviceAccount": "a", "secret": {"length": 8}}, "spec.secret.length"),
        ({"serviceAccount": "a", "secret": {"alphabet": "Emoji"}}, "spec.secret.alphabet"),
        (
            {"serviceAccount": "a", "rotation": {"period": "1h", "overlap": "2h"}},
            "spec.rotation.overlap",
        ),
        ({"serviceAccount": "a", "rotation": {"period": "1 day"}}, "spec.rotation.period"),
        ({"serviceAccount": "a", "title": "x" * 129}, "spec.title"),
        ({"serviceAccount": "a", "description": "line\nbreak"}, "spec.description"),
        ({"serviceAccount": "a", "type": "Password"}, "spec.type"),
        ({"serviceAccount": "a", "keyPair": {"algorithm": "Ed25519"}}, "spec.keyPair"),
        ({"serviceAccount": "a", "clientId": {"prefix": "Bad Prefix"}}, "spec.clientId.prefix"),
        # An identity provider holds client secrets and public keys, not these.
        (
            {"serviceAccount": "a", "type": "APIKey", "identityProvider": {"name": "hydra"}},
            "spec.identityProvider",
        ),
        (
            {"serviceAccount": "a", "type": "BasicAuth", "identityProvider": {"name": "hydra"}},
            "spec.identityProvider",
        ),
        (
            {"serviceAccount": "a", "identityProvider": {"kind": "Hydra", "name": "hydra"}},
            "spec.identityProvider.kind",
        ),
    ],
)
def test_schema_rejects_invalid_manifests_naming_the_field(
    cluster: Cluster, namespace: str, spec: dict[str, Any], field: str
) -> None:
    result = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps(manifest(KIND, "bad", spec)),
        check=False,
    )
    assert result.returncode != 0
    assert "is invalid" in result.stderr
    assert field in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("before", "after", "field"),
    [
        ({}, {"type": "APIKey"}, "spec.type"),
        ({"secretName": "one"}, {"secretName": "two"}, "spec.secretName"),
        ({}, {"secretName": "other"}, "spec.secretName"),
        ({"clientId": {"value": "fixed-id"}}, {"clientId": {"value": "new-id"}}, "spec.clientId"),
    ],
)
def test_immutable_fields_are_rejected_on_update(
    cluster: Cluster, namespace: str, before: dict[str, Any], after: dict[str, Any], field: str
) -> None:
    apply(cluster, namespace, sacred("fixed", **before))
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", stdin=json.dumps(sacred("fixed", **after)), check=False
    )
    assert result.returncode != 0
    assert field in result.stderr, result.stderr
    assert "immutable" in result.stderr


def test_foreign_secret_is_a_conflict_left_untouched_until_it_goes(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    foreign = core.create_namespaced_secret(
        namespace,
        cast(
            client.V1Secret,
            {"metadata": {"name": "taken"}, "stringData": {"password": "not-ours-0123456789"}},
        ),
    )
    apply(cluster, namespace, sacred("taken"))
    obj = wait_reason(custom, namespace, "taken", "SecretConflict")
    assert ready_condition(obj)["status"] == "False"  # type: ignore[index]
    assert "Secret taken already exists" in ready_condition(obj)["message"]  # type: ignore[index]
    stalled = [c for c in obj["status"]["conditions"] if c["type"] == "Stalled"]
    assert [c["status"] for c in stalled] == ["True"]
    warnings = wait_for(
        lambda: [e for e in events(core, namespace, "taken") if e.reason == "SecretConflict"],
        30,
        what="a SecretConflict event",
    )
    assert warnings[0].type == "Warning"

    time.sleep(2)  # give the operator time to do something wrong
    after = core.read_namespaced_secret("taken", namespace)
    assert present(after.metadata).resource_version == present(foreign.metadata).resource_version
    assert after.data == foreign.data
    assert not present(after.metadata).owner_references

    core.delete_namespaced_secret("taken", namespace)
    wait_ready(cluster, namespace, "taken", timeout=90)
    issued = core.read_namespaced_secret("taken", namespace)
    assert set(present(issued.data)) == {"client_id", "client_secret"}


def test_crash_between_secret_and_status_adopts_the_same_secret(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    operator.stop()
    operator.start(env={CRASH_AFTER_SECRET_WRITE: "1"})
    apply(cluster, namespace, sacred("crashy"))
    process = operator.process
    assert process is not None
    assert process.wait(60) == CRASH_EXIT_CODE
    operator.process = None

    written, _ = read_secret(core, exposure, namespace, "crashy")
    assert "status" not in get(custom, namespace, "crashy")  # the crash came before status

    operator.start()
    wait_ready(cluster, namespace, "crashy")
    adopted, _ = read_secret(core, exposure, namespace, "crashy")
    assert adopted == written
    status = get(custom, namespace, "crashy")["status"]
    assert status["revision"] == 1
    assert status["clientId"] == written["client_id"]
    assert ready_condition({"status": status})["reason"] == "Issued"  # type: ignore[index]


def test_deleted_secret_is_reissued_with_a_warning(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("lost"))
    wait_ready(cluster, namespace, "lost")
    first, _ = read_secret(core, exposure, namespace, "lost")

    core.delete_namespaced_secret("lost", namespace)
    wait_for(
        lambda: get(custom, namespace, "lost")["status"]["revision"] == 2, 60, what="revision 2"
    )
    wait_ready(cluster, namespace, "lost")
    second, _ = read_secret(core, exposure, namespace, "lost")
    assert second["client_secret"] != first["client_secret"]
    assert second["client_id"] == first["client_id"]
    reissued = wait_for(
        lambda: [e for e in events(core, namespace, "lost") if e.reason == "Reissued"],
        30,
        what="a Reissued event",
    )
    assert reissued[0].type == "Warning"


def test_keys_stripped_from_the_secret_are_reissued(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("stripped"))
    wait_ready(cluster, namespace, "stripped")
    first, _ = read_secret(core, exposure, namespace, "stripped")
    core.patch_namespaced_secret("stripped", namespace, {"data": {"client_secret": None}})
    wait_for(
        lambda: get(custom, namespace, "stripped")["status"]["revision"] == 2, 60, what="rev 2"
    )
    second, _ = read_secret(core, exposure, namespace, "stripped")
    assert second["client_secret"]
    assert second["client_secret"] != first["client_secret"]


def test_template_change_rerenders_and_length_change_rotates(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    template = {"data": {"url": "https://{{ clientId }}:{{ clientSecret }}@api"}}
    apply(cluster, namespace, sacred("shaped", secretTemplate=template))
    wait_ready(cluster, namespace, "shaped")
    first, _ = read_secret(core, exposure, namespace, "shaped")
    assert first["url"] == f"https://{first['client_id']}:{first['client_secret']}@api"

    template = {
        "data": {"dsn": "user={{ clientId }} password={{ clientSecret }}"},
        "labels": {"app": "x"},
    }
    apply(cluster, namespace, sacred("shaped", secretTemplate=template))

    def rerendered() -> dict[str, str] | None:
        data, secret = read_secret(core, exposure, namespace, "shaped")
        return (
            data
            if "dsn" in data and present(present(secret.metadata).labels).get("app") == "x"
            else None
        )

    second = wait_for(rerendered, 60, what="re-rendered template")
    assert "url" not in second
    assert second["client_secret"] == first["client_secret"]
    assert second["dsn"] == f"user={first['client_id']} password={first['client_secret']}"
    wait_for(lambda: get(custom, namespace, "shaped")["status"]["observedGeneration"] == 2, 30)
    assert get(custom, namespace, "shaped")["status"]["revision"] == 1

    apply(cluster, namespace, sacred("shaped", secretTemplate=template, secret={"length": 64}))
    obj = wait_reason(custom, namespace, "shaped", "Rotated")
    third, _ = read_secret(core, exposure, namespace, "shaped")
    assert len(third["client_secret"]) == 64
    assert third["client_id"] == first["client_id"]
    assert obj["status"]["revision"] == 2


def test_invalid_template_leaves_the_secret_as_it_was(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("templated", secretTemplate={"data": {"a": "{{ clientId }}"}}))
    wait_ready(cluster, namespace, "templated")
    _, before = read_secret(core, exposure, namespace, "templated")

    broken = {"data": {"a": "{{ clientId }}", "b": "{{ clientSecrett }}"}}
    apply(cluster, namespace, sacred("templated", secretTemplate=broken))
    obj = wait_reason(custom, namespace, "templated", "InvalidTemplate")
    message = ready_condition(obj)["message"]  # type: ignore[index]
    assert 'secretTemplate.data["b"]' in message
    assert "clientSecrett" in message
    _, after = read_secret(core, exposure, namespace, "templated")
    assert present(after.metadata).resource_version == present(before.metadata).resource_version

    apply(cluster, namespace, sacred("templated", secretTemplate={"data": {"b": "{{ clientId }}"}}))
    wait_reason(custom, namespace, "templated", "Issued")


def test_a_namespace_being_deleted_gets_no_retries(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    held = sacred("held")
    # The test's own finalizer keeps the resource while its namespace goes.
    held["metadata"]["finalizers"] = ["test.credsmith.io/hold"]
    apply(cluster, namespace, held)
    wait_ready(cluster, namespace, "held")
    core.delete_namespace(namespace)
    ref = f"{KIND}/{namespace}/held"
    try:
        # The namespace controller deletes the Secret; issuing it again is refused.
        wait_for(
            lambda: f"{ref}: its namespace is being deleted" in operator.logs(),
            60,
            what="the refused re-issue",
        )
        time.sleep(3)  # a retry would come 1 s, then 2 s after the refusal
        assert f"{ref}: API error" not in operator.logs()
    finally:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, "held", {"metadata": {"finalizers": None}}
        )


@pytest.mark.parametrize("policy", ["Delete", "Orphan"])
def test_deletion_policy_and_no_kopf_traces(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    policy: str,
) -> None:
    apply(cluster, namespace, sacred("owned", deletionPolicy=policy))
    wait_ready(cluster, namespace, "owned")
    _, secret = read_secret(core, exposure, namespace, "owned")
    obj = get(custom, namespace, "owned")
    assert not obj["metadata"].get("finalizers")
    annotations = obj["metadata"].get("annotations") or {}
    assert not [k for k in annotations if "kopf" in k]
    assert set(obj["status"]) >= {"conditions", "revision", "fingerprint"}
    assert not [k for k in obj["status"] if "kopf" in k]

    owners = present(secret.metadata).owner_references or []
    if policy == "Delete":
        assert [(o.kind, o.name, o.uid) for o in owners] == [
            (KIND, "owned", obj["metadata"]["uid"])
        ]
    else:
        assert owners == []

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "owned")
    if policy == "Delete":

        def collected() -> bool:
            names = [present(s.metadata).name for s in core.list_namespaced_secret(namespace).items]
            return "owned" not in names

        wait_for(collected, 60, what="garbage collection of the Secret")
    else:
        time.sleep(5)  # the garbage collector would have acted by now
        assert present(core.read_namespaced_secret("owned", namespace).metadata).name == "owned"


def test_hostile_metadata_and_unicode(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    huge = sacred("huge")
    huge["metadata"]["annotations"] = {"note": "x" * (1024 * 1024)}
    refused = cluster.kubectl(
        "create", "-n", namespace, "-f", "-", stdin=json.dumps(huge), check=False
    )
    assert refused.returncode != 0
    assert "metadata.annotations: Too long" in refused.stderr

    text = "Zugangsdaten für Ünïcödé ✓ 日本語 🚀"
    unicode = sacred(
        "unicode",
        title=text[:40],
        description=text,
        secretTemplate={"data": {"note": text + " {{ clientId }}"}, "annotations": {"x": text}},
    )
    unicode["spec"]["serviceAccount"] = text
    unicode["metadata"]["annotations"] = {"credsmith.io/rotate": text * 20}
    apply(cluster, namespace, unicode)
    wait_ready(cluster, namespace, "unicode")
    data, secret = read_secret(core, exposure, namespace, "unicode")
    assert data["note"] == f"{text} {data['client_id']}"
    assert present(present(secret.metadata).annotations)["x"] == text

    tls = {
        "metadata": {"name": "a-tls-secret"},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": "not-a-cert", "tls.key": "not-a-key"},
    }
    core.create_namespaced_secret(namespace, cast(client.V1Secret, tls))
    apply(cluster, namespace, sacred("wants-tls-name", secretName="a-tls-secret"))
    obj = wait_reason(custom, namespace, "wants-tls-name", "SecretConflict")
    assert "a-tls-secret" in ready_condition(obj)["message"]  # type: ignore[index]
    assert core.read_namespaced_secret("a-tls-secret", namespace).type == "kubernetes.io/tls"
