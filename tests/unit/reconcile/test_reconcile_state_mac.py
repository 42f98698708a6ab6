"""Only the operator can make a credential (design.md, behaviour 13): the state it writes on
a Secret carries a MAC under its key, and a state is believed only when that MAC verifies or,
without it (a lost key, a Secret written before the MAC existed), when status agrees with
every fingerprint, the revision and the timestamps. Anything else is re-issued with a
Warning Untrusted, or, for a Secret made before its owner, is a SecretConflict."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from credsmith.issuing.fingerprint import fingerprint
from credsmith.reconcile.credential import checked_credential
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.registry import registry_entry
from credsmith.reconcile.secret_state import (
    EXTRA_SECRETS,
    ISSUED_AT,
    PREVIOUS_EXPIRES_AT,
    PREVIOUS_FINGERPRINT,
    REVISION,
    ROTATE_REQUEST,
    ROTATED_AT,
    STATE_MAC,
    StateScope,
    is_sealed,
    sealed,
)
from credsmith.reconcile.state_mac import StateKey
from tests.state_key import OTHER_STATE_KEY, TEST_STATE_KEY

SA = {"serviceAccount": "billing-exporter"}
REGISTERED = {"displayName": "Reports", "registry": {"name": "reg"}, "roles": [{"id": "admin"}]}
CHOSEN = "Chosen0value0of0the0right0shape0AbCdEfGhIjKlMnOp"  # 48 alphanumeric
FAR = "2099-01-01T00:00:00Z"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def notes(w) -> dict[str, str]:
    return dict(w.secret["metadata"]["annotations"])


def scope_of(w) -> StateScope:
    return StateScope(w.rules.kind, "team-a", w.resource["metadata"]["name"], w.secret_name)


def edit(w, data=None, **annotations):
    def change(secret):
        secret["data"].update({k: b64(v) for k, v in (data or {}).items()})
        for key, value in annotations.items():
            if value is None:
                secret["metadata"]["annotations"].pop(key, None)
            else:
                secret["metadata"]["annotations"][key] = value

    w.edit_secret(change)


def untrusted(decision) -> list[str]:
    return [e.message for e in decision.events if (e.type, e.reason) == ("Warning", "Untrusted")]


# ---- the MAC itself -------------------------------------------------------------------


def test_the_state_written_is_sealed_for_its_owner_and_secret_only(world):
    w = world(SA)
    w.converge()
    found = notes(w)
    assert found[STATE_MAC].startswith("hmac-sha256:")
    assert is_sealed(found, TEST_STATE_KEY, scope_of(w))
    assert not is_sealed(found, OTHER_STATE_KEY, scope_of(w))
    here = scope_of(w)
    for other in (
        StateScope("ApiClient", here.namespace, here.name, here.secret_name),
        StateScope(here.kind, "team-b", here.name, here.secret_name),
        StateScope(here.kind, here.namespace, "other", here.secret_name),
        StateScope(here.kind, here.namespace, here.name, "other-secret"),
    ):
        assert not is_sealed(found, TEST_STATE_KEY, other), other


def test_the_mac_round_trips_and_ignores_annotations_that_are_not_state():
    scope = StateScope("ApiClient", "ns", "a", "a")
    made = sealed({REVISION: "3", ROTATED_AT: "2026-01-01T00:00:00Z"}, TEST_STATE_KEY, scope)
    assert is_sealed(made, TEST_STATE_KEY, scope)
    assert is_sealed({**made, "example.com/team": "x"}, TEST_STATE_KEY, scope)
    assert not is_sealed({k: v for k, v in made.items() if k != STATE_MAC}, TEST_STATE_KEY, scope)


def test_the_key_never_shows_in_its_repr():
    key = StateKey(b"k" * 32)
    assert "k" * 8 not in repr(key)
    assert "material" not in repr(key)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        StateKey(b"short")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (REVISION, "7"),
        (ROTATED_AT, FAR),
        (ISSUED_AT, "2020-01-01T00:00:00Z"),
        (PREVIOUS_FINGERPRINT, "sha256:0123456789abcdef"),
        (PREVIOUS_EXPIRES_AT, FAR),
        (ROTATE_REQUEST, "now"),
        (STATE_MAC, "hmac-sha256:" + "0" * 64),
    ],
)
def test_each_state_annotation_is_covered(world, key, value):
    w = world(SA)
    w.converge()
    found = notes(w)
    found[key] = value
    assert not is_sealed(found, TEST_STATE_KEY, scope_of(w))


def test_an_extra_secrets_fingerprint_is_covered(world):
    w = world({**SA, "extraSecrets": [{"key": "cookie"}]})
    w.converge()
    found = notes(w)
    extras = json.loads(found[EXTRA_SECRETS])
    extras["cookie"]["fingerprint"] = fingerprint(CHOSEN)
    found[EXTRA_SECRETS] = json.dumps(extras, sort_keys=True, separators=(",", ":"))
    assert not is_sealed(found, TEST_STATE_KEY, scope_of(w))


# ---- planted state, through reconcile() ------------------------------------------------


def test_a_planted_previous_value_is_never_believed(world):
    w = world(REGISTERED, rules=API_CLIENT)
    w.converge()
    before = w.data()["client_secret"]
    edit(
        w,
        {"client_secret_previous": CHOSEN},
        **{PREVIOUS_FINGERPRINT: fingerprint(CHOSEN), PREVIOUS_EXPIRES_AT: FAR},
    )
    # The registry never lists it, not even before the operator's next pass.
    assert (
        checked_credential(
            API_CLIENT, w.snapshot(), w.secret_snapshot(), w.now, state_key=TEST_STATE_KEY
        )
        is None
    )
    assert registry_entry(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY) is None
    decision = w.step()
    assert w.status["revision"] == 2  # re-issued: the old value is as suspect as the planted
    assert w.data()["client_secret"] != before
    assert "client_secret_previous" not in w.data()
    (message,) = untrusted(decision)
    assert "previous-expires-at" in message
    assert CHOSEN not in message
    entry = registry_entry(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY)
    assert entry is not None
    assert "previousSecret" not in entry
    w.converge()


def test_a_planted_extra_secret_is_never_adopted(world):
    w = world({**SA, "extraSecrets": [{"key": "cookie"}]})
    w.converge()
    extras = json.loads(notes(w)[EXTRA_SECRETS])
    extras["cookie"]["fingerprint"] = fingerprint(CHOSEN)
    edit(
        w,
        {"cookie": CHOSEN},
        **{EXTRA_SECRETS: json.dumps(extras, sort_keys=True, separators=(",", ":"))},
    )
    decision = w.step()
    assert w.data()["cookie"] != CHOSEN
    assert [e["fingerprint"] for e in w.status["extraSecrets"]] != [fingerprint(CHOSEN)]
    (message,) = untrusted(decision)
    assert "extra-secrets" in message
    w.converge()


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        (ROTATED_AT, FAR, "rotated-at"),
        (REVISION, "2147483647", "revision"),
        (ISSUED_AT, "2020-01-01T00:00:00Z", "issued-at"),
    ],
)
def test_an_edited_revision_or_timestamp_is_not_believed(world, key, value, named):
    w = world({**SA, "rotation": {"period": "720h", "overlap": "1h"}})
    w.converge()
    edit(w, **{key: value})
    decision = w.step()
    # Re-issued as revision 2: the planted revision is not what the next one follows.
    assert w.status["revision"] == 2
    assert notes(w)[REVISION] == "2"
    (message,) = untrusted(decision)
    assert named in message
    assert value not in message
    assert w.converge().secret is None


def test_a_secret_made_before_its_owner_is_a_conflict(world):
    w = world(REGISTERED, rules=API_CLIENT)
    w.store_secret(
        {
            "metadata": {
                "name": w.secret_name,
                "labels": {"app.kubernetes.io/managed-by": "credsmith"},
                "annotations": {
                    "credsmith.io/owner": f"ApiClient/{w.resource['metadata']['name']}"
                },
            },
            "data": {"client_id": b64("planted-id"), "client_secret": b64(CHOSEN)},
        }
    )
    planted = dict(w.secret["data"])
    decision = w.step()
    assert w.condition()["reason"] == "SecretConflict"
    assert decision.secret is None
    assert w.secret["data"] == planted
    assert registry_entry(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY) is None
    w.delete_secret()
    w.step()
    assert w.condition()["reason"] == "Issued"
    assert w.data()["client_id"] != "planted-id"


def test_a_secret_made_for_an_earlier_resource_of_the_same_name_is_adopted(world):
    w = world({**SA, "deletionPolicy": "Orphan"})
    w.converge()
    kept = w.data()
    # A GitOps delete and re-create: another UID, no status.
    w.resource["metadata"]["uid"] = "00000000-0000-4000-8000-000000000999"
    w.lose_status()
    w.step()
    assert w.condition()["status"] == "True"
    assert w.data() == kept
    assert w.status["revision"] == 1


# ---- a lost key: status is the second anchor -------------------------------------------


def test_with_the_key_lost_a_state_status_agrees_with_is_believed_with_no_write(world):
    w = world(REGISTERED, rules=API_CLIENT)
    w.converge()
    kept, writes = w.data(), w.secret_writes
    w.state_key = OTHER_STATE_KEY  # the key Secret was deleted: a new key
    decision = w.converge()
    assert w.secret_writes == writes
    assert decision.events == ()
    assert w.data() == kept
    assert registry_entry(w.snapshot(), w.secret_snapshot(), w.now, OTHER_STATE_KEY)
    # The next write for another reason authenticates it under the new key.
    w.edit_spec(lambda s: s.update(displayName="Renamed"))
    w.edit_spec(lambda s: s.setdefault("secretTemplate", {}).update(labels={"team": "b"}))
    w.converge()
    assert w.secret_writes == writes + 1
    assert w.data() == kept
    assert is_sealed(notes(w), OTHER_STATE_KEY, scope_of(w))


def test_with_the_key_lost_a_state_status_disagrees_with_is_reissued(world):
    w = world(SA)
    w.converge()
    w.state_key = OTHER_STATE_KEY
    edit(w, **{ROTATED_AT: FAR})
    decision = w.step()
    assert w.status["revision"] == 2
    (message,) = untrusted(decision)
    assert "rotated-at" in message


def test_a_lost_key_during_an_overlap_keeps_the_previous_value_until_its_promise(world):
    w = world({**SA, "rotation": {"overlap": "1h"}})
    w.converge()
    w.annotate("credsmith.io/rotate", "now")
    w.converge()
    assert "client_secret_previous" in w.data()
    writes = w.secret_writes
    w.state_key = OTHER_STATE_KEY
    w.converge()
    assert w.secret_writes == writes
    assert "client_secret_previous" in w.data()
    w.step(timedelta(hours=1, seconds=1))
    assert "client_secret_previous" not in w.data()


# ---- Secrets from before the MAC ------------------------------------------------------


def test_a_version_2_secret_without_a_mac_is_adopted_with_no_write(world):
    w = world(REGISTERED, rules=API_CLIENT)
    w.converge()
    edit(w, **{STATE_MAC: None})  # as today's main wrote it
    writes = w.secret_writes
    decision = w.converge()
    assert w.secret_writes == writes
    assert decision.events == ()
    assert registry_entry(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY)
    w.edit_spec(lambda s: s.setdefault("secretTemplate", {}).update(labels={"team": "b"}))
    w.converge()
    assert is_sealed(notes(w), TEST_STATE_KEY, scope_of(w))


def test_a_version_2_secret_without_a_mac_and_a_planted_previous_is_reissued(world):
    w = world(SA)
    w.converge()
    edit(
        w,
        {"client_secret_previous": CHOSEN},
        **{
            STATE_MAC: None,
            PREVIOUS_FINGERPRINT: fingerprint(CHOSEN),
            PREVIOUS_EXPIRES_AT: FAR,
        },
    )
    decision = w.step()
    assert w.status["revision"] == 2
    assert "client_secret_previous" not in w.data()
    assert untrusted(decision)


def test_a_version_2_secret_without_a_mac_and_no_status_is_a_conflict(world):
    w = world(SA, rules=SERVICE_ACCOUNT_CREDENTIAL)
    w.converge()
    edit(w, **{STATE_MAC: None})
    w.lose_status()
    decision = w.step()
    assert w.condition()["reason"] == "SecretConflict"
    assert decision.secret is None
