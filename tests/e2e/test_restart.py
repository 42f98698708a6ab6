"""A restart with many credentials: a new one, and one that changed while the operator was
down, go before the listings end; the Secret of a changed one, not listed yet, is asked of
the API server (not taken for missing, not issued again); nothing settled is written.

The listings are slowed by a bandwidth limit between the operator and the API server (a
real TCP proxy, toxiproxy), so that "before the listings end" is seconds, not luck."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client

from credsmith.dev.cluster import LocalCluster
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
from tests.e2e.faults import Proxy, api_proxy, toxiproxy
from tests.e2e.test_reliability import ready_count

__all__ = ["api_proxy", "toxiproxy"]  # fixtures

PLURAL = "serviceaccountcredentials"
SETTLED = 100
# Bytes a second from the API server to the operator, per connection: each listing (about
# 200 KB for 100 credentials, as much for their Secrets) takes ~10 s; a Secret's GET 0.1 s.
RATE_KB = 20


def sacred(name: str, **spec: Any) -> dict[str, Any]:
    return manifest("ServiceAccountCredential", name, {"serviceAccount": name, **spec})


def _versions(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str
) -> dict[str, str]:
    found = {
        f"sac/{i['metadata']['name']}": i["metadata"]["resourceVersion"]
        for i in cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        )["items"]
    }
    for secret in core.list_namespaced_secret(namespace).items:
        found[f"secret/{present(secret.metadata).name}"] = present(secret.metadata).resource_version
    return found


def _digest(core: client.CoreV1Api, namespace: str, name: str, exposure: Exposure) -> str:
    """The Secret's data as a digest (a value never goes into a test's output)."""
    data = exposure.record_secret(core.read_namespaced_secret(name, namespace).to_dict())
    return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()


def _secret_creates_refused(audit: Path, namespace: str) -> list[str]:
    """Secret creates in the namespace answered 409 (the name was taken), by anyone."""
    found = []
    for line in audit.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        ref = event.get("objectRef") or {}
        if (
            event.get("stage") == "ResponseComplete"
            and event.get("verb") == "create"
            and ref.get("resource") == "secrets"
            and ref.get("namespace") == namespace
            and (event.get("responseStatus") or {}).get("code") == 409
        ):
            found.append(str(ref.get("name") or event.get("requestURI")))
    return found


def _ready(custom: client.CustomObjectsApi, namespace: str, name: str) -> bool:
    body = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    condition = ready_condition(body)
    return condition is not None and condition["status"] == "True"


@pytest.fixture
def restarted(operator: Operator, exposure: Exposure) -> Iterator[list[Operator]]:
    """Operators the test starts; the session's is stopped before (it would serve the
    namespace without the proxy). Their logs join the secrecy scan."""
    started: list[Operator] = []
    yield started
    for process in started:
        process.stop()
        exposure.shown.append(process.logs())


def test_a_new_and_a_changed_credential_go_before_the_listings_end(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    restarted: list[Operator],
    api_proxy: Proxy,
    exposure: Exposure,
    namespace: str,
    tmp_path: Path,
    local_cluster: LocalCluster | None,
) -> None:
    def create(body: dict[str, Any]) -> None:
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    # First among the credentials listed, its Secret last among the Secrets.
    changed = sacred("aaa-changed", secretName="zzz-changed")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, [changed] + [sacred(f"k{i:03d}") for i in range(SETTLED)]))
    wait_for(
        lambda: ready_count(custom, namespace) == (SETTLED + 1, SETTLED + 1),
        300, interval=1, what="all Ready",
    )  # fmt: skip
    value = _digest(core, namespace, "zzz-changed", exposure)
    operator.stop()
    # Changed while the operator was down: no longer Ready (its pass goes first).
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "aaa-changed", {"status": {"conditions": []}}
    )
    before = _versions(custom, core, namespace)

    api_proxy.add("slow", "bandwidth", rate=RATE_KB)
    process = Operator(
        cluster, tmp_path / "logs", extra_env={"KUBECONFIG": str(
            api_proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied"))},
        default_args=operator.default_args,
    )  # fmt: skip
    (tmp_path / "logs").mkdir()
    process.start()
    restarted.append(process)
    create(sacred("aaa-new"))  # as the process starts: first in its listing

    def both_ready() -> bool:
        return _ready(custom, namespace, "aaa-new") and _ready(custom, namespace, "aaa-changed")

    wait_for(both_ready, 120, interval=0.2, what="the new and the changed one Ready")
    assert "Watching:" not in process.logs(), "Ready only after the listings ended"
    api_proxy.remove("slow")
    process.wait_watching()
    time.sleep(3)  # the settled ones' passes

    after = _versions(custom, core, namespace)
    touched = {k for k, v in before.items() if after.get(k) != v} - {"sac/aaa-changed"}
    assert touched == set(), "a settled credential or its Secret was written"
    # Its Secret was found (asked of the API server), not issued again.
    assert after["secret/zzz-changed"] == before["secret/zzz-changed"]
    assert _digest(core, namespace, "zzz-changed", exposure) == value
    status = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "aaa-changed"),
    )
    assert status["status"]["revision"] == 1
    if local_cluster is not None:
        # Not even tried: a Secret not listed yet was asked for, not taken for missing.
        assert _secret_creates_refused(local_cluster.state_dir / "audit.log", namespace) == []
    assert "listing by pages" not in process.logs()  # the API server streamed the listings
