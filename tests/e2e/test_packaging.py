"""The chart and deploy/ against a real API server.

- `helm lint`/`helm template` pass; a wrong type fails on the values schema.
- `helm install` creates the Deployment and RBAC; `helm uninstall` removes them and
  leaves the CRDs (and so every credential) alone.
- The RBAC is real: the operator runs with a token of the chart's ServiceAccount and
  nothing else. Namespaced mode: it issues, rotates, re-issues and reports conflicts
  in the namespace it watches, and the token is Forbidden everywhere else. Cluster
  mode: it works in any namespace. In both, the operator asks for nothing it is not
  granted (no Forbidden in its log).
- `kubectl apply -k deploy/ --dry-run=server` is accepted.
- The pod template (helm and kustomize) is admitted by the "restricted" Pod Security
  level, and a non-compliant variant is rejected, so the check can fail.

The tests that run an operator with the chart's token stop the session's operator
(an admin) first, so no two operators act on the same objects; the `operator`
fixture starts it again afterwards.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "credsmith"
DEPLOY = ROOT / "deploy"
PLURAL = "serviceaccountcredentials"
MANAGED = "app.kubernetes.io/managed-by=credsmith"
RESTRICTED = ("enforce", "warn")  # Pod Security modes set to "restricted"


# ---- helpers -------------------------------------------------------------------------


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(cluster.bin_dir / "helm"), *args],
        capture_output=True,
        text=True,
        env=cluster.env(),
        check=False,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, f"helm {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def docs_of(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def suffix() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture
def namespaces(
    core: client.CoreV1Api, cluster: Cluster, exposure: Exposure
) -> Iterator[tuple[str, str]]:
    """Two more fresh namespaces, A (watched) and B (not), deleted afterwards."""
    names = (f"pkg-a-{suffix()}", f"pkg-b-{suffix()}")
    for name in names:
        core.create_namespace(cast(client.V1Namespace, {"metadata": {"name": name}}))
    yield names
    for name in names:
        exposure.record_namespace(cluster, name)
        core.delete_namespace(name)


@contextmanager
def installed(cluster: Cluster, release: str, namespace: str, *values: str) -> Iterator[None]:
    helm(cluster, "install", release, str(CHART), "--namespace", namespace, "--skip-crds", *values)
    try:
        yield
    finally:
        helm(cluster, "uninstall", release, "--namespace", namespace)


def token_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig with the admin's server and CA and a token of `account`."""
    token = cluster.kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    server = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [server],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {"name": account, "context": {"cluster": server["name"], "user": account}}
                ],
                "current-context": account,
            }
        )
    )
    return path


def as_token(cluster: Cluster, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, check=False, env=cluster.env(KUBECONFIG=str(kubeconfig)))


def can_i(cluster: Cluster, kubeconfig: Path, *args: str) -> bool:
    result = as_token(cluster, kubeconfig, "auth", "can-i", *args)
    return result.stdout.strip() == "yes"


def leader_election_supported() -> bool:
    command = [sys.executable, "-m", "credsmith.cli", "run", "--help"]
    usage = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return "--leader-election-namespace" in usage


def forbidden_lines(logs: str) -> list[str]:
    """What the operator was refused, except writes into namespaces being deleted
    (other tests' namespaces, which a cluster-wide operator may still see)."""
    return [
        line[:300]
        for line in logs.splitlines()
        if "forbidden" in line.lower() and "being terminated" not in line
    ]


