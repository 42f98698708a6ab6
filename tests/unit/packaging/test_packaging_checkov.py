"""checkov, a policy scanner no one here wrote, over what users install.

Renderings scanned with checkov's Kubernetes checks: the chart with its defaults, the
chart in namespaced mode (watchNamespaces), the chart with an image digest and its
NetworkPolicy on, deploy/ as kustomize builds it, and deploy/'s files as they are.
Rendered with `--namespace`, as installed (without it everything lands in "default",
which checkov rightly flags).

Every finding must be a documented exception: the set of failed checks of each
rendering is exactly the expected one (so a new finding fails here, and so does an
exception that no longer applies), every exception is listed with its reason in
.checkov.yaml and in the chart's README, and with .checkov.yaml nothing fails.

checkov is pinned here and installed into its own virtualenv in the cache directory
(beside the control plane's binaries), not into the project's: it brings ~100
packages (boto3 among them) and pins some older than the project's tools use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith.dev.cluster import build_binaries

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "credsmith"
CONFIG = ROOT / ".checkov.yaml"
CHECKOV = "checkov==3.3.30"
DIGEST = "sha256:" + "0123456789abcdef" * 4

INHERENT = {"CKV_K8S_11", "CKV_K8S_38"}  # see the chart's README
# No digest (so the pull policy is flagged too), no NetworkPolicy.
DEFAULTS = INHERENT | {"CKV_K8S_15", "CKV_K8S_43", "CKV2_K8S_6"}
EXPECTED = {
    "chart-default/all.yaml": DEFAULTS,
    "chart-namespaced/all.yaml": DEFAULTS,
    "chart-digest-networkpolicy/all.yaml": INHERENT,
    "deploy-kustomized/all.yaml": DEFAULTS,
    "deploy/deployment.yaml": DEFAULTS,
}


def cache_dir() -> Path:
    """Where tests/cluster/build.sh keeps its binaries (the same variables)."""
    if cache := os.environ.get("CREDSMITH_CACHE"):
        return Path(cache)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "credsmith"


@pytest.fixture(scope="module")
def checkov() -> Path:
    venv = cache_dir() / CHECKOV.replace("==", "-")
    done = venv / ".installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        result = subprocess.run([*pip, CHECKOV], capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        done.touch()
    return venv / "bin" / "checkov"


def _output(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def renderings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One directory per rendering: checkov's graph checks relate objects across the
    files of one scan (a NetworkPolicy in one rendering would cover another's pods)."""
    bin_dir = build_binaries()
    helm = [str(bin_dir / "helm"), "template", "credsmith", str(CHART), "-n", "credsmith-system"]
    hardened = ("--set", f"image.digest={DIGEST}", "--set", "networkPolicy.enabled=true")
    texts = {
        "chart-default": _output(*helm),
        "chart-namespaced": _output(*helm, "--set", "watchNamespaces={team-a,team-b}"),
        "chart-digest-networkpolicy": _output(*helm, *hardened),
        "deploy-kustomized": _output(str(bin_dir / "kubectl"), "kustomize", str(ROOT / "deploy")),
    }
    out = tmp_path_factory.mktemp("renderings")
    for name, text in texts.items():
        (out / name).mkdir()
        (out / name / "all.yaml").write_text(text)
    return [out / name for name in texts]


def scan(checkov: Path, directory: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(checkov), "-d", str(directory), "--framework", "kubernetes", "-o", "json",
         "--skip-download", *args],
        capture_output=True, text=True, check=False, timeout=600, cwd=directory,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: checks failed
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["check_type"] == "kubernetes"
    assert report["summary"]["parsing_errors"] == 0
    return report


def failed_by_file(report: dict[str, Any], root: str = "") -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for check in report["results"]["failed_checks"]:
        name = root + check["file_path"].lstrip("/")
        found.setdefault(name, set()).add(check["check_id"])
    return found


@pytest.fixture(scope="module")
def findings(checkov: Path, renderings: list[Path]) -> dict[str, set[str]]:
    """Failed check IDs per scanned file, with checkov's own defaults (no config)."""
    found: dict[str, set[str]] = {}
    for directory in [*renderings, ROOT / "deploy"]:  # deploy/'s files as users apply them
        report = scan(checkov, directory)
        checked = report["results"]["passed_checks"] + report["results"]["failed_checks"]
        resources = {check["resource"] for check in checked}
        assert "Deployment.credsmith-system.credsmith" in resources, directory
        assert report["summary"]["passed"] > 30, directory
        found |= failed_by_file(report, root=f"{directory.name}/")
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_only_the_documented_findings(findings: dict[str, set[str]], name: str) -> None:
    assert findings.get(name, set()) == EXPECTED[name]


def test_no_other_file_has_findings(findings: dict[str, set[str]]) -> None:
    assert set(findings) == set(EXPECTED)


def test_every_exception_is_configured_and_documented() -> None:
    skipped = set(yaml.safe_load(CONFIG.read_text(encoding="utf-8"))["skip-check"])
    assert skipped == set().union(*EXPECTED.values())
    readme = (CHART / "README.md").read_text(encoding="utf-8")
    for check in skipped:
        assert f"| `{check}` |" in readme, f"{check} is not explained in the chart's README"


def test_clean_with_the_documented_exceptions(checkov: Path, renderings: list[Path]) -> None:
    for directory in [renderings[0], ROOT / "deploy"]:
        report = scan(checkov, directory, "--config-file", str(CONFIG))
        assert report["results"]["failed_checks"] == [], directory
        assert report["summary"]["passed"] > 30
