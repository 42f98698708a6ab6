"""The chart's monitoring and tenant objects, rendered with `helm template` and checked by the
real promtool (built by tests/cluster/build.sh): the PrometheusRule passes `promtool check
rules` and its alerts pass `promtool test rules` (alert_tests/: each fires and stays silent),
the dashboard and the rule name only metrics the operator serves, docs/metrics.md lists
every one, and the aggregated ClusterRoles grant what tenants need and no status.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from credsmith.dev.cluster import build_binaries
from credsmith.reconcile.snapshots import Decision
from credsmith.runtime.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "credsmith"
ALERT_TESTS = Path(__file__).parent / "alert_tests"
ALERTS = {
    "CredsmithCredentialNotReady",
    "CredsmithRotationOverdue",
    "CredsmithConsumersLagging",
    "CredsmithIdentityProviderDown",
    "CredsmithOperatorDown",
    "CredsmithNoLeader",
}
# Served once identity providers land; the rule and the dashboard use it already.
LATER: set[str] = set()  # metrics the alerts or dashboard name before the operator serves them
NAMESPACE = "credsmith-system"
MONITORING = ("--set=metrics.prometheusRule.enabled=true", "--set=metrics.dashboard.enabled=true")


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return build_binaries()


def render(bin_dir: Path, *args: str) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(bin_dir / "helm"), "template", "credsmith", str(CHART), "-n", NAMESPACE, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, [doc["metadata"]["name"] for doc in found]
    return found[0]


def promtool(bin_dir: Path, *args: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(bin_dir / "promtool"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def served_metrics() -> set[str]:
    """Every metric name the operator's /metrics carries (counters with their _total)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    status = {
        "conditions": [{"type": "Ready", "status": "True"}],
        "rotatedAt": "2026-01-01T00:00:00Z",
    }
    metrics.record(("ApiClient", "ns", "a"), Decision(status=status), 0.1)
    text = generate_latest(registry).decode()
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    return {name for name in names if not name.endswith("_created")}  # prometheus-client's


def metric_names(text: str) -> set[str]:
    names = set(re.findall(r"\b(credsmith_[a-z_]+)", text))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def rules_file(bin_dir: Path, directory: Path, *args: str) -> Path:
    rule = only(render(bin_dir, *MONITORING, *args), "PrometheusRule")
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    return path


def test_monitoring_objects_are_off_by_default(bin_dir: Path) -> None:
    kinds = {doc["kind"] for doc in render(bin_dir)}
    assert "PrometheusRule" not in kinds
    assert "ConfigMap" not in kinds


def test_the_rendered_rule_passes_promtool_check_rules(bin_dir: Path, tmp_path: Path) -> None:
    path = rules_file(bin_dir, tmp_path)
    out = promtool(bin_dir, "check", "rules", str(path), cwd=tmp_path)
    assert "SUCCESS: 6 rules found" in out
    groups = yaml.safe_load(path.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == ALERTS
    anchors = set(re.findall(r"^## (\w+)$", (ROOT / "docs" / "alerts.md").read_text(), re.M))
    for rule in rules:
        # Every alert names its runbook, a section of docs/alerts.md.
        assert rule["annotations"]["runbook"] == f"docs/alerts.md#{rule['alert'].lower()}"
        assert rule["alert"] in anchors
        assert "runbook_url" not in rule["annotations"]


def test_each_alert_fires_and_stays_silent_under_promtool(bin_dir: Path, tmp_path: Path) -> None:
    rules_file(bin_dir, tmp_path)
    tests = sorted(ALERT_TESTS.glob("*.yaml"))
    tested = {name for t in tests for name in re.findall(r"alertname: (\w+)", t.read_text())}
    assert tested == ALERTS
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    out = promtool(bin_dir, "test", "rules", *(t.name for t in tests), cwd=tmp_path)
    assert out.count("SUCCESS") == len(tests), out


def test_rule_options_reach_the_rule(bin_dir: Path, tmp_path: Path) -> None:
    path = rules_file(
        bin_dir,
        tmp_path,
        '--set=metrics.prometheusRule.selector=job="creds"\\,cluster="eu"',
        "--set=metrics.prometheusRule.runbookBaseURL=https://docs.example/alerts.md",
        "--set=metrics.prometheusRule.rotationOverdueSeconds=600",
        "--set=metrics.prometheusRule.labels.release=kube-prometheus-stack",
    )
    promtool(bin_dir, "check", "rules", str(path), cwd=tmp_path)
    rules = {r["alert"]: r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]}
    assert (
        rules["CredsmithNoLeader"]["expr"] == 'max(credsmith_leader{job="creds",cluster="eu"}) < 1'
    )
    assert rules["CredsmithRotationOverdue"]["expr"].endswith("> 600")
    url = rules["CredsmithOperatorDown"]["annotations"]["runbook_url"]
    assert url == "https://docs.example/alerts.md#credsmithoperatordown"


