"""credsmith.dev.process: how `credsmith dev` and the tests start, wait for and stop the
control plane and Hydra, with small stand-in processes (no Go, no cluster)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from credsmith.dev.process import StartedInWith, spawn, tail, terminate, wait_until_ready


class StandInError(RuntimeError):
    pass


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_ready_process_is_waited_for_and_its_output_goes_to_the_log(tmp_path: Path) -> None:
    log, marker = tmp_path / "logs" / "child.log", tmp_path / "ready"
    code = f"import pathlib, time; print('hello', flush=True); pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"  # noqa: E501
    process = spawn(python(code), log)
    try:
        wait_until_ready(
            process, marker.exists, timeout=30, name="child", log_path=log, error=StandInError
        )
        assert process.poll() is None
    finally:
        terminate(process, timeout=5)
    assert process.returncode is not None
    assert log.read_text().strip() == "hello"


def test_a_process_that_exits_before_ready_raises_with_the_end_of_its_log(
    tmp_path: Path,
) -> None:
    log = tmp_path / "child.log"
    process = spawn(python("print('bad flag'); raise SystemExit(3)"), log)
    with pytest.raises(StandInError, match=r"(?s)child exited with 3; see .*bad flag"):
        wait_until_ready(
            process, lambda: False, timeout=30, name="child", log_path=log, error=StandInError
        )


def test_a_process_not_ready_in_time_is_terminated(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    process = spawn(python("import time; time.sleep(60)"), log)
    with pytest.raises(StandInError, match="child was not ready in 0s"):
        wait_until_ready(
            process, lambda: False, timeout=0.2, name="child", log_path=log, error=StandInError
        )
    assert process.poll() is not None


def test_terminate_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    log, marker = tmp_path / "child.log", tmp_path / "ignoring"
    code = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(marker)!r}).touch(); time.sleep(60)"
    )
    process = spawn(python(code), log)
    wait_until_ready(
        process, marker.exists, timeout=30, name="child", log_path=log, error=StandInError
    )
    started = time.monotonic()
    terminate(process, timeout=0.5)
    assert process.returncode == -9  # SIGKILL, after the grace
    assert time.monotonic() - started < 30
    terminate(process)  # stopped already: nothing to do
    terminate(None)


def test_tail_is_the_last_lines_or_nothing(tmp_path: Path) -> None:
    log = tmp_path / "some.log"
    log.write_text("".join(f"line {i}\n" for i in range(50)))
    assert tail(log, 2) == "line 48\nline 49"
    assert tail(tmp_path / "missing.log") == ""


def test_started_in_with_stops_also_when_the_block_raises() -> None:
    calls: list[str] = []

    class Thing(StartedInWith):
        def start(self) -> None:
            calls.append("start")

        def stop(self) -> None:
            calls.append("stop")

    def use() -> None:
        with Thing() as thing:
            assert isinstance(thing, Thing)
            raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        use()
    assert calls == ["start", "stop"]
