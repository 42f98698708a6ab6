"""A Secret that is not ours (SecretConflict), and a Secret that was lost (re-issue)."""

import base64
import copy
from datetime import timedelta

import pytest

from credsmith.api.status import format_timestamp
from credsmith.issuing.fingerprint import fingerprint
from credsmith.reconcile.credential import CONFLICT_RECHECK
from credsmith.reconcile.kinds import API_CLIENT

SA = {"serviceAccount": "billing-exporter"}
MANAGED = {"app.kubernetes.io/managed-by": "credsmith"}
OURS = {"credsmith.io/owner": "ServiceAccountCredential/billing"}

FOREIGN = {
    "plain": {},
    "someone else's label": {"labels": {"app.kubernetes.io/managed-by": "helm"}},
    "our label, no owner": {"labels": MANAGED},
    "owner, no label": {"annotations": OURS},
    "another resource": {
        "labels": MANAGED,
        "annotations": {"credsmith.io/owner": "ServiceAccountCredential/other"},
    },
    "another kind, same name": {
        "labels": MANAGED,
        "annotations": {"credsmith.io/owner": "ApiClient/billing"},
    },
}


def check_conflict(w, decision, foreign):
    assert decision.secret is None
    assert w.secret == foreign, "the foreign Secret was touched"
    ready, stalled = w.condition("Ready"), w.condition("Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "SecretConflict")
    assert (stalled["status"], stalled["reason"]) == ("True", "SecretConflict")
    assert w.secret_name in ready["message"]
    assert decision.requeue_at == w.now + CONFLICT_RECHECK


@pytest.mark.parametrize("metadata", FOREIGN.values(), ids=FOREIGN.keys())
def test_foreign_secret_is_a_conflict(world, metadata):
    w = world(SA)
    foreign = copy.deepcopy(w.foreign_secret(**copy.deepcopy(metadata)))

    decision = w.step()
    check_conflict(w, decision, foreign)
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "SecretConflict")]
    assert "clientId" not in w.status
    assert "revision" not in w.status

    # The same conflict again: no second Event, no status write; still polled.
    writes = w.status_writes
    again = w.step(timedelta(seconds=30))
    check_conflict(w, again, foreign)
    assert again.events == ()
    assert again.summary == ""
    assert w.status_writes == writes

    # The foreign Secret goes away: issued, Ready, not Stalled.
    w.delete_secret()
    recovered = w.step(timedelta(seconds=30))
    assert recovered.create is True
    assert [(e.type, e.reason) for e in recovered.events] == [("Normal", "Issued")]
    assert w.condition("Ready")["status"] == "True"
    assert w.condition("Ready")["reason"] == "Issued"
    assert w.condition("Stalled") is None
    assert w.status["revision"] == 1
    assert recovered.requeue_at is None
    w.converge()


def test_conflict_with_a_custom_secret_name(world):
    w = world({**SA, "secretName": "shared"})
    w.foreign_secret("shared")
    decision = w.step()
    assert "shared" in w.condition()["message"]
    assert decision.secret is None
    assert set(w.secrets) == {"shared"}


def test_other_secrets_of_the_namespace_do_not_matter(world):
    w = world(SA)
    w.foreign_secret("unrelated")
    w.step()
    assert w.condition()["status"] == "True"


def test_conflict_after_issue_keeps_the_client_id(world):
    """Our Secret is deleted and someone else's takes its name; when it goes, we re-issue."""
    w = world(SA)
    w.step()
    status = copy.deepcopy(w.status)
    w.delete_secret()
    foreign = copy.deepcopy(w.foreign_secret())
    decision = w.step()
    check_conflict(w, decision, foreign)
    assert w.status["clientId"] == status["clientId"]
    assert w.status["revision"] == 1

    w.delete_secret()
    w.step()
    assert w.status["revision"] == 2
    assert w.status["clientId"] == status["clientId"]
    assert w.condition()["reason"] == "Reissued"
    assert w.condition("Stalled") is None


def test_conflict_event_again_after_a_different_failure(world):
    w = world(SA)
    w.foreign_secret()
    w.step()
    w.edit_spec(lambda s: s.update(secret={"length": 16}))
    w.step()
    w.edit_spec(lambda s: s.pop("secret"))
    w.step()
    assert [e.reason for e in w.events] == ["SecretConflict", "InvalidSpec", "SecretConflict"]


def test_conflict_comes_before_template_errors(world):
    """Nothing of ours can be written there anyway: report the conflict."""
    w = world({**SA, "secretTemplate": {"data": {"x": "{{ nope"}}})
    w.foreign_secret()
    w.step()
    assert w.condition()["reason"] == "SecretConflict"


# ---- lost Secret ---------------------------------------------------------------------

VALUE_KEY = {"ClientSecret": "client_secret", "APIKey": "api_key", "BasicAuth": "password"}
VALUE_KEY["KeyPair"] = "private_key.pem"
ID_KEY = {"ClientSecret": "client_id", "APIKey": "key_id", "BasicAuth": "username"}
ID_KEY["KeyPair"] = "client_id"


def check_reissued(w, decision, before, old_value, create):
    type_ = w.spec.get("type", "ClientSecret")
    value = w.data()[VALUE_KEY[type_]]
    assert value != old_value
    assert decision.create is create
    assert w.data()[ID_KEY[type_]] == before["clientId"] == w.status["clientId"]
    assert w.status["revision"] == before["revision"] + 1
    assert w.status["fingerprint"] == fingerprint(value) != before["fingerprint"]
    assert w.status["issuedAt"] == before["issuedAt"]
    assert w.status["rotatedAt"] == format_timestamp(w.now)
    assert w.condition()["status"] == "True"
    assert w.condition()["reason"] == "Reissued"
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "Reissued")]
    assert w.secret_name in decision.events[0].message
    assert decision.summary


