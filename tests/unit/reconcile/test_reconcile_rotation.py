"""Spec changes, the rotate annotation, scheduled rotation and the overlap."""

import copy
from datetime import timedelta

import pytest

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.api.status import format_timestamp, parse_timestamp
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.keypair import key_algorithm_of, key_pair_from_private_pem
from credsmith.reconcile.consumers import rotation_spread
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.policy import MAX_REMEMBERED_REQUEST

SA = {"serviceAccount": "billing-exporter"}
SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def rotated_once(w, decision, before, value_key="client_secret"):
    """The pass rotated: a new value, revision + 1, Ready Rotated, one Rotated Event."""
    assert decision.secret is not None
    assert decision.create is False
    assert w.data()[value_key] != before["value"]
    assert w.status["revision"] == before["revision"] + 1
    assert w.status["clientId"] == before["clientId"]
    assert w.status["issuedAt"] == before["issuedAt"]
    assert w.status["rotatedAt"] == format_timestamp(w.now)
    assert w.status["fingerprint"] == fingerprint(w.data()[value_key])
    assert w.condition()["status"] == "True"
    assert w.condition()["reason"] == "Rotated"
    assert [(e.type, e.reason) for e in decision.events] == [("Normal", "Rotated")]
    assert decision.summary


def snapshot(w, value_key="client_secret"):
    return {**copy.deepcopy(w.status), "value": w.data()[value_key]}


def no_change(w, decision, before, value_key="client_secret"):
    assert w.data()[value_key] == before["value"]
    assert w.status["revision"] == before["revision"]
    assert decision.events == ()


# ---- spec changes ---------------------------------------------------------------------

TEMPLATE_CHANGES = {
    "add data": lambda s: s.update(secretTemplate={"data": {"url": "https://{{ clientId }}@x"}}),
    "add label": lambda s: s.update(secretTemplate={"labels": {"team": "billing"}}),
    "add annotation": lambda s: s.update(secretTemplate={"annotations": {"a.io/b": "c"}}),
}


@pytest.mark.parametrize("change", TEMPLATE_CHANGES.values(), ids=TEMPLATE_CHANGES.keys())
def test_template_change_rewrites_without_a_new_value(world, change):
    w = world(SA)
    w.step()
    before = snapshot(w)
    w.edit_spec(change)
    decision = w.step(HOUR)
    assert decision.secret is not None
    assert decision.create is False
    no_change(w, decision, before)
    assert w.status["fingerprint"] == before["fingerprint"]
    assert w.status["rotatedAt"] == before["rotatedAt"]
    assert w.condition()["reason"] == "Issued"
    assert w.status["observedGeneration"] == 2
    w.converge()


def test_template_removal_removes_keys_labels_and_annotations(world):
    template = {
        "data": {"url": "https://{{ clientId }}@x"},
        "labels": {"team": "billing"},
        "annotations": {"a.io/b": "c"},
    }
    w = world({**SA, "secretTemplate": template})
    w.step()
    before = snapshot(w)
    w.edit_spec(lambda s: s.pop("secretTemplate"))
    decision = w.step()
    no_change(w, decision, before)
    assert set(w.data()) == {"client_id", "client_secret"}
    assert "team" not in w.secret["metadata"]["labels"]
    assert "a.io/b" not in w.secret["metadata"]["annotations"]


GENERATION_CHANGES = {
    "length": ({}, lambda s: s.update(secret={"length": 64})),
    "alphabet": ({}, lambda s: s.update(secret={"length": 48, "alphabet": "URLSafe"})),
    "prefix": ({}, lambda s: s.update(secret={"prefix": "sk_"})),
    "checksum": ({}, lambda s: s.update(secret={"checksum": True})),
    "length (APIKey)": ({"type": "APIKey"}, lambda s: s.update(secret={"length": 40})),
    "alphabet (BasicAuth)": (
        {"type": "BasicAuth"},
        lambda s: s.update(secret={"length": 40, "alphabet": "Hex"}),
    ),
}


@pytest.mark.parametrize("case", GENERATION_CHANGES)
def test_generation_parameter_change_rotates(world, case):
    extra, change = GENERATION_CHANGES[case]
    value_key = {"APIKey": "api_key", "BasicAuth": "password"}.get(extra.get("type", ""))
    value_key = value_key or "client_secret"
    w = world({**SA, **extra}, real=True)
    w.step()
    before = snapshot(w, value_key)
    w.edit_spec(change)
    decision = w.step(HOUR)
    rotated_once(w, decision, before, value_key)
    assert "generation parameters changed" in decision.events[0].message
    assert w.status["parameters"] != before["parameters"]
    value = w.data()[value_key]
    parameters = w.status["parameters"]
    assert len(value) >= parameters["secretLength"]
    if parameters.get("secretPrefix"):
        assert value.startswith(parameters["secretPrefix"])
    w.converge()
    assert w.status["revision"] == 2


