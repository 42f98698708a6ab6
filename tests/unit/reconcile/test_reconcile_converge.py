"""Convergence (idle is free) and crash safety (the Secret is the source of truth)."""

import copy
from datetime import timedelta

import pytest

from credsmith.api.status import format_timestamp
from credsmith.issuing.fingerprint import fingerprint
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL

SA = {"serviceAccount": "billing-exporter"}
VALUE_KEY = {"ClientSecret": "client_secret", "APIKey": "api_key", "BasicAuth": "password"}
VALUE_KEY["KeyPair"] = "private_key.pem"
ID_KEY = {"ClientSecret": "client_id", "APIKey": "key_id", "BasicAuth": "username"}
ID_KEY["KeyPair"] = "client_id"
TEMPLATE = {
    "labels": {"team": "billing"},
    "annotations": {"example.com/note": "managed"},
    "data": {"url": "https://{{ clientId }}:{{ clientSecret | urlquote }}@api"},
}

# Each kind and type, with a template and rotation settings, so that every part of the
# desired Secret and status is compared on the idle pass.
CASES = {
    **{
        type_: (SERVICE_ACCOUNT_CREDENTIAL, {**SA, "type": type_, "secretTemplate": TEMPLATE})
        for type_ in ("ClientSecret", "APIKey", "BasicAuth", "KeyPair")
    },
    "ApiClient": (
        API_CLIENT,
        {"displayName": "Reporting", "roles": [{"id": "r"}], "secretTemplate": TEMPLATE},
    ),
    "rotation": (SERVICE_ACCOUNT_CREDENTIAL, {**SA, "rotation": {"period": "2h", "overlap": "1h"}}),
    "orphan": (SERVICE_ACCOUNT_CREDENTIAL, {**SA, "deletionPolicy": "Orphan"}),
}


def type_of(w):
    return "ClientSecret" if w.rules is API_CLIENT else w.spec.get("type", "ClientSecret")


@pytest.mark.parametrize("case", CASES)
def test_second_pass_is_idle(world, case):
    rules, spec = CASES[case]
    w = world(spec, rules=rules)
    w.step()
    status, secret = copy.deepcopy(w.status), copy.deepcopy(w.secret)

    for delay in (timedelta(0), timedelta(seconds=1), timedelta(minutes=30)):
        decision = w.step(delay)
        assert decision.secret is None
        assert decision.status == status
        assert decision.events == ()
        assert decision.summary == ""
    assert (w.secret_writes, w.status_writes) == (1, 1)
    assert w.secret == secret


def test_idle_pass_keeps_the_wake_up(world):
    w = world({**SA, "rotation": {"period": "2h"}})
    first = w.step()
    assert first.requeue_at is not None
    assert format_timestamp(first.requeue_at) == w.status["nextRotationAt"]
    idle = w.step(timedelta(minutes=10))
    assert idle.secret is None
    # Timestamps are stored to the second: the wake-up may only move earlier, never later.
    assert first.requeue_at - timedelta(seconds=1) < idle.requeue_at <= first.requeue_at
    assert format_timestamp(idle.requeue_at) == w.status["nextRotationAt"]


def test_no_wake_up_without_rotation(world):
    w = world(SA)
    assert w.step().requeue_at is None
    assert w.step().requeue_at is None


@pytest.mark.parametrize("case", CASES)
def test_crash_before_status_adopts_the_secret(world, case):
    rules, spec = CASES[case]
    w = world(spec, rules=rules)
    w.step()
    written, status = copy.deepcopy(w.secret), copy.deepcopy(w.status)
    w.lose_status()

    decision = w.step(timedelta(seconds=5))
    assert decision.secret is None, "adopting must not write the Secret"
    assert w.secret == written
    assert decision.events == ()
    data = w.data()
    type_ = type_of(w)
    assert w.status["clientId"] == data[ID_KEY[type_]] == status["clientId"]
    assert w.status["fingerprint"] == fingerprint(data[VALUE_KEY[type_]])
    assert w.status["revision"] == 1
    assert w.status["issuedAt"] == status["issuedAt"]
    assert w.status["rotatedAt"] == status["rotatedAt"]
    assert w.condition()["status"] == "True"
    assert w.condition()["reason"] == "Issued"
    if rules is API_CLIENT:
        assert w.status["id"] == status["id"]
    if type_ == "KeyPair":
        assert w.status["keyId"] == data["key_id"] == status["keyId"]
    # Apart from when Ready last changed, the adopted status is the lost one.
    strip = lambda s: {k: v for k, v in s.items() if k != "conditions"}  # noqa: E731
    assert strip(w.status) == strip(status)
    w.converge()