@contextmanager
def restricted_operator(
    cluster: Cluster,
    exposure: Exposure,
    tmp_path: Path,
    release: str,
    release_namespace: str,
    *watch: str,
) -> Iterator[Path]:
    """`credsmith run` with only a token of the chart's ServiceAccount (yielded as a
    kubeconfig). Fails if the operator was refused anything."""
    account = f"{release}-credsmith"
    kubeconfig = token_kubeconfig(cluster, release_namespace, account, tmp_path / "token.yaml")
    pod_name = f"{release}-pod-0"
    process = Operator(
        cluster,
        tmp_path,
        # KUBECONFIG too: nothing in the process can fall back to the admin's.
        extra_env={"KUBECONFIG": str(kubeconfig), "POD_NAME": pod_name},
    )
    args = ["--kubeconfig", str(kubeconfig), *[f"--namespace={n}" for n in watch]]
    # The chart's state key Secret and the Role that grants it (its release namespace).
    args += [
        f"--state-key-namespace={release_namespace}",
        f"--state-key-name={release}-credsmith-state-key",
    ]
    if watch:  # as the chart's Deployment: no ClusterIdentityProviders without their grant
        args.append("--no-cluster-identity-providers")
    lease = f"{release}-credsmith-operator"
    if leader_election_supported():
        args += [
            "--leader-elect",
            f"--leader-election-namespace={release_namespace}",
            f"--leader-election-id={lease}",
        ]
    process.start(*args)
    try:
        yield kubeconfig
        if leader_election_supported():
            held = cluster.kubectl("get", "lease", lease, "-n", release_namespace, "-o", "json")
            assert json.loads(held.stdout)["spec"]["holderIdentity"] == pod_name
    finally:
        process.stop()
        exposure.shown.append(process.logs())
    refused = forbidden_lines(process.logs())
    assert refused == [], (
        "the operator asked for more than the chart grants (charts/credsmith/templates "
        "RBAC, or the calls in credsmith.runtime):\n" + "\n".join(refused[:6])
    )


