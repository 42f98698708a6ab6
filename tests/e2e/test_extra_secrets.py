"""spec.extraSecrets (seed 003's secrets map) end to end: extra generated values in the
credential's Secret, rotated with it, added, removed and refused at apply."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, manifest, wait_for
from tests.e2e.test_service_account_credential import (
    KIND,
    apply,
    get,
    read_secret,
    sacred,
    wait_ready,
)

EXTRAS: list[dict[str, Any]] = [
    {"key": "webhook_signing_key", "prefix": "whsec_"},
    {"key": "encryption.key", "length": 64, "alphabet": "Hex"},
    {"key": "api-token", "length": 32, "alphabet": "URLSafe"},
]
PREVIOUS_KEYS = {"webhook_signing_key_previous", "encryption_previous.key", "api-token_previous"}
OVERLAP_SECONDS = 15


def extras_in(data: dict[str, str], keys: list[str]) -> dict[str, str]:
    return {key: data[key] for key in keys}


def test_extra_secrets_live_rotate_and_change_key_by_key(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    keys = [e["key"] for e in EXTRAS]
    body = sacred("hooks", extraSecrets=EXTRAS, rotation={"overlap": f"{OVERLAP_SECONDS}s"})
    apply(cluster, namespace, body)
    wait_ready(cluster, namespace, "hooks")
    data, _ = read_secret(core, exposure, namespace, "hooks")
    first = extras_in(data, keys)
    assert first["webhook_signing_key"].startswith("whsec_")
    assert len(first["webhook_signing_key"]) == len("whsec_") + 48
    assert len(first["encryption.key"]) == 64
    assert set(first["encryption.key"]) <= set(string.hexdigits.lower())
    assert len(first["api-token"]) == 32
    status = get(custom, namespace, "hooks")["status"]
    assert [e["key"] for e in status["extraSecrets"]] == sorted(keys)
    assert all(e["fingerprint"].startswith("sha256:") for e in status["extraSecrets"])

    # A rotation renews all of them, keeping each previous value for the overlap.
    cluster.kubectl("annotate", "-n", namespace, "sacred/hooks", "credsmith.io/rotate=r1")
    wait_for(lambda: get(custom, namespace, "hooks")["status"].get("revision") == 2, 60,
             what="revision 2")  # fmt: skip
    data, _ = read_secret(core, exposure, namespace, "hooks")
    second = extras_in(data, keys)
    assert all(second[k] != first[k] for k in keys)
    assert data["webhook_signing_key_previous"] == first["webhook_signing_key"]
    assert data["encryption_previous.key"] == first["encryption.key"]
    assert data["api-token_previous"] == first["api-token"]

    def previous_gone() -> bool:
        found, _ = read_secret(core, exposure, namespace, "hooks")
        return not PREVIOUS_KEYS & set(found)

    wait_for(previous_gone, OVERLAP_SECONDS + 30, what="the previous extras to retire")
    data, _ = read_secret(core, exposure, namespace, "hooks")
    assert extras_in(data, keys) == second

    # A fourth key: issued alone; nothing else changes, no new revision.
    apply(
        cluster,
        namespace,
        {**body, "spec": {**body["spec"], "extraSecrets": [*EXTRAS, {"key": "fourth"}]}},
    )

    def has_fourth() -> dict[str, str] | None:
        found, _ = read_secret(core, exposure, namespace, "hooks")
        return found if "fourth" in found else None

    data = wait_for(has_fourth, 60, what="the fourth key")
    assert len(data["fourth"]) == 48
    assert extras_in(data, keys) == second
    assert get(custom, namespace, "hooks")["status"]["revision"] == 2

    # Removing one removes only it.
    remaining = [*EXTRAS[:2], {"key": "fourth"}]
    apply(cluster, namespace, {**body, "spec": {**body["spec"], "extraSecrets": remaining}})

    def token_gone() -> dict[str, str] | None:
        found, _ = read_secret(core, exposure, namespace, "hooks")
        return found if "api-token" not in found else None

    data = wait_for(token_gone, 60, what="api-token to be removed")
    assert extras_in(data, keys[:2]) == extras_in(second, keys[:2])
    assert get(custom, namespace, "hooks")["status"]["revision"] == 2


@pytest.mark.parametrize(
    ("extras", "template"),
    [
        pytest.param([{"key": "client_secret"}], {}, id="a credential key"),
        pytest.param([{"key": "client_secret_previous"}], {}, id="its _previous form"),
        pytest.param([{"key": "url"}], {"url": "https://{{ clientId }}@x"}, id="a template key"),
        pytest.param([{"key": "a"}, {"key": "a_previous"}], {}, id="another's _previous form"),
        pytest.param([{"key": "private_key.pem"}], {}, id="a KeyPair key", marks=()),
    ],
)
def test_colliding_keys_are_refused_at_apply_naming_the_field(
    cluster: Cluster, namespace: str, extras: list[dict[str, Any]], template: dict[str, str]
) -> None:
    spec: dict[str, Any] = {"serviceAccount": "a", "extraSecrets": extras}
    if template:
        spec["secretTemplate"] = {"data": template}
    if extras[0]["key"] == "private_key.pem":
        spec["type"] = "KeyPair"
    result = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-",
        stdin=json.dumps(manifest(KIND, "clash", spec)), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "spec.extraSecrets" in result.stderr
