"""The Helm chart (charts/credsmith), rendered with `helm template`: no cluster needed.

What it renders for each mode, least-privilege RBAC, the restricted pod, the values
schema, and that every flag the chart passes exists in `credsmith run`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith.cli import main as credsmith_main
from credsmith.dev.cluster import build_binaries

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "credsmith"
RELEASE, NAMESPACE = "credsmith", "credsmith-system"

# The operator's API calls (credsmith.runtime.kube, its informers) and nothing else:
# (apiGroup, resource) -> verbs. Granted by the ClusterRole, or a Role per namespace.
OPERATOR_RULES = {
    ("credsmith.io", "serviceaccountcredentials"): {"list", "watch"},
    ("credsmith.io", "apiclients"): {"list", "watch"},
    ("credsmith.io", "serviceaccountcredentials/status"): {"patch"},
    ("credsmith.io", "apiclients/status"): {"patch"},
    ("credsmith.io", "identityproviders"): {"get", "list", "watch"},
    ("credsmith.io", "identityproviders/status"): {"patch"},
    ("", "secrets"): {"get", "list", "watch", "create", "update"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update"},
    ("", "events"): {"create"},
}
# Cluster-wide whatever the mode: ClusterIdentityProviders and the namespaces' labels their
# allowedNamespaces select by.
CLUSTER_RULES = {
    ("credsmith.io", "clusteridentityproviders"): {"get", "list", "watch"},
    ("credsmith.io", "clusteridentityproviders/status"): {"patch"},
    ("", "namespaces"): {"get", "list", "watch"},
}
LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)


@pytest.fixture(scope="module")
def helm() -> Path:
    return build_binaries() / "helm"


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


def render(helm: Path, *args: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", namespace, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = find(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def rule_map(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, for rules without resourceNames."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert "resourceNames" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    return granted


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# ---- the chart as written ------------------------------------------------------------


def test_chart_crds_are_the_generated_crds_byte_for_byte() -> None:
    generated = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    shipped = {p.name: p.read_bytes() for p in (CHART / "crds").iterdir()}
    assert generated, "crds/ is empty"
    assert shipped == generated, "stale: cp crds/*.yaml charts/credsmith/crds/"


def test_lint_passes(helm: Path) -> None:
    for extra in ([], ["--set", "watchNamespaces={team-a,team-b}", "--set", "replicaCount=2"]):
        result = run_helm(helm, "lint", "--strict", str(CHART), *extra)
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_value_is_commented() -> None:
    """Each key has a comment line above it, a trailing comment, or a commented parent."""
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    key = re.compile(r"^(\s*)([A-Za-z][\w.-]*):")
    parents: list[tuple[int, bool]] = []  # (indent, documented) of the enclosing keys
    missing = []
    for number, line in enumerate(lines):
        match = key.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        while parents and parents[-1][0] >= indent:
            parents.pop()
        above = next((x.strip() for x in reversed(lines[:number]) if x.strip()), "")
        trailing = " # " in line
        documented = above.startswith("#") or trailing
        inherited = bool(parents) and parents[-1][1]
        if not (documented or inherited):
            missing.append(f"line {number + 1}: {line.strip()}")
        parents.append((indent, trailing))
    assert missing == []


def test_schema_is_draft_07_closed_and_matches_values() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"

    def check(schema_node: dict[str, Any], value: dict[str, Any], path: str) -> None:
        assert schema_node["additionalProperties"] is False, f"{path or '/'} is open"
        assert set(schema_node["properties"]) == set(value), f"{path or '/'}: schema != values"
        for name, sub in schema_node["properties"].items():
            if sub.get("additionalProperties") is False:
                check(sub, value[name], f"{path}/{name}")

    check(schema, values, "")


# ---- what it renders -----------------------------------------------------------------


def test_defaults_render_cluster_mode(helm: Path) -> None:
    docs = render(helm)
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert names == {
        ("ServiceAccount", "credsmith"),
        ("ClusterRole", "credsmith"),
        ("ClusterRoleBinding", "credsmith"),
        ("ClusterRole", "credsmith-view"),  # tenants' roles (test_packaging_monitoring.py)
        ("ClusterRole", "credsmith-edit"),
        ("Role", "credsmith-leader-election"),
        ("RoleBinding", "credsmith-leader-election"),
        ("Role", "credsmith-state-key"),
        ("RoleBinding", "credsmith-state-key"),
        ("Service", "credsmith-metrics"),
        ("Deployment", "credsmith"),
    }
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert all(labels.get(label) for label in LABELS), doc["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NAMESPACE
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "credsmith"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "credsmith", "namespace": NAMESPACE}
    ]
    args = container(docs)["args"]
    assert args[0] == "run"
    assert not [arg for arg in args if arg.startswith("--namespace")]


def test_deployment(helm: Path) -> None:
    docs = render(helm)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    main = container(docs)
    assert deployment["spec"]["replicas"] == 1
    assert pod["serviceAccountName"] == "credsmith"
    assert main["image"] == "ghcr.io/credsmith/credsmith:0.1.0"
    assert main["imagePullPolicy"] == "IfNotPresent"
    assert main["args"] == [
        "run",
        "--metrics-port=8080",
        "--liveness-port=8081",
        "--workers=16",
        "--consumer-roll-window=10s",
        "--log-level=INFO",
        "--leader-elect",
        "--leader-election-namespace=$(POD_NAMESPACE)",
        "--leader-election-id=credsmith-operator",
        "--lease-duration=15",
        "--state-key-namespace=$(POD_NAMESPACE)",
        "--state-key-name=credsmith-state-key",
    ]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in main["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"metrics": 8080, "healthz": 8081}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "healthz"}
    # The restricted Pod Security Standard, and a writable /tmp on a read-only root.
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert main["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp"
    assert "emptyDir" in pod["volumes"][0]
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]["memory"]
    service = one(docs, "Service")
    assert (
        service["spec"]["selector"].items() <= deployment["spec"]["selector"]["matchLabels"].items()
    )
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_scheduling_values_reach_the_pod(helm: Path) -> None:
    docs = render(
        helm,
        "--set", "nodeSelector.kubernetes\\.io/os=linux",
        "--set", "tolerations[0].key=dedicated,tolerations[0].operator=Exists",
        "--set", "priorityClassName=system-cluster-critical",
        "--set", "image.tag=1.2.3,image.pullPolicy=Always",
        "--set", "affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution"
                 "[0].weight=1",
    )  # fmt: skip
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert "podAntiAffinity" in pod["affinity"]
    assert container(docs)["image"] == "ghcr.io/credsmith/credsmith:1.2.3"
    assert container(docs)["imagePullPolicy"] == "Always"


def test_namespaced_mode(helm: Path) -> None:
    docs = render(helm, "--set", "watchNamespaces={team-a,team-b}")
    assert find(docs, "ClusterRole") == []
    assert find(docs, "ClusterRoleBinding") == []
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]) for r in find(docs, "Role")}
    assert roles == {
        ("team-a", "credsmith"),
        ("team-b", "credsmith"),
        (NAMESPACE, "credsmith-leader-election"),
        (NAMESPACE, "credsmith-state-key"),
    }
    for binding in find(docs, "RoleBinding"):
        assert binding["roleRef"]["name"] == binding["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "credsmith", "namespace": NAMESPACE}
        ]
    args = container(docs)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=team-a",
        "--namespace=team-b",
    ]


def test_cluster_identity_providers_in_namespaced_mode_on_request(helm: Path) -> None:
    docs = render(
        helm,
        "--set", "watchNamespaces={team-a}",
        "--set", "identityProviders.clusterProviders=true",
        "--set", "identityProviders.credentialsSecrets={keycloak-admin,hydra-admin}",
    )  # fmt: skip
    [cluster_role] = find(docs, "ClusterRole")
    assert cluster_role["metadata"]["name"] == "credsmith-cluster-identity-providers"
    assert rule_map(cluster_role["rules"]) == CLUSTER_RULES
    [cluster_binding] = find(docs, "ClusterRoleBinding")
    assert cluster_binding["roleRef"]["name"] == "credsmith-cluster-identity-providers"
    assert cluster_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "credsmith", "namespace": NAMESPACE}
    ]
    # Their admin credentials: Secrets of the release namespace, got by name only.
    [credentials] = [
        r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-credentials")
    ]
    assert credentials["metadata"]["namespace"] == NAMESPACE
    assert credentials["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["keycloak-admin", "hydra-admin"],
            "verbs": ["get"],
        }
    ]
    # Cluster mode: in the ClusterRole (Secrets are read everywhere already), unless refused.
    [operator_role] = [
        r for r in find(render(helm), "ClusterRole") if r["metadata"]["name"] == "credsmith"
    ]
    assert CLUSTER_RULES.items() <= rule_map(operator_role["rules"]).items()
    refused = render(helm, "--set", "identityProviders.clusterProviders=false")
    [operator_role] = [
        r for r in find(refused, "ClusterRole") if r["metadata"]["name"] == "credsmith"
    ]
    assert not CLUSTER_RULES.keys() & rule_map(operator_role["rules"]).keys()


CONSUMER_RULES = {
    ("apps", kind): {"get", "list", "patch"}
    for kind in ("deployments", "statefulsets", "daemonsets")
}


@pytest.mark.parametrize("consumers", [False, True], ids=["", "consumers"])
@pytest.mark.parametrize("watch", [[], ["team-a", "team-b"]], ids=["cluster", "namespaced"])
def test_rbac_is_least_privilege(helm: Path, watch: list[str], consumers: bool) -> None:
    args = ["--set", "watchNamespaces={" + ",".join(watch) + "}"] if watch else []
    if consumers:  # workloads only when spec.consumers is enabled, in the same scope
        args += ["--set", "consumers.enabled=true"]
    docs = render(helm, *args)
    for value in walk([d.get("rules") for d in docs]):
        assert value != "*", "no wildcards"
    tenants = ("credsmith-view", "credsmith-edit")  # test_packaging_monitoring.py
    operator_roles = [r for r in find(docs, "ClusterRole") if r["metadata"]["name"] not in tenants]
    operator_roles += [r for r in find(docs, "Role") if r["metadata"]["namespace"] != NAMESPACE]
    assert len(operator_roles) == (len(watch) or 1)
    for role in operator_roles:
        expected = OPERATOR_RULES | (CONSUMER_RULES if consumers else {})
        expected |= {} if watch else CLUSTER_RULES
        assert rule_map(role["rules"]) == expected
    lease = next(r for r in find(docs, "Role") if r["metadata"]["name"].endswith("-election"))
    assert lease["metadata"]["namespace"] == NAMESPACE
    assert sorted(lease["rules"], key=lambda r: r["verbs"]) == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["credsmith-operator"],
            "verbs": ["get", "update"],
        },
    ]


@pytest.mark.parametrize("watch", [[], ["team-a"]], ids=["cluster", "namespaced"])
def test_the_state_key_secret_is_got_by_name_and_created_in_the_release_namespace(
    helm: Path, watch: list[str]
) -> None:
    args = ["--set", "watchNamespaces={" + ",".join(watch) + "}"] if watch else []
    docs = render(helm, *args)
    role = next(r for r in find(docs, "Role") if r["metadata"]["name"] == "credsmith-state-key")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert sorted(role["rules"], key=lambda r: r["verbs"]) == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["credsmith-state-key"],
            "verbs": ["get"],
        },
    ]
    # Never templated: the operator creates it, so no upgrade can replace the key.
    assert not [d for d in docs if d["kind"] == "Secret"]
    docs = render(helm, "--set", "stateKey.name=my-key")
    assert "--state-key-name=my-key" in container(docs)["args"]
    role = next(r for r in find(docs, "Role") if r["metadata"]["name"] == "credsmith-state-key")
    assert [r.get("resourceNames") for r in role["rules"]] == [["my-key"], None]


def test_leader_election_id_follows_the_release(helm: Path) -> None:
    result = run_helm(helm, "template", "other", str(CHART), "-n", "ops")
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert "--leader-election-id=other-credsmith-operator" in container(docs)["args"]
    docs = render(helm, "--set", "leaderElection.id=my-lease")
    assert "--leader-election-id=my-lease" in container(docs)["args"]
    lease_rule = next(r for r in find(docs, "Role")[0]["rules"] if "resourceNames" in r)
    assert lease_rule["resourceNames"] == ["my-lease"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], False),
        (["--set", "replicaCount=2"], True),
        (["--set", "replicaCount=3", "--set", "podDisruptionBudget.enabled=false"], False),
        (["--set", "podDisruptionBudget.enabled=true"], True),
    ],
)
def test_pod_disruption_budget(helm: Path, values: list[str], expected: bool) -> None:
    docs = render(helm, *values)
    assert bool(find(docs, "PodDisruptionBudget")) is expected
    if expected:
        pdb = one(docs, "PodDisruptionBudget")
        assert pdb["spec"]["minAvailable"] == 1
        selector = one(docs, "Deployment")["spec"]["selector"]
        assert pdb["spec"]["selector"] == selector


def test_replicas_run_active_standby(helm: Path) -> None:
    docs = render(helm, "--set", "replicaCount=3")
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert "--leader-elect" in container(docs)["args"]


def test_service_monitor_is_optional(helm: Path) -> None:
    assert find(render(helm), "ServiceMonitor") == []
    docs = render(
        helm,
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.labels.release=prometheus",
    )  # fmt: skip
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


def test_existing_service_account(helm: Path) -> None:
    docs = render(helm, "--set", "serviceAccount.create=false,serviceAccount.name=mine")
    assert find(docs, "ServiceAccount") == []
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "mine"
    assert one(docs, "ClusterRoleBinding")["subjects"][0]["name"] == "mine"
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", "serviceAccount.create=false")
    assert result.returncode != 0
    assert "serviceAccount.name is required" in result.stderr


def test_rbac_can_be_left_to_the_user(helm: Path) -> None:
    docs = render(helm, "--set", "rbac.create=false")
    kinds = {doc["kind"] for doc in docs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("replicaCount=two", "/replicaCount"),
        ("replicaCount=0", "/replicaCount"),
        ("colour=blue", "additional properties 'colour'"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("image.digest=sha256:0", "/image/digest"),  # not a sha256 digest
        ("watchNamespaces={Team_A}", "/watchNamespaces/0"),
        ("logLevel=TRACE", "/logLevel"),
        ("workers=many", "/workers"),
        ("consumerRollWindow=10", "/consumerRollWindow"),  # a duration needs its unit
        ("metrics.port=70000", "/metrics/port"),
        ("leaderElection.leaseDuration=1", "/leaderElection/leaseDuration"),
        ("podDisruptionBudget.enabled=maybe", "/podDisruptionBudget/enabled"),
        ("serviceAccount.create=yes", "/serviceAccount/create"),
    ],
)
def test_schema_rejects_bad_values(helm: Path, value: str, where: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", value)
    assert result.returncode != 0
    assert "schema" in result.stderr, result.stderr
    assert where in result.stderr, result.stderr


def test_every_flag_the_chart_passes_exists(helm: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = render(helm, "--set", "watchNamespaces={team-a}")
    flags = {arg.split("=", 1)[0] for arg in container(docs)["args"] if arg.startswith("--")}
    with pytest.raises(SystemExit) as exited:
        credsmith_main(["run", "--help"])
    assert exited.value.code == 0
    usage = capsys.readouterr().out
    missing = [flag for flag in sorted(flags) if not re.search(rf"{flag}\b", usage)]
    assert missing == [], f"`credsmith run` has no {missing}"


def notes(helm: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it (a client-side dry run: no cluster needed)."""
    result = run_helm(
        helm, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_say_that_no_image_is_published(helm: Path) -> None:
    default = notes(helm)
    assert "No credsmith image is published" in default
    assert "--set image.repository=REGISTRY/credsmith --set image.tag=TAG" in default
    assert "rollout status deployment/credsmith --timeout=" in default
    own = notes(helm, "--set", "image.repository=registry.example/ops/credsmith")
    assert "No credsmith image is published" not in own
    assert "Image: registry.example/ops/credsmith:0.1.0" in own


def test_identity_provider_url_allow_list(helm: Path) -> None:
    args = container(render(helm))["args"]
    assert not [a for a in args if a.startswith("--identity-provider-url-allow")]
    docs = render(
        helm, "--set", "identityProviders.urlAllow={https://hydra.auth:4445,https://kc.auth}"
    )
    assert [a for a in container(docs)["args"] if a.startswith("--identity-provider")] == [
        "--identity-provider-url-allow=https://hydra.auth:4445",
        "--identity-provider-url-allow=https://kc.auth",
    ]


@pytest.mark.parametrize(
    ("args", "watched"),
    [
        ((), True),
        (("--set", "watchNamespaces={team-a}"), False),
        (
            (
                "--set",
                "watchNamespaces={team-a}",
                "--set",
                "identityProviders.clusterProviders=true",
            ),
            True,
        ),
        (("--set", "identityProviders.clusterProviders=false"), False),
    ],
)
def test_cluster_identity_providers_are_watched_where_granted(
    helm: Path, args: tuple[str, ...], watched: bool
) -> None:
    operator_args = container(render(helm, *args))["args"]
    assert ("--no-cluster-identity-providers" not in operator_args) is watched
