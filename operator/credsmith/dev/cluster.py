"""Build, start and stop the local control plane (tests/cluster) from Python.

The control plane is one Go binary (etcd + kube-apiserver + kube-controller-manager
with the workload controllers + kube-scheduler, and kubectl as a subcommand) built
from a source checkout by tests/cluster/build.sh, with kwok beside it: `serve` runs
kwok for two simulated nodes (kwok-node-0, kwok-node-1) on which pods become Running
and Ready without containers, so Deployments, StatefulSets and DaemonSets roll out.
kwok's log goes into the same cluster.log.
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from credsmith.dev.process import StartedInWith, free_port, spawn, terminate, wait_until_ready

CLUSTER_BINARY = "credsmith-cluster"


class ClusterError(RuntimeError):
    """The local control plane could not be built or started."""


def find_checkout(start: Path | None = None) -> Path:
    """The credsmith source checkout containing `start` (or this module, or the cwd)."""
    candidates = [start] if start else [Path(__file__).resolve(), Path.cwd()]
    for candidate in candidates:
        for directory in [candidate, *candidate.parents]:
            if (directory / "tests" / "cluster" / "build.sh").is_file():
                return directory
    raise ClusterError(
        "the local control plane is built from a credsmith source checkout "
        "(tests/cluster/build.sh); run this from inside one"
    )


@functools.cache
def build_binaries(
    checkout: Path | None = None, *, dev_only: bool = False, hydra: bool = False
) -> Path:
    """Build (or reuse, when current) the cluster binary and kwok, and unless `dev_only`
    the tools the tests run (helm, toxiproxy, ...), Ory Hydra among them (also with
    `dev_only` when `hydra`); return their directory. Once per process: the build
    script's up-to-date check is not free, and tests call this often."""
    script = (checkout or find_checkout()) / "tests" / "cluster" / "build.sh"
    flags = [*(["--dev"] if dev_only else []), *(["--hydra"] if hydra else [])]
    command = ["bash", str(script), *flags]
    result = subprocess.run(command, check=False, stdout=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise ClusterError(f"{script} failed with exit code {result.returncode}")
    return Path(result.stdout.strip().splitlines()[-1])


@dataclass
class LocalCluster(StartedInWith):
    """One running control plane whose state (etcd data, keys) lives in `state_dir`.

    Stopping and starting again with the same `state_dir` and `port` keeps every
    object and the kubeconfig valid, which is what an outage test needs.
    """

    bin_dir: Path
    state_dir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def kubectl(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def helm(self) -> Path:
        return self.bin_dir / "helm"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "cluster.log"

    def start(self, timeout: float = 180.0) -> None:
        """Start the control plane and wait until it has written its kubeconfig."""
        if self.process and self.process.poll() is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.unlink(missing_ok=True)
        if not self.port:
            self.port = free_port()
        command = [
            str(self.bin_dir / CLUSTER_BINARY),
            "serve",
            f"--dir={self.state_dir}",
            f"--port={self.port}",
        ]
        self.process = spawn(command, self.log_path)
        wait_until_ready(
            self.process,
            self.kubeconfig.exists,
            timeout=timeout,
            name="the control plane",
            log_path=self.log_path,
            error=ClusterError,
            stop_timeout=60.0,
        )

    def stop(self, timeout: float = 60.0) -> None:
        """Stop cleanly with SIGTERM; SIGKILL only if it does not stop in time."""
        process, self.process = self.process, None
        terminate(process, timeout)

    def kubectl_env(self) -> dict[str, str]:
        """The environment in which `kubectl` and `helm` talk to this cluster."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
