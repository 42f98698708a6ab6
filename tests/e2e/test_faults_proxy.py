"""Faults between the operator and the API server, through a real TCP fault proxy
(toxiproxy), and the API server's own throttling (API Priority and Fairness)."""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
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
from tests.e2e.faults import (
    Proxy,
    Toxiproxy,
    api_proxy,
    audit_events,
    kubeconfig_with,
    service_account_token,
    toxiproxy,
    upstream_of,
)
from tests.e2e.test_reliability import SecretRecorder, ready_count

__all__ = ["api_proxy", "toxiproxy"]  # fixtures

PLURAL = "serviceaccountcredentials"


def sacred(name: str) -> dict[str, Any]:
    return manifest("ServiceAccountCredential", name, {"serviceAccount": name})


@pytest.fixture
def own_operators(operator: Operator, exposure: Exposure) -> Iterator[list[Operator]]:
    """Operators started by the test; the session's operator is stopped meanwhile (it
    would serve the test's namespace without the faults). Their logs join the
    secrecy scan."""
    operator.stop()
    started: list[Operator] = []
    yield started
    for process in started:
        process.stop()
        exposure.shown.append(process.logs())


def start_operator(
    cluster: Cluster,
    directory: Path,
    kubeconfig: Path,
    started: list[Operator],
    *args: str,
    identity: str = "credsmith",
) -> Operator:
    directory.mkdir(parents=True, exist_ok=True)
    process = Operator(
        cluster, directory, extra_env={"KUBECONFIG": str(kubeconfig), "POD_NAME": identity}
    )
    process.start(*args)
    started.append(process)
    return process


def test_latency_then_a_cut_then_resets_during_a_bulk_apply(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    namespace: str,
    api_proxy: Proxy,
    own_operators: list[Operator],
    tmp_path: Path,
) -> None:
    kubeconfig = api_proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied")
    process = start_operator(
        cluster, tmp_path / "op", kubeconfig, own_operators, f"--namespace={namespace}"
    )
    wait_for(lambda: "Watching:" in process.logs(), 60, what="the operator watching")
    total = 300
    created: list[str] = []

    def apply() -> None:
        for i in range(total):
            name = f"c{i:03d}"
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred(name))
            created.append(name)
            time.sleep(0.1)  # spread over the faults: about 30 s and more

    with SecretRecorder(core, namespace, exposure) as recorder:
        applier = threading.Thread(target=apply)
        applier.start()
        phases = []
        with api_proxy.toxic("latency", "downstream", latency=5000, jitter=500):
            time.sleep(15)
        phases.append(("5 s latency", 15))
        api_proxy.enable(False)
        time.sleep(30)
        api_proxy.enable(True)
        phases.append(("cut", 30))
        with api_proxy.toxic("reset_peer", "upstream", timeout=500):
            time.sleep(15)
        phases.append(("resets", 15))
        applier.join()
        after = time.monotonic()
        wait_for(
            lambda: ready_count(custom, namespace) == (total, total), 240, interval=1,
            what=f"{total} Ready",
        )  # fmt: skip
        converged = time.monotonic() - after
        time.sleep(2)

    items = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )["items"]
    assert len(created) == total
    assert {i["status"]["revision"] for i in items} == {1}
    assert set(recorder.values) == set(created)
    for name, history in recorder.values.items():
        assert len(history) == 1, f"{name} had {len(history)} values"
    assert process.process is not None
    assert process.process.poll() is None  # survived it all
    print(f"faults {phases}: all {total} Ready {converged:.1f}s after the last fault")


def test_a_half_open_connection_is_found_dead_and_the_watch_resumes(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    namespace: str,
    api_proxy: Proxy,
    own_operators: list[Operator],
    tmp_path: Path,
) -> None:
    kubeconfig = api_proxy.kubeconfig(cluster.kubeconfig, tmp_path / "proxied")
    process = start_operator(
        cluster, tmp_path / "op", kubeconfig, own_operators, f"--namespace={namespace}"
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred("before"))
    wait_for(lambda: ready_count(custom, namespace) == (1, 1), 60, what="Ready before")
    # The proxy keeps every TCP connection open and forwards nothing, either way.
    api_proxy.add("silent-down", "timeout", "downstream", timeout=0)
    api_proxy.add("silent-up", "timeout", "upstream", timeout=0)
    silenced = time.monotonic()
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred("during"))
    # aiohttp's read timeout: ServerTimeoutError (a TimeoutError).
    secrets_watch = re.compile(rf"/namespaces/{namespace}/secrets: \w*TimeoutError")
    try:
        wait_for(
            lambda: secrets_watch.search(process.logs()), 150, interval=1,
            what="the silent watch found dead",
        )  # fmt: skip
        detected = time.monotonic() - silenced
    finally:
        api_proxy.remove("silent-down")
        api_proxy.remove("silent-up")
    resumed = time.monotonic()
    wait_for(lambda: ready_count(custom, namespace) == (2, 2), 90, what="the new one Ready")
    print(
        f"half-open: watch found dead after {detected:.0f}s; "
        f"created meanwhile, Ready {time.monotonic() - resumed:.1f}s after forwarding resumed"
    )
    assert detected < 90 + 30  # the idle timeout, and slack for a loaded machine


