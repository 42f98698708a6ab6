"""Each stage of the reconcile pipeline on its own: what it reads of the pass state, what it
sets, and when it ends the pass with a Decision."""

from dataclasses import replace
from datetime import timedelta
from typing import Any

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.api.enums import WorkloadKind
from credsmith.api.status import Reason
from credsmith.reconcile.claim import claim_secret
from credsmith.reconcile.consumers import ConsumersSeen, Unread, follow_consumers
from credsmith.reconcile.credential import STAGES, run
from credsmith.reconcile.desired_secret import render, write_secret
from credsmith.reconcile.expiry import retire_previous
from credsmith.reconcile.extras import settle
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.policy import decide_value, hash_verifiers
from credsmith.reconcile.readiness import conclude
from credsmith.reconcile.revision import MAX_REVISION, bound_revision
from credsmith.reconcile.snapshots import Decision
from credsmith.reconcile.trust import Credential, Untrusted, read_and_check
from credsmith.reconcile.validation import check_templates_stage, validate

SA = {"serviceAccount": "billing-exporter"}
OVERLAP = {"serviceAccount": "a", "rotation": {"overlap": "1h"}}
HOUR = timedelta(hours=1)


def start(w: Any, seen: ConsumersSeen | None = None) -> Pass:
    return Pass(
        w.rules, w.snapshot(), w.secret_snapshot(), w.now, w.generate, w.state_key, seen=seen
    )


def upto(w: Any, last: Any, seen: ConsumersSeen | None = None) -> Pass:
    """The pass state after the stages up to and including `last`."""
    p = start(w, seen)
    for stage in STAGES:
        result = stage(p)
        assert isinstance(result, Pass), f"{stage.__name__} ended the pass"
        p = result
        if stage is last:
            return p
    raise AssertionError(f"{last} is not a stage")


def reason_of(decision: Decision) -> str:
    reason: str = next(c["reason"] for c in decision.status["conditions"] if c["type"] == "Ready")
    return reason


# ---- validate, claim_secret, check_templates_stage -------------------------------------


def test_validate_sets_what_follows_from_the_spec(world):
    w = world(SA)
    p = validate(start(w))
    assert isinstance(p, Pass)
    assert p.valid.secret_name == w.secret_name
    assert p.valid.parameters.length == p.spec.secret.length


def test_validate_ends_the_pass_on_an_invalid_spec(world):
    w = world({"serviceAccount": "a", "secret": {"length": 3}})
    decision = validate(start(w))
    assert isinstance(decision, Decision)
    assert reason_of(decision) == Reason.INVALID_SPEC
    assert decision.secret is None


def test_validate_drops_consumers_seen_when_the_spec_has_none(world):
    p = validate(start(world(SA), seen=ConsumersSeen()))
    assert isinstance(p, Pass)
    assert p.seen is None


def test_claim_secret_refuses_a_foreign_secret(world):
    w = world(SA)
    w.foreign_secret()
    decision = claim_secret(upto(w, validate))
    assert isinstance(decision, Decision)
    assert reason_of(decision) == Reason.SECRET_CONFLICT
    assert decision.requeue_at is not None
    assert decision.requeue_at > w.now


def test_claim_secret_passes_our_own_secret_or_none(world):
    w = world(SA)
    p = upto(w, validate)
    assert claim_secret(p) is p
    w.step()
    p = upto(w, validate)
    assert claim_secret(p) is p


def test_check_templates_refuses_a_template_over_the_credential(world):
    w = world({**SA, "secretTemplate": {"data": {"client_secret": "x"}}})
    decision = check_templates_stage(upto(w, claim_secret))
    assert isinstance(decision, Decision)
    assert reason_of(decision) == Reason.INVALID_TEMPLATE


# ---- read_and_check, decide_value ------------------------------------------------------


def test_read_and_check_finds_nothing_without_a_secret(world):
    p = upto(world(SA), read_and_check)
    assert p.found is None
    assert p.checked is None


def test_read_and_check_believes_our_secret_and_not_an_edited_one(world):
    w = world(SA)
    w.step()
    assert isinstance(upto(w, read_and_check).found, Credential)
    w.edit_secret(lambda s: s["data"].update(client_secret="eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"))
    found = upto(w, read_and_check).found
    assert isinstance(found, Untrusted)


def test_decide_value_issues_the_first_value(world):
    p = upto(world(SA), decide_value)
    assert p.change is Reason.ISSUED
    assert p.credential.state.revision == 1
    assert [e.reason for e in p.events] == ["Issued"]