def test_the_dashboard_and_the_rule_name_only_served_metrics(bin_dir: Path) -> None:
    docs = render(bin_dir, *MONITORING, "--set=metrics.dashboard.namespace=grafana")
    dashboard = only(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["metadata"]["namespace"] == "grafana"
    text = dashboard["data"]["credsmith.json"]
    panels = json.loads(text)["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    served = served_metrics()
    used = metric_names(exprs)
    assert used - served - LATER == set()
    per_resource = {n for n in served if n.startswith("credsmith_credential_")}
    assert len(per_resource) == 6
    assert per_resource <= used  # each per-resource series is on the dashboard
    rule = yaml.safe_dump(only(docs, "PrometheusRule")["spec"])
    assert metric_names(rule) - served - LATER == set()


def test_docs_list_every_metric() -> None:
    table = (ROOT / "docs" / "metrics.md").read_text()
    listed = set(re.findall(r"^\| `(credsmith_[a-z_]+)` \|", table, re.MULTILINE))
    assert listed == served_metrics() | LATER


def test_tenant_roles_aggregate_into_the_built_in_roles(bin_dir: Path) -> None:
    roles = {
        doc["metadata"]["name"]: doc
        for doc in render(bin_dir)
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] != "credsmith"
    }
    assert set(roles) == {"credsmith-view", "credsmith-edit"}
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    view, edit = roles["credsmith-view"], roles["credsmith-edit"]
    assert {k for k in view["metadata"]["labels"] if k.startswith(aggregate)} == {
        aggregate + "view"
    }
    assert {k for k in edit["metadata"]["labels"] if k.startswith(aggregate)} == {
        aggregate + "edit",
        aggregate + "admin",
    }
    # IdentityProviders too: a namespace's own (ClusterIdentityProviders are the cluster's).
    kinds = ["serviceaccountcredentials", "apiclients", "identityproviders"]
    assert view["rules"] == [
        {"apiGroups": ["credsmith.io"], "resources": kinds, "verbs": ["get", "list", "watch"]}
    ]
    assert edit["rules"] == [
        {
            "apiGroups": ["credsmith.io"],
            "resources": kinds,
            "verbs": ["create", "update", "patch", "delete"],
        }
    ]
    # Default: with the chart's own cluster-wide RBAC only, so that a namespaced install
    # needs no cluster-scoped rights; true or false: always or never.
    for args, expected in (
        (["--set=rbac.tenantRoles=false"], False),
        (["--set=watchNamespaces={team-a}"], False),
        (["--set=rbac.create=false"], False),
        (["--set=watchNamespaces={team-a}", "--set=rbac.tenantRoles=true"], True),
    ):
        names = {d["metadata"]["name"] for d in render(bin_dir, *args)}
        assert (set(roles) <= names) is expected, args
        assert bool(set(roles) & names) is expected, args