def test_concurrent_label_edits_during_three_rotations(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred("edited"))
    wait_for(lambda: ready_count(custom, namespace) == (1, 1), 60, what="Ready")
    stop = threading.Event()
    edits = [0]

    def edit() -> None:
        while not stop.is_set():
            edits[0] += 1
            patch = {"metadata": {"labels": {"edited-by": "someone", "edit": str(edits[0])}}}
            with contextlib.suppress(client.ApiException):
                core.patch_namespaced_secret("edited", namespace, patch)
            time.sleep(0.03)

    editor = threading.Thread(target=edit)
    editor.start()
    took = []
    try:
        for rotation in (1, 2, 3):
            started = time.monotonic()
            cluster.kubectl(
                "annotate", "--overwrite", "-n", namespace, "sacred/edited",
                f"credsmith.io/rotate=r{rotation}",
            )  # fmt: skip

            def rotated(expected: int = rotation + 1) -> bool:
                obj = cast(
                    dict[str, Any],
                    custom.get_namespaced_custom_object(
                        GROUP, VERSION, namespace, PLURAL, "edited"
                    ),
                )
                condition = ready_condition(obj) or {}
                return (
                    obj.get("status", {}).get("revision") == expected
                    and condition.get("status") == "True"
                )

            wait_for(rotated, 90, interval=0.2, what=f"rotation {rotation}")
            took.append(time.monotonic() - started)
    finally:
        stop.set()
        editor.join()
    secret = core.read_namespaced_secret("edited", namespace)
    annotations = present(secret.metadata).annotations or {}
    assert any(value == "4" for key, value in annotations.items() if key.endswith("revision"))
    print(f"{edits[0]} label edits; rotations took {', '.join(f'{t:.1f}s' for t in took)}")


@pytest.mark.serial  # a cluster-wide FlowSchema that throttles writes to Secrets
def test_apf_throttling_429s_are_retried_after_retry_after_and_everything_converges(
    local_cluster: LocalCluster | None,
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    namespace: str,
    own_operators: list[Operator],
    tmp_path: Path,
) -> None:
    if local_cluster is None:
        pytest.skip("reads the local control plane's audit log")
    token = service_account_token(cluster, namespace, "throttled")
    user = f"system:serviceaccount:{namespace}:throttled"
    name = f"credsmith-throttled-{namespace}"[:63]
    cluster.kubectl("apply", "-f", "-", stdin=_throttle(name, namespace, "throttled"))
    try:
        kubeconfig = tmp_path / "throttled"
        kubeconfig_with(cluster.kubeconfig, kubeconfig, token)
        process = start_operator(
            cluster, tmp_path / "op", kubeconfig, own_operators, f"--namespace={namespace}",
            "--workers=16",
        )  # fmt: skip
        total = 60
        for i in range(total):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, sacred(f"t{i:02d}")
            )
        wait_for(
            lambda: ready_count(custom, namespace) == (total, total), 240, interval=1,
            what=f"{total} Ready",
        )  # fmt: skip
    finally:
        cluster.kubectl("delete", "flowschema,prioritylevelconfiguration", name,
                        "--ignore-not-found")  # fmt: skip
    logs = process.logs()
    retry_afters = {float(v) for v in re.findall(r"Throttled: .*\(Retry-After ([0-9.]+)\)", logs)}
    assert retry_afters, "no 429 with Retry-After observed"
    floor = min(retry_afters)
    # From the audit log: after each 429 on an object, the next try came no sooner.
    events = audit_events(local_cluster.state_dir / "audit.log", user)
    by_object: defaultdict[tuple[str, str, str], list[tuple[datetime, int]]] = defaultdict(list)
    for event in events:
        ref = event.get("objectRef") or {}
        if ref.get("resource") == "events" or not ref.get("name"):
            continue  # Events are best effort, never retried; creates have no name yet
        key = (ref.get("resource", ""), ref.get("name", ""), ref.get("subresource", ""))
        received = datetime.fromisoformat(event["requestReceivedTimestamp"])
        by_object[key].append((received, int((event.get("responseStatus") or {}).get("code", 0))))
    throttled = 0
    for history in by_object.values():
        for (at, code), (next_at, _) in itertools.pairwise(history):
            if code == 429:
                throttled += 1
                assert (next_at - at).total_seconds() >= floor - 0.05
    print(
        f"APF: {throttled} 429s on named objects in the audit log, "
        f"Retry-After {sorted(retry_afters)}; all {total} Ready"
    )


