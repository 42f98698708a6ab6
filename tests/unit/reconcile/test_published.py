"""A credential whose registry or JWK Set cannot be written is not Ready: no server can
check it there. (The runtime says which documents are blocked; this is the status.)"""

from __future__ import annotations

from credsmith.api.status import Reason
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.published import Unpublished, with_unpublished

SPEC = {"displayName": "A client", "registry": {"name": "reg"}}
CONFLICT = Unpublished(Reason.REGISTRY_CONFLICT, "Secret reg exists and is not managed")


def ready(status):
    return next(c for c in status["conditions"] if c["type"] == "Ready")


def test_a_blocked_document_makes_a_ready_member_not_ready_and_says_so_once(world):
    w = world(SPEC, rules=API_CLIENT)
    decision = w.converge()
    blocked = with_unpublished(w.snapshot(), decision, [CONFLICT], w.now)
    condition = ready(blocked.status)
    assert (condition["status"], condition["reason"]) == ("False", "RegistryConflict")
    assert condition["message"] == CONFLICT.message
    stalled = next(c for c in blocked.status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True"
    assert [e.reason for e in blocked.events] == ["RegistryConflict"]
    assert blocked.status["fingerprint"] == decision.status["fingerprint"]  # the rest stays
    w.status.clear()
    w.status.update(blocked.status)  # written: the next pass posts no second Event
    again = with_unpublished(w.snapshot(), w.step(), [CONFLICT], w.now)
    assert ready(again.status)["reason"] == "RegistryConflict"
    assert again.events == ()


def test_nothing_blocked_is_the_decision_itself_and_recovery_is_ready_again(world):
    w = world(SPEC, rules=API_CLIENT)
    decision = w.converge()
    assert with_unpublished(w.snapshot(), decision, [], w.now) is decision
    blocked = with_unpublished(w.snapshot(), decision, [CONFLICT], w.now)
    w.status.clear()
    w.status.update(blocked.status)
    recovered = w.step()  # the document was written: nothing blocked
    assert ready(recovered.status)["status"] == "True"
    assert not any(c["type"] == "Stalled" for c in recovered.status["conditions"])


def test_a_failure_of_its_own_is_left_as_it_is(world):
    w = world({**SPEC, "displayName": ""}, rules=API_CLIENT)  # invalid spec
    decision = w.step()
    assert ready(decision.status)["reason"] == "InvalidSpec"
    assert with_unpublished(w.snapshot(), decision, [CONFLICT], w.now) is decision