def test_crash_before_status_of_a_rotation(world):
    """The rotation is in the Secret; status still shows revision 1: no second rotation."""
    w = world({**SA, "rotation": {"overlap": "1h"}})
    w.step()
    before = copy.deepcopy(w.status)
    w.request_rotation("2025-03-01")
    w.step()
    rotated = copy.deepcopy(w.secret)
    w.resource["status"] = before  # the status write was lost

    decision = w.step(timedelta(seconds=3))
    assert decision.secret is None
    assert w.secret == rotated
    assert w.status["revision"] == 2
    assert w.status["fingerprint"] == fingerprint(w.data()["client_secret"])
    assert w.status["lastRotateRequest"] == "2025-03-01"
    assert "previousExpiresAt" in w.status
    assert w.condition()["status"] == "True"
    assert w.condition()["reason"] == "Rotated"
    assert w.condition()["message"].startswith("Rotated to revision 2")
    assert sum(e.reason == "Rotated" for e in w.events) == 1


def test_crash_before_status_of_a_reissue(world):
    w = world(SA)
    w.step()
    before = copy.deepcopy(w.status)
    w.delete_secret()
    w.step()
    reissued = copy.deepcopy(w.secret)
    w.resource["status"] = before

    decision = w.step()
    assert decision.secret is None
    assert w.secret == reissued
    assert w.status["revision"] == 2
    assert w.status["clientId"] == before["clientId"]


def test_status_lost_and_secret_lost_with_a_given_client_id(world):
    """clientId.value is stable across everything, even a fresh start."""
    w = world({**SA, "clientId": {"value": "billing@example.com"}})
    w.step()
    w.lose_status()
    w.delete_secret()
    w.step()
    assert w.data()["client_id"] == "billing@example.com"
    assert w.status["clientId"] == "billing@example.com"


def test_recreated_resource_adopts_its_orphaned_secret(world):
    """Orphan: delete the resource, the Secret survives; a new resource of the same name (new
    uid, empty status) takes it over with the same credential."""
    spec = {**SA, "deletionPolicy": "Orphan"}
    old = world(spec)
    old.step()
    new = world(spec)
    new.resource["metadata"]["uid"] = "00000000-0000-4000-8000-000000000001"
    new.secrets = copy.deepcopy(old.secrets)
    decision = new.step()
    assert decision.secret is None
    assert new.status["clientId"] == old.status["clientId"]
    assert new.status["fingerprint"] == old.status["fingerprint"]
    assert new.condition()["status"] == "True"


def test_recreated_resource_takes_ownership_with_the_same_value(world):
    """Delete: a Secret still present (garbage collection pending) is adopted, and the owner
    reference moved to the new uid, without a new value."""
    old = world(SA)
    old.step()
    new = world(SA)
    new.resource["metadata"]["uid"] = "00000000-0000-4000-8000-000000000002"
    new.secrets = copy.deepcopy(old.secrets)
    decision = new.step()
    assert decision.secret is not None
    assert decision.create is False
    assert new.secret["metadata"]["ownerReferences"][0]["uid"] == new.uid
    assert new.data() == old.data()
    assert new.status["revision"] == 1
    new.converge()


def test_foreign_metadata_on_our_secret_never_changes_the_value(world):
    w = world(SA)
    w.step()
    data = w.data()
    w.edit_secret(lambda s: s["metadata"]["labels"].update(extra="yes"))
    w.edit_secret(lambda s: s["metadata"]["annotations"].update({"example.com/x": "y"}))
    w.converge()
    assert w.data() == data
    assert w.status["revision"] == 1
    assert [e.reason for e in w.events] == ["Issued"]


def test_extra_data_key_is_removed_without_a_new_value(world):
    w = world(SA)
    w.step()
    data = w.data()
    w.edit_secret(lambda s: s["data"].update(extra="eHh4"))
    decision = w.step()
    assert decision.secret is not None
    assert w.data() == data
    assert decision.events == ()


