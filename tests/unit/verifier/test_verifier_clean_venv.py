"""`pip install ./verifier` into a clean venv: only what verifying needs, and its tests pass.

The API server side of credsmith must not drag in the operator's dependencies. This makes
a venv with nothing in it, installs the verifier distribution from a copy of verifier/ (so
the build leaves nothing in the checkout), checks what pip brought, then installs pytest
and runs verifier/tests there against the installed package. Needs PyPI (cryptography
and the build backend); pip's cache makes reruns quick.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# What an API server must not have to install for the verifier.
OPERATOR_ONLY = {"kubernetes", "aiohttp", "jinja2", "pydantic", "prometheus-client", "pyyaml"}
# cryptography and its own dependencies; pip (and setuptools on older Pythons) come with venv.
ALLOWED = {"credsmith-verify", "cryptography", "cffi", "pycparser", "pip", "setuptools"}


def _run(command: list[str], cwd: Path | None = None) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),  # pip's cache
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, check=False, timeout=600
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.timeout(900)
def test_clean_install_pulls_only_cryptography_and_its_tests_pass(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("*.egg-info", "build", "__pycache__", ".pytest_cache")
    shutil.copytree(ROOT / "verifier", checkout / "verifier", ignore=ignore)
    (checkout / "tests" / "vectors").mkdir(parents=True)
    shutil.copy2(ROOT / "tests/vectors/hashes.json", checkout / "tests/vectors/hashes.json")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    _run([python, "-m", "pip", "install", "--quiet", str(checkout / "verifier")])

    listed = json.loads(_run([python, "-m", "pip", "list", "--format=json"]))
    installed = {re.sub(r"[-_.]+", "-", p["name"]).lower() for p in listed}
    assert "credsmith-verify" in installed
    assert "cryptography" in installed
    assert not installed & OPERATOR_ONLY, installed & OPERATOR_ONLY
    assert installed <= ALLOWED, installed - ALLOWED

    probe = (
        "import importlib.util, credsmith_verify\n"
        "print(credsmith_verify.__file__)\n"
        "print(importlib.util.find_spec('credsmith'))\n"
    )
    location, operator = _run([python, "-I", "-c", probe]).splitlines()
    assert location.startswith(str(venv)), location
    assert operator == "None"  # the operator package is not there

    _run([python, "-m", "pip", "install", "--quiet", "pytest>=8"])
    # Not the timing test: it runs in make test's serial session, and here, inside the
    # parallel one, busy workers stretch its calls unevenly (a red run).
    output = _run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not timing", "tests"],
        cwd=checkout / "verifier",
    )
    summary = output.strip().splitlines()[-1]
    match = re.match(r"(\d+) passed", summary)
    assert match is not None, output
    assert int(match[1]) >= 100, summary
    assert "failed" not in summary
    assert "skipped" not in summary
