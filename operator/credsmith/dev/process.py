"""A child process that `credsmith dev` and the tests start and stop: the local control
plane (dev/cluster.py) and Ory Hydra (dev/hydra.py).

Each is started in a session of its own with its output appended to a log file, waited
for until it answers, and stopped with SIGTERM (SIGKILL to its process group only when
it does not stop in time).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self


def free_port() -> int:
    """A loopback port free right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    command: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`command` started with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to forward
        )


def wait_until_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    *,
    timeout: float,
    name: str,
    log_path: Path,
    error: type[Exception],
    stop_timeout: float = 20.0,
) -> None:
    """Poll `ready` until it holds. Raise `error` when the process exits first (with the
    end of its log), or when `timeout` passes (after terminating it)."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise error(
                f"{name} exited with {process.returncode}; see {log_path}:\n{tail(log_path)}"
            )
        if time.monotonic() > deadline:
            terminate(process, stop_timeout)
            raise error(f"{name} was not ready in {timeout:.0f}s; see {log_path}")
        time.sleep(0.1)


def terminate(process: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    """Stop cleanly with SIGTERM; SIGKILL to its process group only if it does not stop
    in `timeout` seconds. Nothing to do when it is not running."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log ("" when it cannot be read)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class StartedInWith:
    """`with thing:` starts it and stops it on the way out, whatever happened."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
