"""The operator as a separate process, and what /proc says about processes and the machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads), from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0, 0.0
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def memory(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in bytes."""
    result: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return result
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            result[key] = int(value.split()[0]) * 1024
    return result


def machine_seconds() -> tuple[float, float]:
    """CPU seconds all CPUs were busy since boot, and seconds stolen by the hypervisor."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user)
    busy = values[0] + values[1] + values[2] + values[5] + values[6]
    return busy / CLOCK_TICKS, values[7] / CLOCK_TICKS


@dataclass
class CpuMeter:
    """CPU seconds used during one phase: by the operator, the control plane, this
    process, and everything else on the machine (other people's work included)."""

    pids: dict[str, int]
    _start: dict[str, float] = field(default_factory=dict)
    _wall: float = 0.0

    def __post_init__(self) -> None:
        self._start = self._sample()
        self._wall = time.monotonic()

    def _sample(self) -> dict[str, float]:
        sample = {}
        for name, pid in self.pids.items():
            sample[f"{name}_user"], sample[f"{name}_sys"] = cpu_times(pid)
        sample["bench_user"], sample["bench_sys"] = cpu_times(os.getpid())
        sample["machine"], sample["steal"] = machine_seconds()
        return sample

    def stop(self) -> dict[str, float]:
        end = self._sample()
        delta = {name: end[name] - self._start[name] for name in end}
        used: dict[str, float] = {}
        for name in [*self.pids, "bench"]:
            used[name] = round(delta[f"{name}_user"] + delta[f"{name}_sys"], 2)
            used[f"{name}_sys"] = round(delta[f"{name}_sys"], 2)
        ours = sum(used[name] for name in [*self.pids, "bench"])
        used["machine"] = round(delta["machine"], 2)
        used["others"] = round(max(0.0, delta["machine"] - ours), 2)
        used["steal"] = round(delta["steal"], 2)
        used["wall"] = round(time.monotonic() - self._wall, 2)
        return used


@dataclass
class OperatorProcess:
    """`python -m credsmith.cli run` against the bench cluster, logging to a file."""

    kubeconfig: Path
    log_dir: Path
    workers: int | None = None
    # off (--metrics-port=0, as the recorded results), aggregate (--no-resource-metrics)
    # or per-resource (the default of `credsmith run`).
    metrics: str = "off"
    metrics_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0
    profiler: subprocess.Popen[bytes] | None = None
    # py-spy samples per second (--profile-rate)
    profile_rate: int = 100
    # py-spy's sampling: "gil" (the thread holding the GIL) or "native" (threads on a CPU,
    # with C frames: TLS, orjson, uvloop show as themselves; a CPU profile on a quiet machine)
    profile_mode: str = "gil"
    # --operator-source: run the operator from this checkout's operator/ (PYTHONPATH), e.g.
    # an exported earlier commit, for before/after runs with one bench
    source: Path | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        assert self.process is None, "already running"
        self.starts += 1
        args = [
            sys.executable,
            "-m",
            "credsmith.cli",
            "run",
            f"--kubeconfig={self.kubeconfig}",
            "--liveness-port=0",
            "--log-level=INFO",
        ]
        if self.metrics == "off":
            args.append("--metrics-port=0")
        else:
            self.metrics_port = _free_port()
            args.append(f"--metrics-port={self.metrics_port}")
            if self.metrics == "aggregate":
                args.append("--no-resource-metrics")
        if self.workers:
            args.append(f"--workers={self.workers}")
        log = (self.log_dir / f"operator-{self.starts:02d}.log").open("wb")
        self.started_at = time.monotonic()
        env = None
        if self.source is not None:
            env = {**os.environ, "PYTHONPATH": str(self.source / "operator")}
        self.process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        log.close()

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"the operator exited with {self.process.returncode}; see {self.log_dir}"
            )

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM and wait; return the seconds it took to exit."""
        self.stop_profiler()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return 0.0
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return time.monotonic() - started

    def memory(self) -> dict[str, int]:
        return memory(self.pid) if self.process else {}

    def scrape(self) -> dict[str, int]:
        """One scrape of /metrics, as Prometheus would (its size and credential series)."""
        if self.metrics == "off" or self.process is None:
            return {}
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=60) as response:
            text = response.read().decode()
        per_resource = sum(
            1 for line in text.splitlines() if line.startswith("credsmith_credential_")
        )
        # Reconcile passes so far (each pass is observed once by the duration histogram).
        passes = sum(
            float(line.rpartition(" ")[2])
            for line in text.splitlines()
            if line.startswith("credsmith_reconcile_duration_seconds_count")
        )
        return {"bytes": len(text), "credential_samples": per_resource, "passes": int(passes)}

    # ---- py-spy (optional: --profile) --------------------------------------------

    def start_profiler(self, output: Path, attach_wait: float = 0.5) -> bool:
        """Sample the operator with py-spy into a collapsed-stacks file, if installed."""
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which(
            "py-spy"
        )
        if py_spy is None or self.process is None:
            return False
        self.stop_profiler()
        self.profiler = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(self.pid),
                "--rate",
                str(self.profile_rate),
                "--gil" if self.profile_mode == "gil" else "--native",
                "--format",
                "raw",
                "--output",
                str(output),
                # native stacks need the process paused for each sample
                *(["--nonblocking"] if self.profile_mode == "gil" else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(attach_wait)  # attached before the work starts
        return True

    def stop_profiler(self) -> None:
        profiler, self.profiler = self.profiler, None
        if profiler is None or profiler.poll() is not None:
            return
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            profiler.wait(30)
        except subprocess.TimeoutExpired:
            profiler.kill()
            profiler.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