def test_key_algorithm_change_rotates_the_key_pair(world):
    w = world({**SA, "type": "KeyPair"})
    w.step()
    before = snapshot(w, "private_key.pem")
    w.edit_spec(lambda s: s.update(keyPair={"algorithm": "ECDSA-P256"}))
    decision = w.step()
    rotated_once(w, decision, before, "private_key.pem")
    data = w.data()
    assert key_algorithm_of(data["private_key.pem"]).value == "ECDSA-P256"
    assert w.status["keyId"] == data["key_id"] != before["keyId"]
    assert w.status["parameters"]["keyAlgorithm"] == "ECDSA-P256"
    # Writing the default out explicitly is no change.
    w.edit_spec(lambda s: s.update(keyPair={"algorithm": "ECDSA-P256"}))
    assert w.step().events == ()


NON_GENERATION_CHANGES = {
    "title": lambda s: s.update(title="Billing"),
    "description": lambda s: s.update(description="Reads invoices."),
    "serviceAccount": lambda s: s.update(serviceAccount="someone-else"),
    "rotation.period": lambda s: s.update(rotation={"period": "720h"}),
    "rotation.overlap": lambda s: s.update(rotation={"overlap": "1h"}),
    "deletionPolicy": lambda s: s.update(deletionPolicy="Orphan"),
    "default written out": lambda s: s.update(secret={"length": 48, "alphabet": "Alphanumeric"}),
}


@pytest.mark.parametrize("change", NON_GENERATION_CHANGES.values(), ids=NON_GENERATION_CHANGES)
def test_other_spec_changes_do_not_rotate(world, change):
    w = world(SA)
    w.step()
    before = snapshot(w)
    w.edit_spec(change)
    decision = w.step(HOUR)
    no_change(w, decision, before)
    assert w.status["observedGeneration"] == 2


def test_api_client_roles_change_only_the_status_generation(world):
    w = world({"displayName": "Reporting", "roles": [{"id": "a"}]}, rules=API_CLIENT)
    w.step()
    before, secret = snapshot(w), copy.deepcopy(w.secret)
    w.edit_spec(lambda s: s.update(roles=[{"id": "a"}, {"id": "b", "name": "B"}]))
    w.edit_spec(lambda s: s.update(displayName="Reporting dashboard"))
    decision = w.step()
    assert decision.secret is None
    assert w.secret == secret
    no_change(w, decision, before)
    assert w.status["observedGeneration"] == 3


# ---- the rotate annotation ------------------------------------------------------------


def test_rotate_annotation_rotates_once_per_value(world):
    w = world(SA)
    w.step()
    before = snapshot(w)

    w.request_rotation("2025-03-02")
    decision = w.step()
    rotated_once(w, decision, before)
    assert ROTATE_ANNOTATION in decision.events[0].message
    assert w.status["lastRotateRequest"] == "2025-03-02"
    assert w.status["observedGeneration"] == 1  # an annotation is no new generation

    before = snapshot(w)
    for delay in (timedelta(0), HOUR, 24 * HOUR):
        no_change(w, w.step(delay), before)

    w.request_rotation("2025-03-03")
    rotated_once(w, w.step(), before)
    assert w.status["revision"] == 3
    assert w.status["lastRotateRequest"] == "2025-03-03"

    # Removing the annotation, and putting the same value back, rotate nothing.
    before = snapshot(w)
    w.request_rotation(None)
    no_change(w, w.step(), before)
    assert w.status["lastRotateRequest"] == "2025-03-03"
    w.request_rotation("2025-03-03")
    no_change(w, w.step(), before)
    assert [e.reason for e in w.events] == ["Issued", "Rotated", "Rotated"]


def test_rotate_annotation_present_at_creation_does_not_rotate(world):
    w = world(SA, annotations={ROTATE_ANNOTATION: "initial"})
    w.step()
    w.converge()
    assert w.status["revision"] == 1
    assert w.status["lastRotateRequest"] == "initial"
    assert [e.reason for e in w.events] == ["Issued"]


def test_empty_rotate_annotation_is_no_request(world):
    w = world(SA)
    w.step()
    before = snapshot(w)
    w.request_rotation("")
    no_change(w, w.step(), before)
    assert "lastRotateRequest" not in w.status


def test_long_rotate_annotation_is_remembered_by_digest(world):
    long = "x" * (MAX_REMEMBERED_REQUEST + 1)
    w = world(SA)
    w.step()
    before = snapshot(w)
    w.request_rotation(long)
    rotated_once(w, w.step(), before)
    assert w.status["lastRotateRequest"] == fingerprint(long)
    assert w.secret["metadata"]["annotations"]["credsmith.io/rotate-request"] == fingerprint(long)
    before = snapshot(w)
    no_change(w, w.step(), before)
    w.request_rotation(long + "y")
    rotated_once(w, w.step(), before)