def test_a_partitioned_leader_stops_writing_before_the_standby_writes(
    local_cluster: LocalCluster | None,
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    namespace: str,
    toxiproxy: Toxiproxy,
    own_operators: list[Operator],
    tmp_path: Path,
) -> None:
    if local_cluster is None:
        pytest.skip("reads the local control plane's audit log")
    tokens = {who: service_account_token(cluster, namespace, who) for who in ("leader", "standby")}
    proxy = toxiproxy.proxy("leader", upstream_of(cluster.kubeconfig))
    lease = (
        "--leader-elect", f"--leader-election-namespace={namespace}",
        "--leader-election-id=partition", "--lease-duration=6", f"--namespace={namespace}",
    )  # fmt: skip
    leader = start_operator(
        cluster, tmp_path / "leader", proxy.kubeconfig(cluster.kubeconfig, tmp_path / "l",
        tokens["leader"]), own_operators, *lease, identity="leader",
    )  # fmt: skip
    wait_for(lambda: _holder(cluster, namespace) == "leader", 60, what="leader")
    standby_config = tmp_path / "s"
    kubeconfig_with(cluster.kubeconfig, standby_config, tokens["standby"])
    start_operator(
        cluster, tmp_path / "standby", standby_config, own_operators, *lease, identity="standby"
    )
    for i in range(10):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred(f"a{i}"))
    wait_for(lambda: ready_count(custom, namespace) == (10, 10), 60, what="10 Ready")

    proxy.add("silent-down", "timeout", "downstream", timeout=0)
    proxy.add("silent-up", "timeout", "upstream", timeout=0)
    partitioned = time.monotonic()
    for i in range(10):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred(f"b{i}"))
    wait_for(lambda: _holder(cluster, namespace) == "standby", 60, what="takeover")
    takeover = time.monotonic() - partitioned
    wait_for(lambda: ready_count(custom, namespace) == (20, 20), 60, what="20 Ready")
    assert leader.process is not None
    wait_for(lambda: leader.process is not None and leader.process.poll() is not None, 60,
             what="the old leader to exit")  # fmt: skip
    stepped_down = time.monotonic() - partitioned
    proxy.remove("silent-down")
    proxy.remove("silent-up")
    time.sleep(3)  # anything the proxy still held would arrive now

    audit = local_cluster.state_dir / "audit.log"
    old = audit_events(audit, f"system:serviceaccount:{namespace}:leader")
    new = audit_events(audit, f"system:serviceaccount:{namespace}:standby")
    assert old
    assert new
    last_old = max(datetime.fromisoformat(e["stageTimestamp"]) for e in old)
    first_new = min(datetime.fromisoformat(e["requestReceivedTimestamp"]) for e in new)
    assert last_old < first_new, (last_old, first_new)
    print(
        f"partition: standby leading after {takeover:.1f}s, old leader exited after "
        f"{stepped_down:.1f}s; its last write {(first_new - last_old).total_seconds():.1f}s "
        f"before the standby's first ({len(old)} and {len(new)} audited writes)"
    )


def _holder(cluster: Cluster, namespace: str) -> str:
    result = cluster.kubectl(
        "get", "lease", "partition", "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}",
        check=False,
    )  # fmt: skip
    return result.stdout if result.returncode == 0 else ""


def _throttle(name: str, namespace: str, account: str) -> str:
    level = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 1,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,  # no seats borrowed from other levels
                "limitResponse": {"type": "Reject"},
            },
        },
    }
    schema = {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            "matchingPrecedence": 100,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "serviceAccount": {"name": account, "namespace": namespace},
                        }
                    ],
                    "resourceRules": [
                        {
                            "verbs": ["*"],
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [level, schema]})
