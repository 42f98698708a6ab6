"""`credsmith dev` (what `make run` runs): from nothing to Ready examples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_dev_starts_a_control_plane_and_the_examples_become_ready(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    result = subprocess.run(
        [sys.executable, "-m", "credsmith.cli", "dev", f"--state-dir={state}", "--exit-when-ready"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"export KUBECONFIG={state / 'kubeconfig'}" in result.stdout
    assert "the examples are Ready" in result.stdout
    names = [line.split()[1] for line in result.stdout.splitlines() if "credsmith.io/" in line]
    shown = {name.split("/", 1)[1] for name in names if "/" in name}
    expected = {
        document["metadata"]["name"]
        for path in EXAMPLES.glob("*.yaml")
        for document in yaml.safe_load_all(path.read_text())
        if document["apiVersion"].startswith("credsmith.io/")
    }
    assert expected
    assert expected <= shown
    ready_rows = [
        line for line in result.stdout.splitlines() if "credsmith.io/" in line and " True " in line
    ]
    assert len(ready_rows) == len(expected)


def test_dev_without_operator_installs_only_the_crds(tmp_path: Path) -> None:
    state = tmp_path / "bare"
    result = subprocess.run(
        [sys.executable, "-m", "credsmith.cli", "dev", f"--state-dir={state}", "--no-operator",
         "--exit-when-ready"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "control plane only" in result.stdout
    assert "the examples are Ready" not in result.stdout
