"""The secrecy check of an xdist run (tests/conftest.py): every worker's issued values
against every worker's operator logs and recorded Events and statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import secrecy_problem

VALUES = [f"issued-value-{i}-0123456789abcdefghij" for i in range(6)]
EVENTS = '{"kind": "Event", "message": "Issued revision 1"}'


def _record(tmp_path: Path, worker: str, values: list[str], log: str) -> dict[str, Any]:
    logs = tmp_path / worker
    logs.mkdir()
    (logs / "operator-001.log").write_text(f"DEBUG reconciled in 3 ms\n{log}")
    return {"values": values, "shown": [EVENTS], "logs": str(logs)}


def test_a_value_of_one_worker_in_another_workers_log_is_found(tmp_path: Path) -> None:
    records = [
        _record(tmp_path, "gw0", VALUES[:3], "nothing here"),
        _record(tmp_path, "gw1", VALUES[3:], f"oops {VALUES[0]}"),
    ]
    problem = secrecy_problem(records)
    assert problem is not None
    assert "issued values" in problem
    assert VALUES[0] not in problem  # described, never shown


def test_clean_records_pass_and_missing_logs_fail(tmp_path: Path) -> None:
    clean = [_record(tmp_path, "gw0", VALUES, "nothing here")]
    assert secrecy_problem(clean) is None
    clean[0]["shown"] = []  # no Events were collected: the check would prove nothing
    assert secrecy_problem(clean) is not None