def test_rotate_request_and_spec_change_together_rotate_once(world):
    w = world(SA)
    w.step()
    before = snapshot(w)
    w.request_rotation("now")
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    rotated_once(w, w.step(), before)
    w.converge()
    assert w.status["revision"] == 2


# ---- overlap --------------------------------------------------------------------------

PREVIOUS_KEYS = {
    "ClientSecret": ("client_secret", {"client_secret_previous"}),
    "APIKey": ("api_key", {"api_key_previous"}),
    "BasicAuth": ("password", {"password_previous"}),
    "KeyPair": (
        "private_key.pem",
        {
            "private_key_previous.pem",
            "key_id_previous",
            "public_key_previous.pem",
            "public_jwk_previous.json",
        },
    ),
}


@pytest.mark.parametrize("type_", PREVIOUS_KEYS)
def test_overlap_keeps_the_previous_value_until_it_expires(world, type_):
    value_key, previous_keys = PREVIOUS_KEYS[type_]
    w = world({**SA, "type": type_, "rotation": {"overlap": "1h"}})
    w.step()
    keys = set(w.data())
    old = w.data()
    before = snapshot(w, value_key)

    w.request_rotation("r1")
    decision = w.step()
    rotated_once(w, decision, before, value_key)
    data = w.data()
    assert set(data) == keys | previous_keys
    if type_ != "KeyPair":
        assert data[f"{value_key}_previous"] == old[value_key]
    else:
        assert data["private_key_previous.pem"] == old["private_key.pem"]
        assert data["key_id_previous"] == old["key_id"]
        assert data["public_key_previous.pem"] == old["public_key.pem"]
        assert data["public_jwk_previous.json"] == old["public_jwk.json"]
        assert key_pair_from_private_pem(data["private_key.pem"]).key_id == data["key_id"]
    expires = w.now + HOUR
    assert w.status["previousExpiresAt"] == format_timestamp(expires)
    assert decision.requeue_at == expires
    assert "nextRotationAt" not in w.status

    # Half-way: nothing changes, the wake-up stays.
    half = w.step(HOUR / 2)
    assert half.secret is None
    assert half.requeue_at is not None
    assert abs(half.requeue_at - expires) < timedelta(seconds=1)

    # Expired: the previous keys go, without a new value or an Event.
    rotated = snapshot(w, value_key)
    gone = w.step(HOUR / 2)
    assert gone.secret is not None
    assert set(w.data()) == keys
    assert "previousExpiresAt" not in w.status
    no_change(w, gone, rotated, value_key)
    assert w.condition()["reason"] == "Rotated"
    assert gone.requeue_at is None
    w.converge()


def test_no_overlap_no_previous_keys(world):
    w = world(SA)
    w.step()
    w.request_rotation("r1")
    decision = w.step()
    assert set(w.data()) == {"client_id", "client_secret"}
    assert "previousExpiresAt" not in w.status
    assert decision.requeue_at is None


def test_template_sees_the_previous_value_during_the_overlap(world):
    template = {"data": {"both": "{{ clientSecret }} {{ clientSecretPrevious }}"}}
    w = world({**SA, "rotation": {"overlap": "1h"}, "secretTemplate": template})
    w.step()
    old = w.data()["client_secret"]
    assert w.data()["both"] == f"{old} "
    w.request_rotation("r1")
    w.step()
    new = w.data()["client_secret"]
    assert w.data()["both"] == f"{new} {old}"
    w.step(HOUR)
    assert w.data()["both"] == f"{new} "


def test_second_rotation_during_overlap_waits_for_the_first_promise(world):
    w = world({**SA, "rotation": {"overlap": "1h"}})
    w.step()
    first = w.data()["client_secret"]
    w.request_rotation("r1")
    w.step()
    middle = w.data()["client_secret"]
    promised = w.status["previousExpiresAt"]
    w.request_rotation("r2")
    w.step(HOUR / 4)
    assert w.data()["client_secret_previous"] == first
    assert w.status["previousExpiresAt"] == promised
    assert w.status["revision"] == 2
    w.now = parse_timestamp(promised)
    w.step()
    assert w.data()["client_secret_previous"] == middle
    assert w.status["previousExpiresAt"] == format_timestamp(w.now + HOUR)
    assert w.status["revision"] == 3


def test_previous_value_stripped_during_overlap(world):
    w = world({**SA, "rotation": {"overlap": "1h"}})
    w.step()
    w.request_rotation("r1")
    w.step()
    before = snapshot(w)
    w.remove_keys("client_secret_previous")
    decision = w.step()
    no_change(w, decision, before)
    assert "client_secret_previous" not in w.data()
    assert "previousExpiresAt" not in w.status
    w.converge()


