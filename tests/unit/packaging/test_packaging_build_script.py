"""tests/cluster/build.sh with a stand-in `go` on PATH: what each mode builds, and two
runs sharing one cache (two `make test` at once, or pytest workers) both succeeding.

The stand-in logs each `go build` and writes a small executable after a delay, so
that two runs really overlap; the real toolchain is not involved.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tests" / "cluster" / "build.sh"
STAGES = (
    "node/fast/node-initialize",
    "node/heartbeat/node-heartbeat",
    "pod/fast/pod-ready",
    "pod/fast/pod-complete",
    "pod/fast/pod-delete",
)

FAKE_GO = """#!/usr/bin/env bash
set -eu
case $1 in
  version) echo "go version go0.0 stand-in" ;;
  mod) ;;
  list) echo "$FAKE_GO_MODULE" ;;
  build)
    out= ; tags= ; pkg=${!#}
    while [ $# -gt 0 ]; do
      case $1 in -o) out=$2 ;; -tags=*) tags=${1#-tags=} ;; esac
      shift
    done
    echo "$pkg" >>"$FAKE_GO_LOG"
    echo "$pkg tags=$tags cgo=${CGO_ENABLED:-}" >>"$FAKE_GO_LOG.flags"
    sleep "$FAKE_GO_DELAY"
    printf '#!/bin/sh\\n' >"$out"
    chmod +x "$out"
    ;;
  *) echo "unexpected: go $*" >&2; exit 1 ;;
esac
"""


def _environment(tmp_path: Path, delay: float) -> dict[str, str]:
    tools = tmp_path / "tools"
    tools.mkdir()
    go = tools / "go"
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IEXEC)
    module = tmp_path / "kwok-module"  # the stages build.sh copies out of kwok's module
    for stage in STAGES:
        path = module / "kustomize" / "stage" / f"{stage}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"kind: Stage\nname: {stage}\n")
    return {
        **os.environ,
        "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}",
        "CREDSMITH_CACHE": str(tmp_path / "cache"),
        "FAKE_GO_LOG": str(tmp_path / "built.log"),
        "FAKE_GO_MODULE": str(module),
        "FAKE_GO_DELAY": str(delay),
    }


def _built(tmp_path: Path) -> list[str]:
    log = tmp_path / "built.log"
    return log.read_text().split() if log.exists() else []


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_dev_builds_the_control_plane_and_kwok_only(tmp_path: Path) -> None:
    env = _environment(tmp_path, delay=0)
    result = _run(env, "--dev")
    assert result.returncode == 0, result.stderr
    assert _built(tmp_path) == [".", "sigs.k8s.io/kwok/cmd/kwok"]
    bin_dir = Path(result.stdout.strip())
    assert (bin_dir / "kubectl").resolve() == bin_dir / "credsmith-cluster"
    assert "pod/fast/pod-delete" in (bin_dir / "kwok-stages.yaml").read_text()
    assert not (bin_dir / "helm").exists()

    result = _run(env)  # everything: only what --dev left out is built now
    assert result.returncode == 0, result.stderr
    assert "helm.sh/helm/v4/cmd/helm" in _built(tmp_path)
    assert "." in _built(tmp_path)[2:]  # verify-go and kstatus are modules "." too
    assert len(_built(tmp_path)) == len(list(bin_dir.glob("*.stamp")))
    assert (bin_dir / "helm").is_file()
    # Hydra needs cgo and its SQLite tags (for DSN=memory), and only Hydra gets them.
    flags = (tmp_path / "built.log.flags").read_text().splitlines()
    assert "github.com/ory/hydra/v2 tags=sqlite,sqlite_omit_load_extension cgo=1" in flags
    assert [line for line in flags if "tags=sqlite" in line] == [flags[-1]]


def test_dev_with_hydra_builds_hydra_too(tmp_path: Path) -> None:
    env = _environment(tmp_path, delay=0)
    result = _run(env, "--dev", "--hydra")
    assert result.returncode == 0, result.stderr
    assert _built(tmp_path) == [".", "sigs.k8s.io/kwok/cmd/kwok", "github.com/ory/hydra/v2"]
    assert _run(env, "--hydra", "--bogus").returncode == 2


def test_two_runs_sharing_a_cache_both_succeed_and_build_once(tmp_path: Path) -> None:
    env = _environment(tmp_path, delay=0.5)
    runs = [
        subprocess.Popen(
            ["bash", str(SCRIPT)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = [run.communicate(timeout=120) for run in runs]
    for run, (_, stderr) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, stderr
    bin_dir = Path(outcomes[0][0].strip())
    assert len(_built(tmp_path)) == len(list(bin_dir.glob("*.stamp")))  # each one once
    assert not list(bin_dir.glob("*.tmp*"))  # no leftovers
