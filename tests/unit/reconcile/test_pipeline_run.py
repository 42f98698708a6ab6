"""The reconcile pipeline itself: stages in order, a Decision ends the pass, an immutable
pass state, and fields read before a stage set them fail loudly."""

from dataclasses import FrozenInstanceError, replace
from datetime import timedelta

import pytest

from credsmith.reconcile.credential import STAGES, reconcile, run
from credsmith.reconcile.pass_state import Pass, StageOrderError
from credsmith.reconcile.readiness import conclude
from credsmith.reconcile.snapshots import Decision
from credsmith.reconcile.validation import validate

SA = {"serviceAccount": "billing-exporter"}


def start(w) -> Pass:
    return Pass(w.rules, w.snapshot(), w.secret_snapshot(), w.now, w.generate, w.state_key)


def test_the_last_stage_always_decides(world):
    w = world(SA)
    decision = run(start(w), STAGES)
    assert isinstance(decision, Decision)
    assert STAGES[-1] is conclude
    assert STAGES[0] is validate


def test_a_stage_that_returns_a_decision_ends_the_pass(world):
    w = world(SA)
    seen = []
    early = Decision(status={"x": 1})

    def first(p):
        seen.append("first")
        return early

    def never(p):
        seen.append("never")
        return p

    assert run(start(w), (first, never)) is early
    assert seen == ["first"]


def test_stages_that_never_decide_are_a_bug(world):
    with pytest.raises(StageOrderError):
        run(start(world(SA)), (lambda p: p,))


def test_a_field_read_before_its_stage_fails_loudly(world):
    p = start(world(SA))
    for name in ("valid", "spec", "credential", "extras"):
        with pytest.raises(StageOrderError, match="before a stage set it"):
            getattr(p, name)


def test_the_pass_state_is_immutable(world):
    p = start(world(SA))
    with pytest.raises(FrozenInstanceError):
        p.change = None  # type: ignore[misc]
    assert replace(p, events=()) == p


def test_the_pipeline_is_what_reconcile_runs(world):
    w = world(SA)
    w.step()
    w.advance(timedelta(hours=1))
    via_run = run(start(w), STAGES)
    via_reconcile = reconcile(
        w.rules,
        w.snapshot(),
        w.secret_snapshot(),
        w.now,
        generate=w.generate,
        state_key=w.state_key,
    )
    assert via_run == via_reconcile


def test_no_pass_state_leaks_a_value_in_its_repr(world, leaks):
    w = world(SA)
    w.step()
    p = start(w)
    for stage in STAGES[:-1]:
        result = stage(p)
        assert isinstance(result, Pass)
        p = result
    assert leaks(w.secret_values(), {"repr": repr(p)}) == []