def apply(cluster: Cluster, namespace: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def wait_ready(cluster: Cluster, namespace: str, resource: str, timeout: int = 120) -> None:
    cluster.kubectl(
        "wait", "--for=condition=Ready", f"--timeout={timeout}s", "-n", namespace, resource
    )


def sacred(name: str, **spec: Any) -> dict[str, Any]:
    return manifest("ServiceAccountCredential", name, spec)


def status_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    return dict(obj.get("status") or {})


def pod_from_template(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": template["metadata"].get("labels", {})},
        "spec": copy.deepcopy(template["spec"]),
    }


# ---- helm ----------------------------------------------------------------------------


def test_helm_lint_and_template(cluster: Cluster) -> None:
    for values in ([], ["--set", "watchNamespaces={a,b}"]):
        lint = helm(cluster, "lint", "--strict", str(CHART), *values)
        assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout
        rendered = docs_of(helm(cluster, "template", "credsmith", str(CHART), *values).stdout)
        kinds = sorted(doc["kind"] for doc in rendered)
        # Beside the operator's rules: the Lease's Role and the state key's Role.
        if values:
            assert kinds.count("Role") == 4
            assert "ClusterRole" not in kinds
        else:
            assert kinds.count("Role") == 2
            assert "ClusterRole" in kinds
        assert "Deployment" in kinds


def test_helm_rejects_a_wrong_type_on_the_schema(cluster: Cluster) -> None:
    result = helm(
        cluster, "template", "credsmith", str(CHART), "--set", "replicaCount=two", check=False
    )
    assert result.returncode != 0
    assert "schema" in result.stderr, result.stderr
    assert "/replicaCount" in result.stderr, result.stderr


def test_helm_install_and_uninstall(
    cluster: Cluster, namespace: str, custom: client.CustomObjectsApi
) -> None:
    release = f"inst-{suffix()}"
    fullname = f"{release}-credsmith"
    # The harness installed the CRDs (from the models) under another field manager;
    # Helm 4 would server-side apply crds/ over them, so they are skipped here and
    # checked with a server dry run instead (unit tests keep crds/ equal to the models).
    rendered = helm(cluster, "template", release, str(CHART), "--include-crds").stdout
    crds = [doc for doc in docs_of(rendered) if doc["kind"] == "CustomResourceDefinition"]
    # The credentials' kinds and the identity providers'.
    assert {crd["spec"]["names"]["kind"] for crd in crds} == {
        "ServiceAccountCredential",
        "ApiClient",
        "IdentityProvider",
        "ClusterIdentityProvider",
    }
    dry_run = ("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-")
    cluster.kubectl(
        *dry_run,
        "--field-manager=helm",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": crds}),
    )
    # Two replicas: leader election and a PodDisruptionBudget.
    values = ("--skip-crds", "--set", "replicaCount=2")
    helm(cluster, "install", release, str(CHART), "--namespace", namespace, *values)
    try:
        status = helm(cluster, "status", release, "-n", namespace, "-o", "json").stdout
        assert json.loads(status)["info"]["status"] == "deployed"
        selector = f"app.kubernetes.io/instance={release}"
        kinds = ("deployment", "serviceaccount", "service", "role", "rolebinding", "pdb")
        for kind in kinds:
            found = cluster.kubectl("get", kind, "-n", namespace, "-l", selector, "-o", "name")
            assert found.stdout.strip(), kind
        deployment = json.loads(
            cluster.kubectl("get", "deployment", fullname, "-n", namespace, "-o", "json").stdout
        )
        assert deployment["spec"]["replicas"] == 2
        args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--leader-elect" in args
        assert f"--leader-election-id={fullname}-operator" in args
        cluster.kubectl("get", "clusterrole", fullname)
        cluster.kubectl("get", "clusterrolebinding", fullname)
        cluster.kubectl("get", "role", f"{fullname}-leader-election", "-n", namespace)
        # What the ServiceAccount may do, as the API server decides it.
        account = f"system:serviceaccount:{namespace}:{fullname}"

        def allowed(*args: str) -> bool:
            result = cluster.kubectl("auth", "can-i", f"--as={account}", *args, check=False)
            return result.stdout.strip() == "yes"

        assert allowed("watch", "secrets", "-A")
        resource = f"{PLURAL}.{GROUP}"
        assert allowed("patch", resource, "--subresource=status", "-n", "default")
        assert not allowed("patch", resource, "-n", "default")
        assert not allowed("delete", "secrets", "-n", "default")
        assert not allowed("patch", "secrets", "-n", "default")
        assert allowed("update", f"leases/{fullname}-operator", "-n", namespace)
        assert not allowed("update", "leases/someone-else", "-n", namespace)
        assert not allowed("create", "leases", "-n", "default")
    finally:
        helm(cluster, "uninstall", release, "--namespace", namespace)
    gone = cluster.kubectl("get", "clusterrole", fullname, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr
    # The CRDs stay: uninstalling the chart must not delete anyone's credentials.
    cluster.kubectl("get", "crd", f"{PLURAL}.{GROUP}", "apiclients.credsmith.io")
    custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)


# ---- RBAC, for real ------------------------------------------------------------------


def test_namespaced_rbac_works_in_its_namespace_and_nowhere_else(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
    namespaces: tuple[str, str],
    exposure: Exposure,
    tmp_path: Path,
) -> None:
    operator.stop()  # the admin operator; the fixture restarts it afterwards
    watched, other = namespaces
    release = f"ns-{suffix()}"
    with (
        installed(cluster, release, namespace, f"--set=watchNamespaces={{{watched}}}"),
        restricted_operator(cluster, exposure, tmp_path, release, namespace, watched) as kubeconfig,
    ):
        # Not watched: stays untouched however long we wait below.
        apply(cluster, other, sacred("elsewhere", serviceAccount="x"))
        # Issue: create Secret, patch status, create Event.
        template = {"data": {"url": "https://{{ clientId }}@billing.example"}}
        apply(cluster, watched, sacred("billing", serviceAccount="b", secretTemplate=template))
        wait_ready(cluster, watched, "sacred/billing")
        secret = client.ApiClient().sanitize_for_serialization(
            core.read_namespaced_secret("billing", watched)
        )
        assert set(exposure.record_secret(secret)) == {"client_id", "client_secret", "url"}
        # Rotate: update (replace) the Secret.
        cluster.kubectl("annotate", "-n", watched, "sacred/billing", "credsmith.io/rotate=1")
        wait_for(lambda: status_of(custom, watched, "billing").get("revision") == 2)
        # Lost Secret: re-issued (create again) with a Warning Event.
        core.delete_namespaced_secret("billing", watched)
        wait_for(lambda: status_of(custom, watched, "billing").get("revision") == 3)
        # Conflict: a Secret we do not manage; the operator reads it (get) and reports.
        core.create_namespaced_secret(
            watched,
            cast(client.V1Secret, {"metadata": {"name": "taken"}, "stringData": {"k": "v"}}),
        )
        apply(cluster, watched, sacred("clash", serviceAccount="x", secretName="taken"))

        def reason() -> str | None:
            ready = ready_condition({"status": status_of(custom, watched, "clash")})
            return ready["reason"] if ready else None

        wait_for(lambda: reason() == "SecretConflict", what="SecretConflict")

        def conflict_posted() -> bool:
            found = core.list_namespaced_event(watched, field_selector="involvedObject.name=clash")
            return any(e.reason == "SecretConflict" and e.type == "Warning" for e in found.items)

        # The Event follows the status write that showed the reason.
        wait_for(conflict_posted, 10, what="the SecretConflict Warning")
        # An ApiClient with its registry Secret.
        spec = {"displayName": "Dashboard", "registry": {"name": "clients"}}
        apply(cluster, watched, manifest("ApiClient", "dashboard", spec))
        wait_ready(cluster, watched, "apiclient/dashboard")
        assert present(core.read_namespaced_secret("clients", watched).data)["clients.json"]

        # The token itself: its namespace yes, any other no.
        assert as_token(cluster, kubeconfig, "get", "secrets", "-n", watched).returncode == 0
        refused = as_token(cluster, kubeconfig, "get", "secrets", "-n", other)
        assert refused.returncode != 0
        assert "Error from server (Forbidden)" in refused.stderr, refused.stderr  # HTTP 403
        assert not can_i(cluster, kubeconfig, "list", "secrets", "-A")
        assert not can_i(cluster, kubeconfig, "list", "secrets", "-n", namespace)
        assert not can_i(cluster, kubeconfig, "delete", "secrets", "-n", watched)
        assert not can_i(cluster, kubeconfig, "patch", "secrets", "-n", watched)
        assert not can_i(cluster, kubeconfig, "list", "namespaces")
        assert not can_i(cluster, kubeconfig, "create", "events", "-n", other)

        assert status_of(custom, other, "elsewhere") == {}
        ours = core.list_namespaced_secret(other, label_selector=MANAGED)
        assert ours.items == []


@pytest.mark.serial  # its operator watches every namespace: it would serve other tests'
def test_cluster_rbac_works_in_any_namespace(
    cluster: Cluster,
    core: client.CoreV1Api,
    operator: Operator,
    namespace: str,
    namespaces: tuple[str, str],
    exposure: Exposure,
    tmp_path: Path,
) -> None:
    operator.stop()
    release = f"cl-{suffix()}"
    with (
        installed(cluster, release, namespace),
        restricted_operator(cluster, exposure, tmp_path, release, namespace) as kubeconfig,
    ):
        for target in namespaces:
            apply(cluster, target, sacred("anywhere", serviceAccount="x"))
        for target in namespaces:
            wait_ready(cluster, target, "sacred/anywhere")
            secret = client.ApiClient().sanitize_for_serialization(
                core.read_namespaced_secret("anywhere", target)
            )
            exposure.record_secret(secret)
        assert can_i(cluster, kubeconfig, "list", "secrets", "-A")
        assert not can_i(cluster, kubeconfig, "delete", "secrets", "-A")
        # ConfigMaps: the JWK Sets it writes (get/list/watch/create/update), no more.
        assert can_i(cluster, kubeconfig, "list", "configmaps", "-A")
        assert not can_i(cluster, kubeconfig, "delete", "configmaps", "-A")
        # Namespaces: read only, for a ClusterIdentityProvider's allowedNamespaces.
        assert can_i(cluster, kubeconfig, "list", "namespaces")
        assert not can_i(cluster, kubeconfig, "delete", "namespaces")
        assert not can_i(cluster, kubeconfig, "update", "namespaces")


# ---- kustomize -----------------------------------------------------------------------


@pytest.fixture
def system_namespace(core: client.CoreV1Api) -> Iterator[str]:
    """credsmith-system, which deploy/ installs into; a server dry run creates nothing,
    so the namespaced objects need it to exist."""
    name = "credsmith-system"

    def phase() -> str | None:
        found = core.list_namespace(field_selector=f"metadata.name={name}").items
        return present(found[0].status).phase if found else None

    wait_for(lambda: phase() != "Terminating", timeout=120, what=f"{name} deleted")
    created = phase() is None
    if created:
        labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in RESTRICTED}
        core.create_namespace(
            cast(client.V1Namespace, {"metadata": {"name": name, "labels": labels}})
        )
    yield name
    if created:
        core.delete_namespace(name)