@pytest.mark.parametrize("type_", VALUE_KEY)
def test_deleted_secret_is_reissued(world, type_):
    w = world({**SA, "type": type_})
    w.step()
    before, old_value = copy.deepcopy(w.status), w.data()[VALUE_KEY[type_]]
    w.delete_secret()
    decision = w.step(timedelta(hours=1))
    check_reissued(w, decision, before, old_value, create=True)
    w.converge()
    assert w.condition()["reason"] == "Reissued"


STRIPPED = [
    ("ClientSecret", ["client_secret"]),
    ("ClientSecret", ["client_id"]),
    ("ClientSecret", ["client_id", "client_secret"]),
    ("APIKey", ["api_key"]),
    ("BasicAuth", ["password"]),
    ("BasicAuth", ["username"]),
    ("KeyPair", ["private_key.pem"]),
    ("KeyPair", ["client_id", "private_key.pem", "public_key.pem", "key_id", "public_jwk.json"]),
]


@pytest.mark.parametrize(("type_", "keys"), STRIPPED)
def test_stripped_secret_is_reissued(world, type_, keys):
    w = world({**SA, "type": type_})
    w.step()
    before, old_value = copy.deepcopy(w.status), w.data()[VALUE_KEY[type_]]
    w.remove_keys(*keys)
    decision = w.step(timedelta(minutes=5))
    check_reissued(w, decision, before, old_value, create=False)
    w.converge()


@pytest.mark.parametrize("garbage", [b"", b"\xff\xfe not utf-8", b"not a key"])
def test_unreadable_value_is_reissued(world, garbage):
    w = world({**SA, "type": "KeyPair"})
    w.step()
    before, old_value = copy.deepcopy(w.status), w.data()["private_key.pem"]
    encoded = base64.b64encode(garbage).decode()
    w.edit_secret(lambda s: s["data"].update({"private_key.pem": encoded}))
    decision = w.step()
    check_reissued(w, decision, before, old_value, create=False)


def test_stripped_derived_keys_are_restored_without_reissue(world):
    w = world({**SA, "type": "KeyPair"})
    w.step()
    data = w.data()
    w.remove_keys("public_key.pem", "key_id", "public_jwk.json")
    decision = w.step()
    assert decision.secret is not None
    assert decision.events == ()
    assert w.data() == data
    assert w.status["revision"] == 1


def test_stripped_template_key_is_restored_without_reissue(world):
    w = world({**SA, "secretTemplate": {"data": {"url": "https://{{ clientSecret }}@x"}}})
    w.step()
    data = w.data()
    w.remove_keys("url")
    decision = w.step()
    assert decision.events == ()
    assert w.data() == data


def test_reissue_counts_on_from_the_highest_revision(world):
    w = world(SA)
    w.step()
    for _ in range(3):
        w.delete_secret()
        w.step()
    assert w.status["revision"] == 4
    assert [e.reason for e in w.events] == ["Issued", "Reissued", "Reissued", "Reissued"]


def test_api_client_id_is_stable_across_reissue(world):
    w = world({"displayName": "Reporting"}, rules=API_CLIENT, real=True)
    w.step()
    before = copy.deepcopy(w.status)
    w.delete_secret()
    w.step()
    assert w.status["id"] == before["id"]
    assert w.status["clientId"] == before["clientId"]
    assert w.status["revision"] == 2
    w.remove_keys("client_secret")
    w.step()
    assert w.status["id"] == before["id"]
    assert w.status["revision"] == 3


def test_stripped_secret_after_lost_status_keeps_client_id_and_revision(world):
    """Two accidents at once: status lost (crash), then the value stripped from the Secret.
    The Secret still names the client and its revision: both survive."""
    w = world(SA)
    w.step()
    before = copy.deepcopy(w.status)
    w.lose_status()
    w.remove_keys("client_secret")
    w.step()
    assert w.status["clientId"] == before["clientId"] == w.data()["client_id"]
    assert w.status["revision"] == 2
    assert w.status["issuedAt"] == before["issuedAt"]


def test_stripped_api_client_after_lost_status_keeps_its_id(world):
    w = world({"displayName": "Reporting"}, rules=API_CLIENT)
    w.step()
    before = copy.deepcopy(w.status)
    w.lose_status()
    w.remove_keys("client_secret")
    w.step()
    assert w.status["id"] == before["id"]
    assert w.status["clientId"] == before["clientId"]


def test_a_lasting_conflict_is_looked_at_less_and_less_often(world):
    """A foreign Secret cannot be watched, so it is re-checked: at first after 30 s, then
    after half the time the conflict has lasted, at most every 5 minutes."""
    w = world(SA)
    w.foreign_secret()
    waits = []
    for _ in range(16):
        decision = w.step()
        assert decision.requeue_at is not None
        waits.append(decision.requeue_at - w.now)
        w.advance(decision.requeue_at - w.now)
    assert waits[0] == CONFLICT_RECHECK
    assert waits == sorted(waits)
    assert waits[-1] == timedelta(minutes=5)
    w.delete_secret()
    w.step()
    assert w.condition()["reason"] == "Issued"
