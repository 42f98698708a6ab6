"""`credsmith dev` (what `make run` runs): from nothing to Ready examples."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
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


def test_dev_with_hydra_registers_the_example_and_prints_a_token_command_that_works(
    tmp_path: Path,
) -> None:
    """Two commands to a token: `credsmith dev --identity-provider hydra` (Hydra beside the
    control plane, examples/identity-providers/hydra.yaml applied and Ready: registered by
    the operator), then the command it prints, which reads the Secret with kubectl. The
    secret value itself is never printed. Hydra stops with dev."""
    state = tmp_path / "with-hydra"
    dev = subprocess.Popen(
        [sys.executable, "-m", "credsmith.cli", "dev", f"--state-dir={state}",
         "--identity-provider=hydra", "--metrics-port=0", "--liveness-port=0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert dev.stdout is not None
    printed: list[str] = []
    try:
        for line in dev.stdout:
            printed.append(line)
            if line.startswith("  curl -s ") or "examples not Ready" in line:
                break
        banner = "".join(printed)
        admin = re.search(r"admin API \(hydra.adminURL\):\s+(\S+)", banner)
        assert admin, banner
        assert "the examples are Ready" in banner, banner
        exports = dict(re.findall(r"export (KUBECONFIG|PATH)=(\S+)", banner))
        path = exports["PATH"].replace("$PATH", os.environ["PATH"])
        token = subprocess.run(
            ["bash", "-c", printed[-1]],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "KUBECONFIG": exports["KUBECONFIG"], "PATH": path},
        )
        assert json.loads(token.stdout)["token_type"] == "bearer"
        secret = subprocess.run(
            ["kubectl", "get", "secret", "reports-exporter",
             "-o", "jsonpath={.data.client_secret}"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "KUBECONFIG": exports["KUBECONFIG"], "PATH": path},
        ).stdout  # fmt: skip
        assert secret
        assert base64.b64decode(secret).decode() not in banner
    finally:
        dev.send_signal(signal.SIGTERM)
        remainder, _ = dev.communicate(timeout=120)
    assert dev.returncode == 0, remainder
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        urllib.request.urlopen(f"{admin.group(1)}/health/ready", timeout=5)  # noqa: S310
