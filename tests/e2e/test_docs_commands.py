"""Every shell command in README.md, docs/ and the chart's README runs as written.

Per page, in a namespace of its own that is the kubeconfig context's namespace (as a reader's
would be), with the examples applied and Ready and the operator running, as after `make run`:
the page's blocks run in order with bash (`-euo pipefail`), from a directory that has the
repository's examples/, charts/ and deploy/ but keeps what the commands write out of the
checkout; kubectl is the one built for the tests, and the checkout's virtualenv (credsmith,
kubectl-credsmith) is on PATH. Blocks that cannot run here are marked `<!-- not-run: why -->`
(tests/docs_blocks.py); tests/unit/docs/test_docs_text.py checks the markers.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_blocks import ROOT, ShellBlock, shell_blocks, user_pages
from tests.e2e.cluster import Cluster, Operator

PAGES = [page for page in user_pages() if any(b.not_run is None for b in shell_blocks(page))]
# What the commands may read from the checkout (relative paths in the pages).
SHARED = ("examples", "charts", "deploy", "crds")


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _reader_environment(cluster: Cluster, namespace: str, home: Path) -> dict[str, str]:
    """A kubeconfig of the reader's own whose context namespace is `namespace`."""
    kubeconfig = home / "kubeconfig"
    shutil.copy(cluster.kubeconfig, kubeconfig)
    env = cluster.env(KUBECONFIG=str(kubeconfig))
    env["PATH"] = f"{cluster.bin_dir}:{Path(sys.executable).parent}:{env['PATH']}"
    cluster.kubectl("config", "set-context", "--current", f"--namespace={namespace}", env=env)
    return env


def _run(block: ShellBlock, workdir: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.script],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        f"{block.where} failed ({result.returncode}):\n{block.script}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def test_the_pages_have_commands_to_run() -> None:
    assert {"README.md", "docs/conditions.md", "docs/troubleshooting.md"} <= {
        _page_id(p) for p in PAGES
    }


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_every_command_of_the_page_runs(
    page: Path, cluster: Cluster, operator: Operator, namespace: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    for name in SHARED:
        (workdir / name).symlink_to(ROOT / name)
    env = _reader_environment(cluster, namespace, tmp_path)
    # What `make run` leaves: the examples applied, each credential issued.
    cluster.kubectl("apply", "-f", str(ROOT / "examples"), env=env)
    for kind in ("sacred", "apiclients"):
        cluster.kubectl("wait", "--for=condition=Ready", kind, "--all", "--timeout=180s", env=env)
    blocks = [block for block in shell_blocks(page) if block.not_run is None]
    for block in blocks:
        _run(block, workdir, env)
