"""Reliability: two replicas with a Lease, and SIGKILLs at random moments."""

from __future__ import annotations

import base64
import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client, watch

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

PLURAL = "serviceaccountcredentials"


def sacred(name: str) -> dict[str, Any]:
    return manifest("ServiceAccountCredential", name, {"serviceAccount": name})


def ready_count(custom: client.CustomObjectsApi, namespace: str) -> tuple[int, int]:
    items = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )["items"]
    ready = [i for i in items if (c := ready_condition(i)) and c["status"] == "True"]
    return len(items), len(ready)


class SecretRecorder:
    """Every value of every Secret in a namespace, as a watch sees them, in order."""

    def __init__(self, core: client.CoreV1Api, namespace: str, exposure: Exposure) -> None:
        self.core, self.namespace, self.exposure = core, namespace, exposure
        self.values: defaultdict[str, list[str | None]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SecretRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        resource_version = None
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.core.list_namespaced_secret,
                    self.namespace,
                    timeout_seconds=5,
                    resource_version=resource_version,
                ):
                    secret = event["object"]
                    resource_version = secret.metadata.resource_version
                    raw = secret.data or {}
                    value = raw.get("client_secret")
                    decoded = base64.b64decode(value).decode() if value else None
                    if decoded:
                        self.exposure.values.add(decoded)
                    history = self.values[secret.metadata.name]
                    if event["type"] == "DELETED":
                        history.append("<deleted>")
                    elif not history or history[-1] != decoded:
                        history.append(decoded)
                    if self._stop.is_set():
                        break
            except Exception:
                resource_version = None
                time.sleep(0.2)


@pytest.fixture
def replicas(
    cluster: Cluster, tmp_path: Path, operator: Operator, exposure: Exposure
) -> Iterator[list[Operator]]:
    """Two operators in leader election; the session's operator is stopped meanwhile.
    Their logs join the secrecy scan."""
    operator.stop()
    started: list[Operator] = []
    yield started
    for replica in started:
        replica.stop()
        exposure.shown.append(replica.logs())


def lease_holder(cluster: Cluster, namespace: str, name: str) -> str:
    result = cluster.kubectl(
        "get", "lease", name, "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}", check=False
    )
    return result.stdout if result.returncode == 0 else ""


def test_two_replicas_one_acts_and_the_standby_takes_over(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    namespace: str,
    replicas: list[Operator],
    tmp_path: Path,
) -> None:
    lease = f"credsmith-{namespace}"[:63]
    for identity in ("replica-a", "replica-b"):
        (tmp_path / identity).mkdir()
        replica = Operator(cluster, tmp_path / identity, extra_env={"POD_NAME": identity})
        replica.start(
            "--leader-elect", f"--leader-election-namespace={namespace}",
            f"--leader-election-id={lease}", "--lease-duration=6", f"--namespace={namespace}",
        )  # fmt: skip
        replicas.append(replica)
    leader = wait_for(lambda: lease_holder(cluster, namespace, lease), 30, what="a leader")
    by_name = {"replica-a": replicas[0], "replica-b": replicas[1]}
    standby_name = "replica-b" if leader == "replica-a" else "replica-a"

    with SecretRecorder(core, namespace, exposure) as recorder:
        for i in range(20):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, sacred(f"c{i:02d}")
            )
        wait_for(lambda: ready_count(custom, namespace) == (20, 20), 60, what="20 Ready")
        assert "Issued revision" not in by_name[standby_name].logs()  # the standby did nothing
        assert "Issued revision" in by_name[leader].logs()

        by_name[leader].stop(signal.SIGKILL)
        killed = time.monotonic()
        for i in range(20, 30):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, sacred(f"c{i:02d}")
            )
        wait_for(
            lambda: lease_holder(cluster, namespace, lease) == standby_name, 30, what="takeover"
        )
        takeover = time.monotonic() - killed
        wait_for(lambda: ready_count(custom, namespace) == (30, 30), 60, what="30 Ready")
        time.sleep(2)

    assert takeover < 6 + 2 + 2  # lease duration, a retry period, and slack
    items = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )["items"]
    assert {i["status"]["revision"] for i in items} == {1}
    assert set(recorder.values) == {f"c{i:02d}" for i in range(30)}
    for name, history in recorder.values.items():
        assert len(history) == 1, f"{name} had {len(history)} values"  # never issued twice
    print(f"takeover after SIGKILL of the leader: {takeover:.1f}s")


def test_random_sigkills_lose_nothing_and_issue_nothing_twice(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    names = [f"k{i:03d}" for i in range(500)]
    rng = random.Random(20261122)
    kills = 0
    with SecretRecorder(core, namespace, exposure) as recorder:

        def create(name: str) -> None:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred(name))

        with ThreadPoolExecutor(8) as pool:
            creating = pool.map(create, names)
            while kills < 10:
                time.sleep(rng.uniform(0.3, 2.5))
                operator.kill()
                kills += 1
                operator.start()
            list(creating)
        wait_for(
            lambda: ready_count(custom, namespace) == (500, 500), 240, interval=1, what="500 Ready"
        )
        time.sleep(3)

    assert kills >= 10
    items = cast(
        dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )["items"]
    assert {i["status"]["revision"] for i in items} == {1}
    secrets = core.list_namespaced_secret(
        namespace, label_selector="app.kubernetes.io/managed-by=credsmith"
    )
    # None missing, none orphaned:
    assert sorted(cast(str, present(s.metadata).name) for s in secrets.items) == names
    for secret in secrets.items:
        current = base64.b64decode(present(secret.data)["client_secret"]).decode()
        history = recorder.values[cast(str, present(secret.metadata).name)]
        assert history == [current], f"{present(secret.metadata).name}: {len(history)} values seen"