def test_kustomize_applies_on_a_server_dry_run(cluster: Cluster, system_namespace: str) -> None:
    expected = len(docs_of(cluster.kubectl("kustomize", str(DEPLOY)).stdout))
    for flags in ([], ["--server-side"]):
        result = cluster.kubectl("apply", "-k", str(DEPLOY), "--dry-run=server", *flags)
        applied = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
        assert len(applied) == expected, result.stdout
        assert "deployment.apps/credsmith" in result.stdout
        assert "PodSecurity" not in result.stderr, result.stderr


# ---- Pod Security ----------------------------------------------------------------------


def _deployment(cluster: Cluster, source: str) -> dict[str, Any]:
    if source == "helm":
        text = helm(cluster, "template", "credsmith", str(CHART), "-n", "credsmith-system").stdout
    else:
        text = cluster.kubectl("kustomize", str(DEPLOY)).stdout
    return next(doc for doc in docs_of(text) if doc["kind"] == "Deployment")


@pytest.mark.parametrize("source", ["helm", "kustomize"])
def test_pod_template_is_admitted_by_restricted_pod_security(
    cluster: Cluster, core: client.CoreV1Api, namespace: str, source: str
) -> None:
    labels = [f"pod-security.kubernetes.io/{mode}=restricted" for mode in RESTRICTED]
    cluster.kubectl("label", "namespace", namespace, *labels)
    pod = pod_from_template(_deployment(cluster, source), "credsmith-probe")
    # The ServiceAccount admission plugin wants the pod's account to exist.
    core.create_namespaced_service_account(
        namespace,
        cast(client.V1ServiceAccount, {"metadata": {"name": pod["spec"]["serviceAccountName"]}}),
    )

    def dry_run(body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        command = ("create", "--dry-run=server", "-n", namespace, "-f", "-")
        return cluster.kubectl(*command, stdin=json.dumps(body), check=False)

    admitted = dry_run(pod)
    assert admitted.returncode == 0, admitted.stderr
    assert "created (server dry run)" in admitted.stdout
    assert "PodSecurity" not in admitted.stderr  # not even a warning

    # The same pod with privilege escalation allowed and no runAsNonRoot: refused.
    bad = copy.deepcopy(pod)
    bad["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    del bad["spec"]["securityContext"]["runAsNonRoot"]
    refused = dry_run(bad)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr, refused.stderr
    assert "allowPrivilegeEscalation" in refused.stderr
    assert "runAsNonRoot" in refused.stderr
