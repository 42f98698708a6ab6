"""`pip install ./plugin` into a clean venv: `kubectl-credsmith` and nothing else.

A platform engineer's laptop must not get the operator's dependencies for a kubectl
plugin. This makes an empty venv, installs the plugin from a copy of plugin/ (so the build
leaves nothing in the checkout), checks what pip brought and runs the installed command.
Needs PyPI for the build backend (setuptools); pip's cache makes reruns quick.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.verifier.test_verifier_clean_venv import OPERATOR_ONLY, ROOT, _run

ALLOWED = {"kubectl-credsmith", "pip", "setuptools"}  # pip (and setuptools) come with venv


@pytest.mark.timeout(900)
def test_clean_install_has_only_the_plugin_and_it_runs(tmp_path: Path) -> None:
    ignore = shutil.ignore_patterns("*.egg-info", "build", "__pycache__")
    shutil.copytree(ROOT / "plugin", tmp_path / "plugin", ignore=ignore)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "--quiet", str(tmp_path / "plugin")])

    listed = json.loads(_run([python, "-m", "pip", "list", "--format=json"]))
    installed = {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in listed}
    assert "kubectl-credsmith" in installed
    assert not installed & OPERATOR_ONLY, installed & OPERATOR_ONLY
    assert installed <= ALLOWED, installed - ALLOWED
    probe = "import importlib.util as u; print(u.find_spec('credsmith'), u.find_spec('yaml'))"
    assert _run([python, "-I", "-c", probe]).split() == ["None", "None"]

    plugin = str(venv / "bin" / "kubectl-credsmith")
    assert _run([plugin, "version", "--client"]).startswith("Plugin Version: 0.1.0")
    assert "Available Commands:" in _run([plugin, "--help"])
    # Without kubectl: one line, no traceback, exit 1.
    alone = subprocess.run(
        [plugin, "version"],
        capture_output=True,
        text=True,
        env={"PATH": str(venv / "bin")},
        check=False,
    )
    assert alone.returncode == 1
    assert alone.stdout.startswith("Plugin Version: 0.1.0")
    assert alone.stderr == "error: kubectl not found on PATH (or set KUBECTL to its path)\n"
