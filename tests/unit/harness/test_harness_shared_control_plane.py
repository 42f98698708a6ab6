"""tests/e2e/shared.py: xdist workers share one control plane, and the last to leave
stops it, also when the worker that started it has gone. A stand-in for the cluster
binary (it writes the kubeconfig and waits for SIGTERM) keeps this free of Go."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from tests.e2e.shared import _alive, _stop_pid, shared_control_plane

FAKE_CLUSTER = """#!/usr/bin/env bash
for arg in "$@"; do case $arg in --dir=*) dir=${arg#--dir=} ;; esac; done
echo "$$" >>"$dir/started"
trap 'exit 0' TERM
echo "kubeconfig of $$" >"$dir/kubeconfig"
while :; do sleep 0.1; done
"""


def _bin_dir(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "credsmith-cluster"
    fake.write_text(FAKE_CLUSTER)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_workers_share_one_control_plane_and_the_last_one_stops_it(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    bin_dir, shared = _bin_dir(tmp_path), tmp_path / "shared"
    first = shared_control_plane(shared, bin_dir, "gw0")
    second = shared_control_plane(shared, bin_dir, "gw1")
    started = first.__enter__()
    joined = second.__enter__()
    assert joined.port == started.port
    assert joined.kubeconfig == started.kubeconfig
    assert joined.kubeconfig.exists()
    assert started.process is not None
    pid = started.process.pid
    request.addfinalizer(lambda: _stop_pid(pid, timeout=5))  # if an assertion fails
    assert (shared / "state" / "started").read_text().split() == [str(pid)]  # one start

    first.__exit__(None, None, None)  # the starter leaves first: the cluster stays
    time.sleep(0.3)
    assert _alive(pid)
    second.__exit__(None, None, None)  # the last one stops it, by pid
    assert not _alive(pid)
    assert not (shared / "cluster.json").exists()

    with shared_control_plane(shared, bin_dir, "gw2") as again:  # alone: starts and stops
        assert again.process is not None
        new_pid = again.process.pid
    assert new_pid != pid
    assert not _alive(new_pid)