def probe(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


@pytest.mark.serial  # stops and restarts the control plane every test uses
def test_api_server_outage_during_a_bulk_apply(
    local_cluster: LocalCluster | None,
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    if local_cluster is None:
        pytest.skip("stopping the API server needs the local control plane")
    operator.stop()
    port, metrics_port = _free_port(), _free_port()
    survivor = Operator(cluster, tmp_path)
    # Only this namespace: earlier tests' namespaces may still be terminating, with
    # resources the metrics below would count.
    survivor.start(
        f"--liveness-port={port}", f"--metrics-port={metrics_port}", f"--namespace={namespace}"
    )
    try:
        wait_for(lambda: probe(port, "/readyz") == 200, 30, what="ready before the outage")
        names = [f"o{i:03d}" for i in range(200)]
        for name in names[:100]:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred(name))

        local_cluster.stop()
        stopped = time.monotonic()
        wait_for(lambda: probe(port, "/readyz") == 503, 15, what="/readyz to say 503")
        assert probe(port, "/healthz") == 200  # alive: a restart would not help
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped)))
        assert survivor.process is not None
        assert survivor.process.poll() is None  # it rides the outage out
        local_cluster.start()

        for name in names[100:]:
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, sacred(name))
        wait_for(lambda: ready_count(custom, namespace) == (200, 200), 180, interval=1, what="200")
        assert probe(port, "/readyz") == 200
        items = cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        )["items"]
        assert {i["status"]["revision"] for i in items} == {1}
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as response:
            metrics = response.read().decode()
        samples = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("credsmith_")
        }
        assert samples['credsmith_ready{kind="ServiceAccountCredential"}'] == 200
        # A create whose response the outage cut off is adopted on retry, not counted
        # again: at most one count per resource.
        assert 100 <= samples['credsmith_issued_total{kind="ServiceAccountCredential"}'] <= 200
        exposure.shown.append(metrics)  # scanned for secret values by test_zz_secrecy
    finally:
        survivor.stop()
        exposure.shown.append(survivor.logs())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_sigkills_during_rotations_never_leave_a_secret_without_a_value(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    names = [f"r{i:02d}" for i in range(60)]
    for name in names:
        body = manifest(
            "ServiceAccountCredential",
            name,
            {"serviceAccount": name, "rotation": {"overlap": "2s"}},
        )
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    wait_for(lambda: ready_count(custom, namespace) == (60, 60), 60, what="60 Ready")

    versions: defaultdict[str, list[tuple[str, str | None]]] = defaultdict(list)
    stop = threading.Event()

    def record() -> None:
        stream = watch.Watch()
        while not stop.is_set():
            for event in stream.stream(core.list_namespaced_secret, namespace, timeout_seconds=3):
                secret = event["object"]
                value = (secret.data or {}).get("client_secret")
                revision = (secret.metadata.annotations or {}).get("credsmith.io/revision", "?")
                decoded = base64.b64decode(value).decode() if value else None
                if decoded:
                    exposure.values.add(decoded)
                versions[secret.metadata.name].append((revision, decoded))
                if stop.is_set():
                    break

    # Rotations are requested with the rotate annotation, round after round over all 60
    # (a scheduled period is at least 1m, too slow to rotate under the kills).
    requested: dict[str, str] = {}
    rotating = threading.Event()

    def rotate() -> None:
        round_ = 0
        while not rotating.is_set():
            round_ += 1
            for name in names:
                value = f"round-{round_}"
                patch = {"metadata": {"annotations": {"credsmith.io/rotate": value}}}
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, name, patch
                )
                requested[name] = value
                if rotating.is_set():
                    break
            time.sleep(0.5)

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    rotator = threading.Thread(target=rotate, daemon=True)
    rotator.start()
    rng = random.Random(7)
    for _ in range(10):
        time.sleep(rng.uniform(0.5, 3.0))
        operator.kill()
        operator.start()
    time.sleep(5)  # rotations continue after the last restart
    rotating.set()
    rotator.join(30)
    assert not rotator.is_alive()

    # The last request of every resource is acted on, despite the kills.
    def caught_up() -> bool:
        items = cast(
            dict[str, Any], custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        )["items"]
        return len(items) == 60 and all(
            (i.get("status") or {}).get("lastRotateRequest") == requested[i["metadata"]["name"]]
            and (c := ready_condition(i)) is not None
            and c["status"] == "True"
            for i in items
        )

    wait_for(caught_up, 120, interval=1, what="every last rotate request acted on")
    time.sleep(3)  # the watch delivers the last Secret writes
    stop.set()
    recorder.join(10)

    assert set(versions) == set(names)
    rotated = 0
    for name, seen in versions.items():
        assert all(value for _, value in seen), f"{name} was seen without a current value"
        values_by_revision: defaultdict[str, set[str | None]] = defaultdict(set)
        for revision, value in seen:
            values_by_revision[revision].add(value)
        assert all(len(v) == 1 for v in values_by_revision.values()), f"{name}: two values"
        rotated += len(values_by_revision) - 1
    assert rotated >= 60  # rotations really happened while the operator was being killed
