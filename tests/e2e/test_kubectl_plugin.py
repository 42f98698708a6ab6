"""`kubectl credsmith`, through the real kubectl binary's plugin discovery.

The package installs the `kubectl-credsmith` executable beside `credsmith`; with that
directory on PATH, kubectl finds it (`kubectl plugin list`) and runs it for
`kubectl credsmith ...`. A rotation requested that way rotates exactly once, `status`
shows it without any secret value, and `credsmith rotate` still works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, manifest, wait_for

SCRIPTS = Path(sys.executable).parent  # where pip put the console scripts


@pytest.fixture
def plugin_env(cluster: Cluster) -> dict[str, str]:
    """kubectl and the plugin on PATH, nothing else of this checkout."""
    assert (SCRIPTS / "kubectl-credsmith").is_file(), "pip install -e . installs the plugin"
    path = os.pathsep.join([str(cluster.bin_dir), str(SCRIPTS), "/usr/bin", "/bin"])
    return cluster.env(PATH=path)


def kubectl(
    cluster: Cluster, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, env=env, check=check)


def revision(custom: client.CustomObjectsApi, namespace: str, name: str) -> Any:
    obj = custom.get_namespaced_custom_object(
        "credsmith.io", "v1alpha1", namespace, "serviceaccountcredentials", name
    )
    return (obj.get("status") or {}).get("revision")


def test_kubectl_discovers_the_plugin(cluster: Cluster, plugin_env: dict[str, str]) -> None:
    listed = kubectl(cluster, plugin_env, "plugin", "list", check=False)
    assert str(SCRIPTS / "kubectl-credsmith") in listed.stdout, listed.stdout + listed.stderr
    usage = kubectl(cluster, plugin_env, "credsmith", "--help").stdout
    assert usage.startswith("Request rotations and show the state of credsmith credentials.")
    for section in ("Examples:", "Available Commands:", "Usage:"):
        assert f"\n{section}\n" in usage
    assert "  rotate  " in usage
    assert "  status  " in usage
    rotate_usage = kubectl(cluster, plugin_env, "credsmith", "rotate", "--help").stdout
    assert "Options:\n    -n, --namespace='':" in rotate_usage
    unknown = kubectl(cluster, plugin_env, "credsmith", "frobnicate", check=False)
    assert unknown.returncode == 1
    assert 'unknown command "frobnicate" for "kubectl credsmith"' in unknown.stderr


def test_kubectl_credsmith_rotate_rotates_once(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
    plugin_env: dict[str, str],
    exposure: Exposure,
) -> None:
    body = manifest("ServiceAccountCredential", "x", {"serviceAccount": "x"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=60s", "-n", namespace, "sacred/x")
    assert revision(custom, namespace, "x") == 1

    rotated = kubectl(cluster, plugin_env, "credsmith", "rotate", "sacred/x", "-n", namespace)
    assert rotated.stdout.startswith("serviceaccountcredentials.credsmith.io/x rotation requested")
    wait_for(lambda: revision(custom, namespace, "x") == 2, what="revision 2")
    time.sleep(3)  # and no second rotation for the same request
    assert revision(custom, namespace, "x") == 2

    status = kubectl(cluster, plugin_env, "credsmith", "status", "-n", namespace).stdout
    exposure.shown.append(status)
    header, *rows = status.splitlines()
    assert header.split() == [
        "NAME", "READY", "REASON", "REVISION", "NEXT", "ROTATION", "PREVIOUS", "EXPIRES",
        "CONSUMERS",
    ]  # fmt: skip
    assert len(rows) == 1
    assert rows[0].split()[:4] == ["sacred/x", "True", "Rotated", "2"]

    missing = kubectl(
        cluster, plugin_env, "credsmith", "rotate", "sacred/nope", "-n", namespace, check=False
    )
    assert missing.returncode == 1
    assert "not found" in missing.stderr

    # `credsmith rotate` keeps working beside the plugin.
    subprocess.run(
        [str(SCRIPTS / "credsmith"), "rotate", "sacred/x", "-n", namespace],
        env=plugin_env,
        check=True,
        capture_output=True,
    )
    # Requested rotations obey the 1m floor: this one waits for a minute after the last.
    wait_for(lambda: revision(custom, namespace, "x") == 3, 90, what="revision 3")