def test_decide_value_keeps_a_value_that_is_not_due(world):
    w = world(SA)
    w.step()
    p = upto(w, decide_value)
    assert p.change is None
    assert p.credential.value == w.data()["client_secret"]
    assert p.events == ()


def test_decide_value_rotates_on_a_parameter_change(world):
    w = world(SA)
    w.step()
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    p = upto(w, decide_value)
    assert p.change is Reason.ROTATED
    assert p.credential.state.revision == 2


def test_decide_value_holds_a_rotation_while_the_previous_value_is_promised(world):
    w = world(OVERLAP)
    w.step()
    w.request_rotation("r1")
    w.step()
    w.annotate(ROTATE_ANNOTATION, "r2")
    p = upto(w, decide_value)
    assert p.change is None
    assert p.waiting is not None
    assert p.waiting.until == p.credential.state.previous_expires_at
    assert p.credential.state.revision == 2


def test_bound_revision_passes_a_revision_the_secret_can_record(world):
    p = upto(world(SA), decide_value)
    assert bound_revision(p) is p


def test_bound_revision_stalls_past_the_last_revision(world):
    p = upto(world(SA), decide_value)
    state = replace(p.credential.state, revision=MAX_REVISION + 1)
    decision = bound_revision(replace(p, credential_=replace(p.credential, state=state)))
    assert isinstance(decision, Decision)
    assert reason_of(decision) == Reason.REVISION_EXHAUSTED
    assert decision.secret is None


# ---- settle, follow_consumers, retire_previous, hash_verifiers ---------------------------


def test_settle_issues_extras_with_the_credential(world):
    w = world({**SA, "extraSecrets": [{"key": "cookie", "length": 32}]})
    p = upto(w, settle)
    assert set(p.extras.current) == {"cookie"}


def test_follow_consumers_without_consumers_plans_nothing(world):
    w = world(SA)
    w.step()
    p = upto(w, follow_consumers)
    assert p.followers is None
    assert p.had_previous is False


def test_follow_consumers_plans_when_the_spec_names_some(world):
    w = world({**SA, "consumers": [{"kind": "Deployment", "name": "web"}]})
    w.step()
    p = upto(
        w,
        follow_consumers,
        seen=ConsumersSeen(
            unread=(Unread(WorkloadKind.DEPLOYMENT, "web", None, 404, "not found"),)
        ),
    )
    assert p.followers is not None
    assert p.followers.rollouts == ()


def test_retire_previous_drops_a_previous_value_past_its_expiry(world):
    w = world(OVERLAP)
    w.step()
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    w.step(HOUR)
    assert upto(w, retire_previous).credential.previous is not None
    w.advance(HOUR)
    p = upto(w, retire_previous)
    assert p.credential.previous is None
    assert p.credential.state.previous_expires_at is None


def test_hash_verifiers_hashes_for_a_registry(world):
    spec = {"displayName": "x", "registry": {"name": "reg"}}
    p = upto(world(spec, rules=API_CLIENT), hash_verifiers)
    assert p.credential.state.hash is not None
    p = upto(world({"displayName": "x"}, rules=API_CLIENT), hash_verifiers)
    assert p.credential.state.hash is None


# ---- render, write_secret, conclude ----------------------------------------------------


def test_render_fills_the_data_and_templates(world):
    w = world({**SA, "secretTemplate": {"data": {"url": "https://{{ clientId }}@x"}}})
    p = upto(w, render)
    assert p.data["url"] == f"https://{p.credential.client_id}@x"
    assert p.data["client_secret"] == p.credential.value


def test_render_ends_the_pass_when_a_template_renders_too_much(world):
    big = "{{ clientId * 100000 }}"
    w = world({**SA, "secretTemplate": {"data": {"big": big}}})
    decision = render(upto(w, hash_verifiers))
    assert isinstance(decision, Decision)
    assert reason_of(decision) == Reason.INVALID_TEMPLATE


def test_write_secret_writes_only_what_differs(world):
    w = world(SA)
    assert upto(w, write_secret).write is True
    w.step()
    p = upto(w, write_secret)
    assert p.write is False
    assert p.manifest is not None


def test_conclude_reports_the_pass(world):
    w = world(SA)
    decision = conclude(upto(w, write_secret))
    assert reason_of(decision) == Reason.ISSUED
    assert decision.create is True
    assert decision.secret is not None
    assert reason_of(run(start(w), STAGES)) == reason_of(decision)
