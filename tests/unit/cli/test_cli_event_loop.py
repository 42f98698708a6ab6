"""`credsmith run` runs the operator on uvloop (bench/README.md, "Operator CPU per
credential": less CPU per API request than asyncio's own loop)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from credsmith import cli
from credsmith.runtime import operator
from credsmith.runtime.operator import OperatorOptions


def test_run_runs_the_operator_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def run_operator(options: OperatorOptions) -> None:
        loops.append(asyncio.get_running_loop())

    monkeypatch.setattr(operator, "run_operator", run_operator)
    assert cli.main(["run", "--metrics-port", "0", "--liveness-port", "0"]) == 0
    assert len(loops) == 1
    assert isinstance(loops[0], uvloop.Loop)
