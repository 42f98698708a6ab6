"""Fixtures for tests against a real API server.

By default the session starts the local control plane (tests/cluster, built from
Go modules) once; under pytest-xdist (`make test`) all workers share one, started by
the first that needs it (tests/e2e/shared.py). `--kubeconfig` or
$CREDSMITH_TEST_KUBECONFIG point the tests at an existing cluster instead, and
`--kind-cluster` creates one with pytest-kind.

Each test gets its own namespace, and `operator` is an operator process (`credsmith
run`) watching only that namespace, started for the test and stopped after it: tests
running at the same time never meet each other's operator, and a test may stop, kill
or restart its own. A test that needs the cluster to itself (it changes what every
namespace sees, or measures the whole API server) is marked `serial`: `make test`
runs those in a second pytest session, on its own control plane.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from kubernetes import client

from credsmith.api.crd import render_crds_yaml
from credsmith.dev.cluster import LocalCluster, build_binaries
from tests.e2e.cluster import EXPOSURE, OPERATOR_LOGS, Cluster, Exposure, Operator
from tests.e2e.shared import shared_control_plane
from tests.providers.hydra import fresh_hydra, hydra  # noqa: F401 - fixtures

# Registered here once: a session fixture imported into several modules is one fixture per
# module, and each would start a Keycloak of its own.
from tests.providers.keycloak import (  # noqa: F401 - fixtures keycloak_server, keycloak_realm
    keycloak_realm_fixture,
    keycloak_server_fixture,
)

E2E_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster | None]:
    """The local control plane, or None when the tests use another cluster."""
    if _external_kubeconfig(request) or request.config.getoption("--kind-cluster"):
        yield None
        return
    if worker := os.environ.get("PYTEST_XDIST_WORKER"):
        # The workers' basetemps (popen-gwN) share a parent that is new for each run.
        shared = tmp_path_factory.getbasetemp().parent / "control-plane"
        with shared_control_plane(shared, build_binaries(), worker) as local:
            yield local
        return
    local = LocalCluster(build_binaries(), tmp_path_factory.mktemp("control-plane"))
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, local_cluster: LocalCluster | None
) -> Iterator[Cluster]:
    if local_cluster is not None:
        found = Cluster(local_cluster.kubeconfig, local_cluster.bin_dir)
        _install_crds(found)
        yield found
        return
    bin_dir = build_binaries()  # kubectl and helm, also for an external cluster
    if kubeconfig := _external_kubeconfig(request):
        found = Cluster(Path(kubeconfig), bin_dir)
        _install_crds(found)
        yield found
        return
    if shutil.which("docker") is None:
        pytest.exit("--kind-cluster needs Docker", returncode=2)
    kind = request.getfixturevalue("kind_cluster")  # pytest-kind creates and deletes it
    found = Cluster(Path(kind.kubeconfig_path), bin_dir)
    _install_crds(found)
    yield found


def _external_kubeconfig(request: pytest.FixtureRequest) -> str | None:
    value = request.config.getoption("--kubeconfig") or os.environ.get("CREDSMITH_TEST_KUBECONFIG")
    return str(value) if value else None


def _install_crds(cluster: Cluster) -> None:
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", "-f", "-", stdin=render_crds_yaml()
    )
    cluster.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/serviceaccountcredentials.credsmith.io", "crd/apiclients.credsmith.io",
        "crd/identityproviders.credsmith.io", "crd/clusteridentityproviders.credsmith.io",
    )  # fmt: skip


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return cluster.api_client()


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture(scope="session")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    """Deployments and the other workloads consumers name."""
    return client.AppsV1Api(api)


@pytest.fixture(scope="session")
def exposure(request: pytest.FixtureRequest) -> Exposure:
    """Every issued value and everything the operator showed, for the secrecy test."""
    found = Exposure()
    request.config.stash[EXPOSURE] = found
    return found


@pytest.fixture
def namespace(
    request: pytest.FixtureRequest, core: client.CoreV1Api, cluster: Cluster, exposure: Exposure
) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (without waiting). Before it
    goes, its Events and the status of our resources are kept for the secrecy test."""
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(cast(client.V1Namespace, {"metadata": {"name": name}}))
    yield name
    exposure.record_namespace(cluster, name)
    try:
        core.delete_namespace(name)
    except client.ApiException as error:
        if error.status not in (404, 409):  # the test deleted it itself (gone, going)
            raise


@pytest.fixture(scope="session")
def operator_process(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """The session's operator, started for each test by `operator`; its log directory
    keeps one file per start, for the secrecy test."""
    process = Operator(cluster, tmp_path_factory.mktemp("operator-logs"))
    request.config.stash[OPERATOR_LOGS] = process.log_dir
    yield process
    process.stop()


@pytest.fixture
def operator(operator_process: Operator, namespace: str) -> Iterator[Operator]:
    """The operator, watching only this test's namespace and caught up with it (so a
    test that gives it time to act really does); stopped after the test. The test may
    stop, kill and start it: each start watches the namespace again."""
    operator_process.stop()
    operator_process.default_args = (f"--namespace={namespace}",)
    operator_process.start()
    operator_process.wait_watching()
    yield operator_process
    operator_process.stop()