def test_unreadable_previous_key_is_dropped(world):
    w = world({**SA, "type": "KeyPair", "rotation": {"overlap": "1h"}})
    w.step()
    w.request_rotation("r1")
    w.step()
    before = snapshot(w, "private_key.pem")
    w.edit_secret(lambda s: s["data"].update({"private_key_previous.pem": "Z2FyYmFnZQ=="}))
    decision = w.step()
    assert w.data()["private_key.pem"] == before["value"]
    assert w.status["revision"] == before["revision"]
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "Untrusted")]
    assert "private_key_previous.pem" in decision.events[0].message
    assert not any(key.startswith(("private_key_previous", "key_id_previous")) for key in w.data())
    w.converge()


# ---- scheduled rotation ---------------------------------------------------------------


def test_period_rotates_when_due(world):
    w = world({**SA, "rotation": {"period": "2h"}})
    first = w.step()
    # Due a period after the rotation, and the resource's spread (issue 24).
    spread = rotation_spread(w.uid, 2 * HOUR)
    assert timedelta(0) <= spread <= 2 * HOUR / 10
    due = parse_timestamp(w.status["nextRotationAt"])
    assert abs(due - (parse_timestamp(w.status["rotatedAt"]) + 2 * HOUR + spread)) < SECOND
    assert first.requeue_at is not None
    assert abs(first.requeue_at - due) < timedelta(seconds=1)

    before = snapshot(w)
    no_change(w, w.step(HOUR + 59 * timedelta(minutes=1)), before)

    # The wake-up comes at requeue_at: the rotation is due then, not a second later.
    w.now = first.requeue_at
    decision = w.step()
    rotated_once(w, decision, before)
    assert "rotation.period 2h elapsed" in decision.events[0].message
    assert w.status["nextRotationAt"] == format_timestamp(w.now + 2 * HOUR + spread)
    assert decision.requeue_at == w.now + 2 * HOUR + spread
    w.converge()


def test_period_missed_many_times_rotates_once(world):
    w = world({**SA, "rotation": {"period": "1h"}})
    w.step()
    before = snapshot(w)
    rotated_once(w, w.step(10 * HOUR), before)
    w.converge()
    assert w.status["revision"] == 2


def test_requeue_at_is_the_earliest_of_rotation_and_expiry(world):
    w = world({**SA, "rotation": {"period": "3h", "overlap": "1h"}})
    w.step()
    spread = rotation_spread(w.uid, 3 * HOUR)
    # Rotation 2 (the period and its spread), previous expires in 1h, next rotation in 3h.
    w.step(3 * HOUR + spread + SECOND)
    assert w.status["revision"] == 2
    expires = parse_timestamp(w.status["previousExpiresAt"])
    next_rotation = parse_timestamp(w.status["nextRotationAt"])
    assert expires == parse_timestamp(w.status["rotatedAt"]) + HOUR
    assert abs(next_rotation - (parse_timestamp(w.status["rotatedAt"]) + 3 * HOUR + spread)) < (
        SECOND
    )
    decision = w.decisions[-1]
    assert decision.requeue_at == w.now + HOUR  # the expiry: earlier than the next rotation
    assert format_timestamp(decision.requeue_at) == format_timestamp(min(expires, next_rotation))

    w.now = decision.requeue_at
    expired = w.step()
    assert "previousExpiresAt" not in w.status
    assert expired.requeue_at is not None
    assert abs(expired.requeue_at - next_rotation) < timedelta(seconds=1)

    w.now = expired.requeue_at
    w.step()
    assert w.status["revision"] == 3


def test_shortening_the_period_rotates_at_once_when_overdue(world):
    w = world({**SA, "rotation": {"period": "720h"}})
    w.step()
    before = snapshot(w)
    w.step(48 * HOUR)
    w.edit_spec(lambda s: s.update(rotation={"period": "24h"}))
    rotated_once(w, w.step(), before)


def test_removing_the_period_stops_the_schedule(world):
    w = world({**SA, "rotation": {"period": "1h"}})
    w.step()
    w.edit_spec(lambda s: s.pop("rotation"))
    decision = w.step()
    assert "nextRotationAt" not in w.status
    assert decision.requeue_at is None
    before = snapshot(w)
    no_change(w, w.step(5 * HOUR), before)


def test_previous_variables_render_empty_outside_an_overlap(world):
    spec = {
        "serviceAccount": "a",
        "rotation": {"overlap": "1h"},
        "secretTemplate": {"data": {"both": "{{ clientSecret }},{{ clientSecretPrevious }}"}},
    }
    w = world(spec)
    w.converge()
    first = w.data()["client_secret"]
    assert w.data()["both"] == f"{first},"
    assert w.condition()["status"] == "True"
    w.request_rotation("now")
    w.converge()
    assert w.data()["both"] == f"{w.data()['client_secret']},{first}"