def test_lost_annotations_do_not_change_the_value(world):
    """Someone removes our bookkeeping annotations: the credential stays, and they return."""
    w = world({**SA, "rotation": {"period": "2h"}})
    w.step()
    data, status = w.data(), copy.deepcopy(w.status)

    def drop(secret):
        secret["metadata"]["annotations"] = {
            k: v for k, v in secret["metadata"]["annotations"].items() if k == "credsmith.io/owner"
        }

    w.edit_secret(drop)
    w.step()
    assert w.data() == data
    assert w.status["clientId"] == status["clientId"]
    assert w.status["fingerprint"] == status["fingerprint"]
    assert w.status["revision"] == 1
    w.converge()


def test_lost_annotations_and_status_are_a_conflict(world):
    """With neither its MAC nor status, nothing says the operator made that Secret: it is
    what a Secret planted before its owner looks like (behaviour 13), so it is not adopted
    and not changed."""
    w = world({**SA, "rotation": {"period": "2h"}})
    w.step()
    data = w.data()

    def drop(secret):
        secret["metadata"]["annotations"] = {
            "credsmith.io/owner": "ServiceAccountCredential/billing"
        }

    w.edit_secret(drop)
    w.lose_status()
    decision = w.step(timedelta(hours=1))
    assert w.data() == data
    assert decision.secret is None
    assert w.condition()["reason"] == "SecretConflict"


def test_lost_revision_annotation_reissues_with_a_warning(world):
    """Bookkeeping that cannot be read is not guessed at: the value it vouched for is
    replaced, and the revision still counts on from status."""
    w = world(SA)
    w.step()
    w.request_rotation("a")
    w.step()
    w.request_rotation("b")
    w.step()
    assert w.status["revision"] == 3
    value = w.data()["client_secret"]
    w.edit_secret(lambda s: s["metadata"]["annotations"].pop("credsmith.io/revision"))
    decision = w.step()
    assert w.status["revision"] == 4
    assert w.data()["client_secret"] != value
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "Reissued")]
    assert "credsmith.io/revision" in decision.events[0].message
    assert w.secret["metadata"]["annotations"]["credsmith.io/revision"] == "4"
    w.converge()


def test_lost_parameters_annotation_reissues_and_a_later_change_still_rotates(world):
    w = world(SA)
    w.step()
    value = w.data()["client_secret"]
    w.edit_secret(lambda s: s["metadata"]["annotations"].pop("credsmith.io/parameters"))
    w.converge()
    assert w.data()["client_secret"] != value  # its shape can no longer be vouched for
    assert w.status["revision"] == 2
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    w.step()
    assert w.status["revision"] == 3
    assert w.condition()["reason"] == "Rotated"


def test_api_client_id_survives_a_lost_annotation(world):
    w = world({"displayName": "Reporting"}, rules=API_CLIENT)
    w.step()
    client_uuid = w.status["id"]
    w.edit_secret(lambda s: s["metadata"]["annotations"].pop("credsmith.io/id"))
    w.converge()
    assert w.status["id"] == client_uuid
    assert w.secret["metadata"]["annotations"]["credsmith.io/id"] == client_uuid


def test_api_client_id_of_an_adopted_secret_without_one(world):
    """Status and the id annotation both gone (the id from a Secret an earlier operator
    authenticated without one): a new id, written down, then stable."""
    w = world({"displayName": "Reporting"}, rules=API_CLIENT)
    w.step()
    w.edit_secret_as_operator(lambda s: s["metadata"]["annotations"].pop("credsmith.io/id"))
    w.lose_status()
    w.converge()
    client_uuid = w.status["id"]
    assert w.secret["metadata"]["annotations"]["credsmith.io/id"] == client_uuid
    w.step()
    assert w.status["id"] == client_uuid


def test_template_cannot_override_our_label_and_annotations(world):
    template = {
        "labels": {"app.kubernetes.io/managed-by": "helm"},
        "annotations": {
            "credsmith.io/owner": "ServiceAccountCredential/other",
            "credsmith.io/revision": "99",
        },
    }
    w = world({**SA, "secretTemplate": template})
    w.step()
    meta = w.secret["metadata"]
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "credsmith"
    assert meta["annotations"]["credsmith.io/owner"] == "ServiceAccountCredential/billing"
    assert meta["annotations"]["credsmith.io/revision"] == "1"
    w.converge()
    assert w.condition()["status"] == "True"


