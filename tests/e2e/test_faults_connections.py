"""Connections: 20 watched namespaces (60 watches), with the arguments the chart renders
for them, do not starve requests or the Lease; `credsmith dev` stops its control
plane on SIGTERM."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

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
from tests.e2e.faults import free_port

PLURAL = "serviceaccountcredentials"
NAMESPACES = 20
# Five minutes, as the issue asks: long enough for many renewals under a full watch load.
LEASE_HOLD = 300.0


@pytest.fixture
def many_namespaces(core: client.CoreV1Api, namespace: str) -> Iterator[list[str]]:
    names = [f"{namespace[:50]}-{i:02d}" for i in range(NAMESPACES)]
    for name in names:
        core.create_namespace(cast(client.V1Namespace, {"metadata": {"name": name}}))
    yield names
    for name in names:
        core.delete_namespace(name)


def test_twenty_namespaces_all_ready_and_the_lease_held_without_a_lapse(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    coordination: client.CoordinationV1Api,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    many_namespaces: list[str],
    tmp_path: Path,
) -> None:
    operator.stop()  # the session's operator would serve these namespaces too
    port = free_port()
    args = chart_args(cluster, many_namespaces, tmp_path)
    assert sum(arg.startswith("--namespace=") for arg in args) == NAMESPACES
    own = Operator(cluster, tmp_path, extra_env={"POD_NAME": "wide"})
    own.start(
        *args, "--leader-elect", f"--leader-election-namespace={namespace}",
        "--leader-election-id=wide", f"--liveness-port={port}",
    )  # fmt: skip
    try:
        wait_for(lambda: _holder(coordination, namespace) == "wide", 60, what="leading")
        started = time.monotonic()
        for name in many_namespaces:
            body = manifest("ServiceAccountCredential", "c", {"serviceAccount": "c"})
            custom.create_namespaced_custom_object(GROUP, VERSION, name, PLURAL, body)

        def all_ready() -> bool:
            for name in many_namespaces:
                obj = cast(
                    dict[str, Any],
                    custom.get_namespaced_custom_object(GROUP, VERSION, name, PLURAL, "c"),
                )
                condition = ready_condition(obj)
                if condition is None or condition["status"] != "True":
                    return False
            return True

        wait_for(all_ready, 60, interval=0.5, what="a resource Ready in each namespace")
        elapsed = time.monotonic() - started

        # The Lease: renewed all along, by the same holder, never older than its duration.
        renewals: list[tuple[float, str | None]] = []
        transitions = set()
        ready_codes = set()
        deadline = time.monotonic() + LEASE_HOLD
        while time.monotonic() < deadline:
            lease = coordination.read_namespaced_lease("wide", namespace)
            assert present(lease.spec).holder_identity == "wide"
            transitions.add(present(lease.spec).lease_transitions)
            renew = present(present(lease.spec).renew_time).timestamp()
            if not renewals or renewals[-1][0] != renew:
                renewals.append((renew, present(lease.spec).holder_identity))
            ready_codes.add(_probe(port, "/readyz"))
            time.sleep(1)
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(renewals)]
        assert own.process is not None
        assert own.process.poll() is None
        assert len(transitions) == 1
        assert max(gaps) < 15, gaps  # the lease duration: no lapse
        assert ready_codes == {200}
        assert _probe(port, "/healthz") == 200
        print(
            f"{NAMESPACES} namespaces ({NAMESPACES * 3} watches): all Ready {elapsed:.1f}s after "
            f"creation; Lease renewed {len(renewals)} times in {LEASE_HOLD:.0f}s, "
            f"largest gap {max(gaps):.1f}s"
        )
    finally:
        own.stop()
        exposure.shown.append(own.logs())
    assert "TimeoutError" not in own.logs()


@pytest.fixture(scope="session")
def coordination(api: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api)


def _holder(coordination: client.CoordinationV1Api, namespace: str) -> str:
    try:
        lease = coordination.read_namespaced_lease("wide", namespace)
    except client.ApiException:
        return ""
    return str(present(lease.spec).holder_identity or "")


def _probe(port: int, path: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def chart_args(cluster: Cluster, namespaces: list[str], directory: Path) -> list[str]:
    """The operator's arguments as the chart renders them with `watchNamespaces`:
    the namespaces, workers and lease duration (not ports or the Lease's namespace)."""
    values = directory / "values.json"
    values.write_text(json.dumps({"watchNamespaces": namespaces}))
    chart = Path(__file__).parents[2] / "charts" / "credsmith"
    rendered = subprocess.run(
        [str(cluster.bin_dir / "helm"), "template", "credsmith", str(chart), "-f", str(values)],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    deployment = next(
        doc for doc in yaml.safe_load_all(rendered) if doc and doc.get("kind") == "Deployment"
    )
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    kept = ("--namespace=", "--workers=", "--lease-duration=")
    return [str(arg) for arg in args if str(arg).startswith(kept)]


def test_dev_stops_its_control_plane_on_sigterm(tmp_path: Path) -> None:
    state = tmp_path / f"dev-{uuid.uuid4().hex[:6]}"
    dev = subprocess.Popen(
        [sys.executable, "-m", "credsmith.cli", "dev", f"--state-dir={state}", "--no-examples"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        kubeconfig = state / "kubeconfig"
        wait_for(kubeconfig.exists, 240, interval=0.5, what="the control plane")
        server = next(
            line.split("server:")[1].strip()
            for line in kubeconfig.read_text().splitlines()
            if "server:" in line
        )
        port = int(server.rsplit(":", 1)[1])
        time.sleep(3)  # the operator is starting too
        dev.send_signal(signal.SIGTERM)
        dev.wait(90)
        wait_for(lambda: not _listening(port), 30, what="the control plane to stop")
        assert not kubeconfig.exists()  # removed by the control plane on a clean stop
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0
