"""deploy/ (kustomize) renders the same objects as the chart's defaults.

`kubectl kustomize deploy/` against `helm template credsmith charts/credsmith
--namespace credsmith-system --include-crds`: the same (kind, namespace, name) set
(deploy/ adds the Namespace), the same RBAC rules and pod security, and in fact the
same objects once the labels that name the tool (helm.sh/chart, managed-by) are set
aside. deploy/crds/ must be byte-for-byte copies of crds/.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith.dev.cluster import build_binaries

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
CHART = ROOT / "charts" / "credsmith"
NAMESPACE = "credsmith-system"
TOOL_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")

Key = tuple[str, str, str]  # kind, namespace ("" when cluster-scoped), name


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    return build_binaries()


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _by_key(text: str) -> dict[Key, dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    keyed = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs
    }
    assert len(keyed) == len(docs), "duplicate objects"
    return keyed


@pytest.fixture(scope="module")
def kustomized(bin_dir: Path) -> dict[Key, dict[str, Any]]:
    return _by_key(_run(str(bin_dir / "kubectl"), "kustomize", str(DEPLOY)))


@pytest.fixture(scope="module")
def charted(bin_dir: Path) -> dict[Key, dict[str, Any]]:
    return _by_key(
        _run(
            str(bin_dir / "helm"),
            "template",
            "credsmith",
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--include-crds",
        )
    )


def _without_tool_labels(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: _without_tool_labels(v)
            for k, v in obj.items()
            if not (k in TOOL_LABELS and isinstance(v, str))
        }
    if isinstance(obj, list):
        return [_without_tool_labels(v) for v in obj]
    return obj


def _pod(objects: dict[Key, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = objects["Deployment", NAMESPACE, "credsmith"]["spec"]["template"]["spec"]
    return spec


def _rules(objects: dict[Key, dict[str, Any]]) -> dict[Key, Any]:
    return {key: obj["rules"] for key, obj in objects.items() if key[0] in ("ClusterRole", "Role")}


def test_deploy_crds_are_the_generated_crds_byte_for_byte() -> None:
    generated = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    copied = {p.name: p.read_bytes() for p in (DEPLOY / "crds").iterdir()}
    assert generated, "crds/ is empty"
    assert copied == generated, "deploy/crds/ is stale: cp crds/*.yaml deploy/crds/"


def test_every_crd_file_is_a_resource() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = {r for r in kustomization["resources"] if r.startswith("crds/")}
    assert listed == {f"crds/{p.name}" for p in (ROOT / "crds").glob("*.yaml")}


def test_same_objects(
    kustomized: dict[Key, dict[str, Any]], charted: dict[Key, dict[str, Any]]
) -> None:
    assert set(kustomized) - set(charted) == {("Namespace", "", NAMESPACE)}
    assert set(charted) - set(kustomized) == set()


def test_same_rbac_rules(
    kustomized: dict[Key, dict[str, Any]], charted: dict[Key, dict[str, Any]]
) -> None:
    assert _rules(kustomized) == _rules(charted)
    # the ClusterRole, the Lease Role, the state key Role and the tenants' credsmith-view
    # and credsmith-edit
    assert len(_rules(charted)) == 5
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for key, binding in charted.items():
            if key[0] == kind:
                assert kustomized[key]["subjects"] == binding["subjects"]
                assert kustomized[key]["roleRef"] == binding["roleRef"]


def test_same_pod_security(
    kustomized: dict[Key, dict[str, Any]], charted: dict[Key, dict[str, Any]]
) -> None:
    assert _pod(kustomized)["securityContext"] == _pod(charted)["securityContext"]
    assert [c["securityContext"] for c in _pod(kustomized)["containers"]] == [
        c["securityContext"] for c in _pod(charted)["containers"]
    ]
    assert _pod(kustomized)["securityContext"]["runAsNonRoot"] is True


def test_identical_apart_from_tool_labels(
    kustomized: dict[Key, dict[str, Any]], charted: dict[Key, dict[str, Any]]
) -> None:
    """Args, probes, ports, resources, CRD schemas: everything else is equal too."""
    for key, obj in charted.items():
        assert _without_tool_labels(kustomized[key]) == _without_tool_labels(obj), key
    for key, obj in kustomized.items():
        if key[0] != "CustomResourceDefinition":  # generated, with no labels
            assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"


def test_namespace_enforces_restricted_pod_security(
    kustomized: dict[Key, dict[str, Any]],
) -> None:
    labels = kustomized["Namespace", "", NAMESPACE]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
