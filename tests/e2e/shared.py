"""One local control plane for all pytest-xdist workers of a run.

The first worker that needs it starts it, under a lock in the directory every worker
of the run shares (their basetemps' parent); the others find its port there and use
the same state directory and kubeconfig. Each worker signs in and out of a list of
users under the same lock, and the last to leave stops it (by pid when the worker that
started it has already gone: the control plane runs in its own session, so it
outlives that worker).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from credsmith.dev.cluster import LocalCluster


@contextlib.contextmanager
def shared_control_plane(directory: Path, bin_dir: Path, worker: str) -> Iterator[LocalCluster]:
    directory.mkdir(parents=True, exist_ok=True)
    record = directory / "cluster.json"  # {"port", "pid", "users"}
    local = LocalCluster(bin_dir, directory / "state")
    with _locked(directory / "lock"):
        if record.exists():
            found = json.loads(record.read_text())
            local.port = found["port"]
        else:
            local.start()
            assert local.process is not None
            found = {"port": local.port, "pid": local.process.pid, "users": []}
        found["users"].append(worker)
        record.write_text(json.dumps(found))
    try:
        yield local
    finally:
        with _locked(directory / "lock"):
            found = json.loads(record.read_text())
            found["users"].remove(worker)
            if found["users"]:
                record.write_text(json.dumps(found))
            else:
                record.unlink()
                if local.process is not None:
                    local.stop()
                else:
                    _stop_pid(found["pid"])


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _stop_pid(pid: int, timeout: float = 60.0) -> None:
    """SIGTERM, as LocalCluster.stop does; SIGKILL to its group if it does not stop."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            return
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent worker to reap it counts as stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