@pytest.mark.parametrize(
    ("old_type", "new_type"),
    [("ClientSecret", "APIKey"), ("ClientSecret", "BasicAuth"), ("BasicAuth", "KeyPair")],
)
def test_recreated_with_another_type_over_an_orphaned_secret(world, old_type, new_type):
    """spec.type is immutable, but delete and recreate (Orphan) can meet the old Secret."""
    old = world({**SA, "type": old_type, "deletionPolicy": "Orphan"})
    old.step()
    new = world({**SA, "type": new_type, "deletionPolicy": "Orphan"})
    new.secrets = copy.deepcopy(old.secrets)
    decision = new.step()  # the harness fails any attempt to change a Secret's type (422)
    needed = "kubernetes.io/basic-auth" if new_type == "BasicAuth" else "Opaque"
    if old.secret["type"] == needed:
        # Same Secret type: the old keys are not the new type's, so it is re-issued in place.
        assert new.condition()["status"] == "True"
        assert set(new.data()) == {ID_KEY[new_type], VALUE_KEY[new_type]}
    else:
        assert new.condition()["status"] == "False"
        assert new.condition()["reason"] == "SecretConflict"
        assert f"has type {old.secret['type']}" in new.condition()["message"]
        assert new.secret == old.secret
        assert decision.requeue_at is not None
        new.delete_secret()
        new.step()
        assert new.secret["type"] == needed
        assert new.condition()["status"] == "True"
    new.converge()


def test_garbage_in_status_is_survived(world):
    """Status is ours, but may have been edited: it never makes reconcile fail."""
    w = world(SA)
    w.step()
    data = w.data()
    w.resource["status"] = {
        "revision": "many",
        "issuedAt": "yesterday",
        "rotatedAt": 5,
        "fingerprint": None,
        "conditions": [{"type": "Ready"}, "nonsense"],
    }
    w.converge()
    assert w.data() == data
    assert w.status["revision"] == 1
    assert w.condition()["status"] == "True"


def test_foreign_labels_and_annotations_are_kept_and_cause_no_write(world):
    w = world({**SA, "secretTemplate": {"labels": {"team": "a"}, "annotations": {"n": "1"}}})
    w.converge()
    w.edit_secret(lambda s: s["metadata"]["labels"].update(extra="yes"))
    w.edit_secret(lambda s: s["metadata"]["annotations"].update({"example.com/x": "y"}))
    assert w.step().secret is None  # nothing of ours changed: no write, no fight
    metadata = w.secret["metadata"]
    assert metadata["labels"]["extra"] == "yes"
    assert metadata["annotations"]["example.com/x"] == "y"

    # A template change rewrites the Secret, and still keeps the others' keys.
    w.edit_spec(lambda spec: spec["secretTemplate"].update(labels={"tier": "b"}, annotations={}))
    w.converge()
    metadata = w.secret["metadata"]
    assert "team" not in metadata["labels"]  # ours, removed from the template: gone
    assert "n" not in metadata["annotations"]
    assert metadata["labels"]["tier"] == "b"
    assert metadata["labels"]["extra"] == "yes"
    assert metadata["annotations"]["example.com/x"] == "y"


def test_template_annotations_cannot_pose_as_bookkeeping(world):
    w = world({**SA, "secretTemplate": {"annotations": {"credsmith.io/rotate-request": "x"}}})
    w.converge()
    w.request_rotation("x")
    w.converge()
    assert w.status["revision"] == 2  # the request was new: the template did not swallow it


def test_adopted_secret_of_another_client_id_rotates_to_the_spec_client_id(world):
    w = world({**SA, "clientId": {"value": "first-id"}, "deletionPolicy": "Orphan"})
    w.converge()
    old = w.data()
    w.edit_spec(lambda spec: spec.update(clientId={"value": "second-id"}))  # as if recreated
    w.converge()
    assert w.data()["client_id"] == "second-id"
    assert w.data()["client_secret"] != old["client_secret"]
    assert w.status["clientId"] == "second-id"
