"""`kubectl credsmith`, through the real kubectl binary's plugin discovery and API server.

plugin/ installs the `kubectl-credsmith` executable; with that directory on PATH, kubectl
finds it (`kubectl plugin list`) and runs it for `kubectl credsmith ...`. Here: `status NAME
-o json|yaml|wide`, `--context` from a kubeconfig with two contexts, `rotate NAME | -l |
--all` (each rotates once), `inspect secret` without any value, `check` with and without a
leader, `version`, and a refusal (403) carrying the server's message with a non-zero exit,
for the plugin and for `credsmith rotate`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, manifest, wait_for
from tests.e2e.test_packaging import token_kubeconfig

SCRIPTS = Path(sys.executable).parent  # where pip put the console scripts


@pytest.fixture
def plugin_env(cluster: Cluster) -> dict[str, str]:
    """kubectl and the plugin on PATH, nothing else of this checkout."""
    assert (SCRIPTS / "kubectl-credsmith").is_file(), "make venv installs ./plugin"
    path = os.pathsep.join([str(cluster.bin_dir), str(SCRIPTS), "/usr/bin", "/bin"])
    return cluster.env(PATH=path)


class Plugin:
    """`kubectl credsmith ...` as a user runs it; everything it prints is kept for the
    secrecy test (tests/e2e/test_zz_secrecy.py)."""

    def __init__(self, cluster: Cluster, env: dict[str, str], exposure: Exposure) -> None:
        self.cluster, self.env, self.exposure = cluster, env, exposure

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = self.cluster.kubectl("credsmith", *args, env=self.env, check=False)
        self.exposure.shown += [result.stdout, result.stderr]
        if check:
            assert result.returncode == 0, f"kubectl credsmith {' '.join(args)}: {result.stderr}"
        return result


@pytest.fixture
def plugin(cluster: Cluster, plugin_env: dict[str, str], exposure: Exposure) -> Plugin:
    return Plugin(cluster, plugin_env, exposure)


def apply(
    cluster: Cluster, namespace: str, kind: str, name: str, *, spec: Any = None, **metadata: Any
) -> None:
    if spec is None:
        spec = {"serviceAccount": name} if kind == "ServiceAccountCredential" else {}
    if kind == "ApiClient":
        spec = {"displayName": name}
    body = manifest(kind, name, spec, **metadata)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))


def wait_ready(cluster: Cluster, namespace: str, *resources: str) -> None:
    cluster.kubectl("wait", "--for=condition=Ready", "--timeout=90s", "-n", namespace, *resources)


def revision(custom: client.CustomObjectsApi, namespace: str, name: str) -> Any:
    obj = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(
            "credsmith.io", "v1alpha1", namespace, "serviceaccountcredentials", name
        ),
    )
    return (obj.get("status") or {}).get("revision")


def test_kubectl_discovers_the_plugin(cluster: Cluster, plugin_env: dict[str, str]) -> None:
    listed = cluster.kubectl("plugin", "list", env=plugin_env, check=False)
    assert str(SCRIPTS / "kubectl-credsmith") in listed.stdout, listed.stdout + listed.stderr
    usage = cluster.kubectl("credsmith", "--help", env=plugin_env).stdout
    assert usage.startswith("Request rotations and show the state of credsmith credentials.")
    for section in ("Examples:", "Available Commands:", "Usage:"):
        assert f"\n{section}\n" in usage
    for command in ("status", "rotate", "inspect", "check", "version"):
        assert f"\n  {command}  " in usage
    rotate_usage = cluster.kubectl("credsmith", "rotate", "--help", env=plugin_env).stdout
    assert "Options:\n    -n, --namespace='':" in rotate_usage
    assert "\n    --context='':" in rotate_usage
    unknown = cluster.kubectl("credsmith", "frobnicate", env=plugin_env, check=False)
    assert unknown.returncode == 1
    assert 'unknown command "frobnicate" for "kubectl credsmith"' in unknown.stderr


def test_status_by_name_in_each_output(
    cluster: Cluster, operator: Operator, namespace: str, plugin: Plugin
) -> None:
    apply(cluster, namespace, "ServiceAccountCredential", "x")
    apply(cluster, namespace, "ApiClient", "web")
    wait_ready(cluster, namespace, "sacred/x", "apiclient/web")

    as_json = json.loads(plugin("status", "x", "-n", namespace, "-o", "json").stdout)
    assert (as_json["kind"], as_json["metadata"]["name"]) == ("ServiceAccountCredential", "x")
    assert as_json["status"]["revision"] == 1
    as_yaml = yaml.safe_load(plugin("status", "apiclient/web", "-n", namespace, "-oyaml").stdout)
    assert (as_yaml["kind"], as_yaml["metadata"]["name"]) == ("ApiClient", "web")
    listed = json.loads(plugin("status", "-n", namespace, "-o", "json").stdout)
    assert sorted(item["kind"] for item in listed["items"]) == [
        "ApiClient",
        "ServiceAccountCredential",
    ]

    header, *rows = plugin("status", f"--namespace={namespace}").stdout.splitlines()
    assert header.split()[:4] == ["KIND", "NAME", "READY", "REASON"]
    assert [row.split()[:3] for row in rows] == [
        ["ApiClient", "web", "True"],
        ["ServiceAccountCredential", "x", "True"],
    ]
    client_id = as_json["status"]["clientId"]
    assert rows[1].split()[4:6] == [client_id, "1"]
    wide = plugin("status", "x", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-5:] == ["PROVIDER", "SECRET", "PREVIOUS", "EXPIRES", "MESSAGE"]
    assert as_json["status"]["secretName"] in wide[1].split()

    # -A adds a NAMESPACE column and other namespaces; --all-namespaces=false does not.
    everywhere = plugin("status", "-A").stdout.splitlines()
    assert everywhere[0].startswith("NAMESPACE ")
    assert any(line.split()[:3] == [namespace, "ApiClient", "web"] for line in everywhere)
    scoped = plugin("status", "-n", namespace, "--all-namespaces=false").stdout.splitlines()
    assert scoped[0].startswith("KIND ")
    assert len(scoped) == 3

    # A bare name both kinds have, and one neither has.
    apply(cluster, namespace, "ApiClient", "x")
    ambiguous = plugin("status", "x", "-n", namespace, check=False)
    assert ambiguous.returncode == 1
    assert '"x" names more than one credential: say which, sacred/x or apiclient/x' in (
        ambiguous.stderr
    )
    missing = plugin("status", "nope", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'no credential named "nope"' in missing.stderr
    absent = plugin("status", "sacred/nope", "-n", namespace, "-o", "json", check=False)
    assert absent.returncode == 1
    assert absent.stderr.startswith("Error from server (NotFound): ")
    assert '"nope" not found' in absent.stderr


def two_context_kubeconfig(cluster: Cluster, namespace: str, path: Path) -> Path:
    """The admin's kubeconfig with two contexts: `plain` (no namespace: default) and
    `team`, pointing at `namespace`; the current context is `plain`."""
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    team = {"name": "team", "context": {**current["context"], "namespace": namespace}}
    plain: dict[str, Any] = {"name": "plain", "context": dict(current["context"])}
    plain["context"].pop("namespace", None)
    path.write_text(
        yaml.safe_dump({**admin, "contexts": [plain, team], "current-context": "plain"})
    )
    return path


def test_context_and_kubeconfig_flags(
    cluster: Cluster, operator: Operator, namespace: str, plugin: Plugin, tmp_path: Path
) -> None:
    apply(cluster, namespace, "ServiceAccountCredential", "x")
    wait_ready(cluster, namespace, "sacred/x")
    config = str(two_context_kubeconfig(cluster, namespace, tmp_path / "config"))

    in_team = plugin("status", "--kubeconfig", config, "--context", "team").stdout
    assert [row.split()[:2] for row in in_team.splitlines()[1:]] == [
        ["ServiceAccountCredential", "x"]
    ]
    in_default = plugin("status", "--kubeconfig", config)
    assert in_default.stderr.strip() == "No credentials found in default namespace."
    as_json = json.loads(plugin("status", "x", "--context=team", f"--kubeconfig={config}",
                                "-o", "json").stdout)  # fmt: skip
    assert as_json["metadata"]["namespace"] == namespace
    rotated = plugin("rotate", "x", "--context", "team", "--kubeconfig", config).stdout
    assert rotated.startswith("serviceaccountcredential.credsmith.io/x rotation requested")
    unknown = plugin("status", "--kubeconfig", config, "--context", "nope", check=False)
    assert unknown.returncode == 1
    # Word for word what kubectl says for the same flags.
    own = cluster.kubectl("get", "pods", "--kubeconfig", config, "--context", "nope", check=False)
    assert own.returncode == 1
    assert unknown.stderr == own.stderr
    assert "nope" in unknown.stderr


def test_rotate_by_name_selector_and_all(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
    plugin: Plugin,
) -> None:
    labels = {"team": "payments"}
    apply(cluster, namespace, "ServiceAccountCredential", "a", labels=labels)
    apply(cluster, namespace, "ServiceAccountCredential", "b", labels=labels)
    apply(cluster, namespace, "ServiceAccountCredential", "c")
    wait_ready(cluster, namespace, "sacred/a", "sacred/b", "sacred/c")

    def revisions() -> list[Any]:
        return [revision(custom, namespace, name) for name in ("a", "b", "c")]

    assert revisions() == [1, 1, 1]
    selected = plugin("rotate", "-l", "team=payments", "-n", namespace).stdout.splitlines()
    assert [line.split()[0] for line in selected] == [
        "serviceaccountcredential.credsmith.io/a",
        "serviceaccountcredential.credsmith.io/b",
    ]
    assert all(" rotation requested (credsmith.io/rotate=" in line for line in selected)
    wait_for(lambda: revisions() == [2, 2, 1], what="a and b rotated")

    everything = plugin("rotate", "--all", "-n", namespace).stdout.splitlines()
    assert len(everything) == 3
    # Requested rotations obey the 1m floor: a and b rotate again a minute after the last.
    wait_for(lambda: revisions() == [3, 3, 2], 90, what="all rotated")
    # A second request by name: a new value, written over the last (--overwrite).
    plugin("rotate", "c", "-n", namespace)
    wait_for(lambda: revisions() == [3, 3, 3], 90, what="c rotated again")
    time.sleep(3)  # and no second rotation for the same request
    assert revisions() == [3, 3, 3]

    none = plugin("rotate", "-l", "team=nobody", "-n", namespace, check=False)
    assert none.returncode == 1
    assert f"No credentials found in {namespace} namespace." in none.stderr


def test_inspect_secret_shows_no_value(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
    plugin: Plugin,
    exposure: Exposure,
) -> None:
    spec = {"serviceAccount": "x", "rotation": {"overlap": "1h"}}  # a previous value too
    apply(cluster, namespace, "ServiceAccountCredential", "x", spec=spec)
    wait_ready(cluster, namespace, "sacred/x")
    plugin("rotate", "sacred/x", "-n", namespace)
    wait_for(lambda: revision(custom, namespace, "x") == 2, what="revision 2")
    status = cast(
        dict[str, Any],
        custom.get_namespaced_custom_object(
            "credsmith.io", "v1alpha1", namespace, "serviceaccountcredentials", "x"
        ),
    )["status"]
    secret = client.ApiClient().sanitize_for_serialization(
        core.read_namespaced_secret(status["secretName"], namespace)
    )
    values = exposure.record_secret(secret)
    assert values

    shown = plugin("inspect", "secret", status["secretName"], "-n", namespace).stdout
    fields = dict(line.split(":", 1) for line in shown.splitlines())
    fields = {label: value.strip() for label, value in fields.items()}
    assert fields["Revision"] == "2"
    assert fields["Fingerprint"] == status["fingerprint"]
    assert fields["Previous fingerprint"].startswith("sha256:")
    assert fields["Previous expires at"] == status["previousExpiresAt"]
    assert fields["Keys"] == ", ".join(sorted(values))
    for key, value in values.items():
        if key == "client_id":  # not a secret, and shown by status too
            continue
        for form in (value, secret["data"][key]):
            assert form not in shown, f"the value of {key} is shown"

    core.create_namespaced_secret(
        namespace, cast(client.V1Secret, {"metadata": {"name": "mine"}, "stringData": {"k": "v"}})
    )
    foreign = plugin("inspect", "secret", "mine", "-n", namespace, check=False)
    assert foreign.returncode == 1
    assert 'secret "mine" is not a credsmith Secret' in foreign.stderr


def test_check_with_and_without_a_leader(
    cluster: Cluster, operator: Operator, namespace: str, plugin: Plugin, tmp_path: Path
) -> None:
    # The session's operator runs without leader election: no Lease anywhere.
    alone = plugin("check", check=False)
    assert alone.returncode == 1
    lines = alone.stdout.splitlines()
    assert "OK    CRD serviceaccountcredentials.credsmith.io: v1alpha1 served" in lines
    assert "OK    CRD apiclients.credsmith.io: v1alpha1 served" in lines
    assert "FAIL  operator leader: no Lease credsmith-operator (see --lease-name)" in lines

    operator.stop()  # one operator at a time; the fixture restarts it afterwards
    elected = Operator(cluster, tmp_path, extra_env={"POD_NAME": "credsmith-pod-0"})
    # Only this namespace: an operator of every namespace would act on the other tests'.
    elected.start(
        "--leader-elect", f"--leader-election-namespace={namespace}", f"--namespace={namespace}"
    )
    try:
        wait_for(lambda: plugin("check", check=False).returncode == 0, what="a leader")
        leading = plugin("check").stdout
        assert (
            f"OK    operator leader: Lease {namespace}/credsmith-operator: leader credsmith-pod-0"
        ) in leading
        named = plugin(
            "check", "--lease-namespace", namespace, "--lease-name", "other", check=False
        )
        assert named.returncode == 1
    finally:
        elected.stop()
    released = plugin("check", "--lease-namespace", namespace, check=False)
    assert released.returncode == 1
    assert f"FAIL  operator leader: Lease {namespace}/credsmith-operator: no holder" in (
        released.stdout
    )


def test_version(plugin: Plugin) -> None:
    lines = plugin("version").stdout.splitlines()
    assert lines == [
        "Plugin Version: 0.1.0 (reads credsmith.io/v1alpha1)",
        "Server CRD serviceaccountcredentials.credsmith.io: v1alpha1 (served, storage)",
        "Server CRD apiclients.credsmith.io: v1alpha1 (served, storage)",
    ]


def test_a_refusal_shows_the_servers_message(
    cluster: Cluster,
    core: client.CoreV1Api,
    operator: Operator,
    namespace: str,
    plugin: Plugin,
    plugin_env: dict[str, str],
    tmp_path: Path,
) -> None:
    apply(cluster, namespace, "ServiceAccountCredential", "x")
    core.create_namespaced_service_account(
        namespace, cast(client.V1ServiceAccount, {"metadata": {"name": "nobody"}})
    )
    user = f"system:serviceaccount:{namespace}:nobody"  # no RBAC at all
    token = str(token_kubeconfig(cluster, namespace, "nobody", tmp_path / "token.yaml"))

    for flags in (["--kubeconfig", token], ["--as", user]):
        refused = plugin("rotate", "sacred/x", "-n", namespace, *flags, check=False)
        assert refused.returncode != 0
        assert refused.stderr.startswith(
            'Error from server (Forbidden): serviceaccountcredentials.credsmith.io "x" is '
            f'forbidden: User "{user}" cannot '
        ), refused.stderr
        assert f'in the namespace "{namespace}"' in refused.stderr
        listing = plugin("status", "-n", namespace, *flags, check=False)
        assert listing.returncode != 0
        assert "Error from server (Forbidden): " in listing.stderr
        assert f'User "{user}" cannot list resource' in listing.stderr

    # The operator's own CLI: one line, no traceback, non-zero.
    command = [str(SCRIPTS / "credsmith"), "rotate", "sacred/x", "-n", namespace]
    cli = subprocess.run(
        [*command, "--kubeconfig", token], env=plugin_env, capture_output=True, text=True
    )
    assert cli.returncode == 1
    assert cli.stderr.count("\n") == 1, cli.stderr
    assert cli.stderr.startswith(
        "credsmith rotate: Error from server (Forbidden): serviceaccountcredentials.credsmith.io"
        f' "x" is forbidden: User "{user}" cannot patch'
    ), cli.stderr
