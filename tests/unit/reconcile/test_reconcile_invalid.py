"""Bad input: templates that fail (InvalidTemplate) and specs the schema would have refused
(InvalidSpec). Either way: Ready=False with a precise message, the Secret as it was."""

import copy
from datetime import timedelta

import pytest

from credsmith.reconcile.kinds import API_CLIENT

SA = {"serviceAccount": "billing-exporter"}

BAD_TEMPLATES = {
    "does not parse": ({}, {"url": "https://{{ clientId }"}, 'data["url"]'),
    "unclosed block": ({}, {"url": "{% if clientId %}x"}, 'data["url"]'),
    "unknown variable": ({}, {"url": "{{ clientSecrett }}"}, '"clientSecrett"'),
    "variable of another type": ({}, {"x": "{{ password }}"}, '"password"'),
    "attribute access": ({}, {"x": "{{ clientSecret.__class__ }}"}, "attribute"),
    "unknown filter": ({}, {"x": "{{ clientId | pprint }}"}, '"pprint"'),
    "secret inspected": (
        {},
        {"x": "{{ clientSecret | length }}"},
        'secret variable "clientSecret"',
    ),
    "call": ({}, {"x": "{{ clientSecret.upper() }}"}, 'data["x"]'),
    "output too large": ({}, {"x": "{{ clientSecret * 10000 }}"}, 'data["x"]'),
    "type error on the value": ({}, {"x": "{{ clientSecret + 1 }}"}, 'data["x"]'),
    "collides with client_id": ({}, {"client_id": "x"}, 'data["client_id"]'),
    "collides with client_secret": ({}, {"client_secret": "x"}, "cannot be templated"),
    "collides with a previous key": ({}, {"client_secret_previous": "x"}, "cannot be templated"),
    "collides with api_key": ({"type": "APIKey"}, {"api_key": "x"}, 'data["api_key"]'),
    "collides with key_id": ({"type": "APIKey"}, {"key_id": "x"}, 'data["key_id"]'),
    "collides with password": ({"type": "BasicAuth"}, {"password": "x"}, 'data["password"]'),
    "collides with username": ({"type": "BasicAuth"}, {"username": "x"}, 'data["username"]'),
    "collides with a public key": (
        {"type": "KeyPair"},
        {"public_key.pem": "x"},
        'data["public_key.pem"]',
    ),
    "collides with key_id_previous": (
        {"type": "KeyPair"},
        {"key_id_previous": "x"},
        'data["key_id_previous"]',
    ),
}

# These parse; they fail on the values (after a value was generated, and thrown away).
FAIL_ONLY_WHEN_RENDERED = {
    "unknown variable",
    "variable of another type",
    "output too large",
    "type error on the value",
}


def check_failed(w, decision, reason, *, untouched):
    assert decision.secret is None
    ready, stalled = w.condition("Ready"), w.condition("Stalled")
    assert (ready["status"], ready["reason"]) == ("False", reason)
    assert (stalled["status"], stalled["reason"]) == ("True", reason)
    assert ready["observedGeneration"] == w.generation
    assert w.status["observedGeneration"] == w.generation
    assert w.secret == untouched
    return ready["message"]


@pytest.mark.parametrize("case", BAD_TEMPLATES)
def test_bad_template_on_a_new_resource(world, case):
    extra, data, expected = BAD_TEMPLATES[case]
    w = world({**SA, **extra, "secretTemplate": {"data": data}})
    decision = w.step()
    message = check_failed(w, decision, "InvalidTemplate", untouched=None)
    assert "secretTemplate.data[" in message
    assert expected in message
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "InvalidTemplate")]
    assert decision.events[0].message == message
    assert decision.requeue_at is None
    if case not in FAIL_ONLY_WHEN_RENDERED:
        assert w.values == [], "a template that cannot work is refused before issuing"
    # The same failure again: no second Event.
    again = w.step()
    assert again.events == ()
    assert again.summary == ""
    assert w.secrets == {}


@pytest.mark.parametrize("case", BAD_TEMPLATES)
def test_bad_template_leaves_the_secret_and_recovers(world, case):
    extra, data, _ = BAD_TEMPLATES[case]
    good = {"labels": {"team": "a"}, "data": {"url": "https://{{ clientId }}@x"}}
    w = world({**SA, **extra, "secretTemplate": good})
    w.step()
    secret, status = copy.deepcopy(w.secret), copy.deepcopy(w.status)

    w.edit_spec(lambda s: s.update(secretTemplate={"labels": {"team": "b"}, "data": data}))
    decision = w.step()
    check_failed(w, decision, "InvalidTemplate", untouched=secret)
    # What was issued is still reported.
    for field in ("clientId", "revision", "fingerprint", "secretName", "issuedAt"):
        assert w.status[field] == status[field]

    w.edit_spec(lambda s: s.update(secretTemplate={"labels": {"team": "b"}}))
    recovered = w.step()
    assert recovered.secret is not None
    assert w.condition()["status"] == "True"
    assert w.condition("Stalled") is None
    assert w.status["fingerprint"] == status["fingerprint"]
    assert w.status["revision"] == 1
    assert w.secret["metadata"]["labels"]["team"] == "b"
    assert "url" not in w.data()
    assert recovered.events == ()
    w.converge()


def test_bad_template_holds_back_a_due_rotation(world):
    """Nothing is issued into a Secret that cannot be written; the rotation waits."""
    w = world({**SA, "rotation": {"period": "1h"}})
    w.step()
    secret = copy.deepcopy(w.secret)
    w.edit_spec(lambda s: s.update(secretTemplate={"data": {"x": "{{ nope }}"}}))
    w.request_rotation("now")
    decision = w.step(2 * timedelta(hours=1))
    check_failed(w, decision, "InvalidTemplate", untouched=secret)
    assert w.status["revision"] == 1

    w.edit_spec(lambda s: s.pop("secretTemplate"))
    decision = w.step()
    assert w.status["revision"] == 2
    assert [e.reason for e in decision.events] == ["Rotated"]
    w.converge()
    assert w.status["revision"] == 2


def test_bad_template_on_a_lost_secret_issues_nothing(world):
    w = world(SA)
    w.step()
    w.delete_secret()
    w.edit_spec(lambda s: s.update(secretTemplate={"data": {"x": "{{ nope }}"}}))
    decision = w.step()
    check_failed(w, decision, "InvalidTemplate", untouched=None)
    w.edit_spec(lambda s: s.pop("secretTemplate"))
    w.step()
    assert w.status["revision"] == 2
    assert w.condition()["reason"] == "Reissued"


def test_template_error_message_changes_post_a_new_event(world):
    w = world({**SA, "secretTemplate": {"data": {"x": "{{ a }}"}}})
    w.step()
    w.edit_spec(lambda s: s.update(secretTemplate={"data": {"x": "{{ b }}"}}))
    w.step()
    w.step()
    assert [e.reason for e in w.events] == ["InvalidTemplate", "InvalidTemplate"]
    assert '"b"' in w.events[1].message


# ---- InvalidSpec ----------------------------------------------------------------------

# (spec, the field the message must name, input values it must not contain)
BAD_SPECS = {
    "entropy too low": (
        {**SA, "secret": {"length": 17, "alphabet": "Hex"}},
        "secret.length",
        ["17"],
    ),
    "length out of range": ({**SA, "secret": {"length": 257}}, "spec.secret.length", ["257"]),
    "length not a number": (
        {**SA, "secret": {"length": "forty-two"}},
        "spec.secret.length",
        ["forty-two"],
    ),
    "unknown alphabet": (
        {**SA, "secret": {"alphabet": "Klingon"}},
        "spec.secret.alphabet",
        ["Klingon"],
    ),
    "bad secret prefix": (
        {**SA, "secret": {"prefix": "sk live!"}},
        "spec.secret.prefix",
        ["sk live!"],
    ),
    "overlap not shorter than period": (
        {**SA, "rotation": {"period": "1h", "overlap": "2h"}},
        "rotation.overlap",
        [],
    ),
    "period too short": ({**SA, "rotation": {"period": "1ms"}}, "rotation.period", []),
    "period not a duration": (
        {**SA, "rotation": {"period": "monthly"}},
        "spec.rotation.period",
        ["monthly"],
    ),
    "missing serviceAccount": ({"title": "x"}, "spec.serviceAccount", []),
    "control character in title": (
        {**SA, "title": "Billing\x07Exporter"},
        "spec.title",
        ["Billing\x07Exporter", "Billing"],
    ),
    "description too long": ({**SA, "description": "d" * 301}, "spec.description", ["d" * 301]),
    "client ID value with a space": (
        {**SA, "clientId": {"value": "my client"}},
        "spec.clientId.value",
        ["my client"],
    ),
    "client ID value with a format": (
        {**SA, "clientId": {"value": "mine", "format": "Token"}},
        "clientId.value",
        [],
    ),
    "bad client ID prefix": (
        {**SA, "clientId": {"prefix": "Svc"}},
        "spec.clientId.prefix",
        ["Svc"],
    ),
    "unknown type": ({**SA, "type": "Password"}, "spec.type", ["Password"]),
    "keyPair on a ClientSecret": (
        {**SA, "keyPair": {"algorithm": "Ed25519"}},
        "spec.keyPair",
        [],
    ),
    "unknown key algorithm": (
        {**SA, "type": "KeyPair", "keyPair": {"algorithm": "DSA-1024"}},
        "spec.keyPair.algorithm",
        ["DSA-1024"],
    ),
    "bad secretName": ({**SA, "secretName": "Not_A_Name"}, "spec.secretName", ["Not_A_Name"]),
    "bad template label": (
        {**SA, "secretTemplate": {"labels": {"team": "has space"}}},
        "spec.secretTemplate.labels",
        ["has space"],
    ),
    "bad data key": (
        {**SA, "secretTemplate": {"data": {"a/b": "x"}}},
        "spec.secretTemplate.data",
        [],
    ),
    "bad deletionPolicy": ({**SA, "deletionPolicy": "Keep"}, "spec.deletionPolicy", ["Keep"]),
}


@pytest.mark.parametrize("case", BAD_SPECS)
def test_invalid_spec(world, case):
    spec, field, values = BAD_SPECS[case]
    w = world(spec)
    decision = w.step()
    message = check_failed(w, decision, "InvalidSpec", untouched=None)
    assert field in message
    assert "spec.spec" not in message
    for value in values:
        assert value not in message
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "InvalidSpec")]
    assert w.step().events == ()


API_CLIENT_BAD_SPECS = {
    "missing displayName": ({}, "spec.displayName"),
    "registry is the own Secret": (
        {"displayName": "R", "registry": {"name": "billing"}},
        "spec.registry.name",
    ),
    "registry is the given secretName": (
        {"displayName": "R", "secretName": "s", "registry": {"name": "s"}},
        "spec.registry.name",
    ),
    "duplicate role ids": (
        {"displayName": "R", "roles": [{"id": "a"}, {"id": "a"}]},
        "spec.roles",
    ),
    "unknown hash": ({"displayName": "R", "registry": {"name": "r", "hash": "MD5"}}, "hash"),
}


@pytest.mark.parametrize("case", API_CLIENT_BAD_SPECS)
def test_invalid_api_client_spec(world, case):
    spec, field = API_CLIENT_BAD_SPECS[case]
    w = world(spec, rules=API_CLIENT)
    decision = w.step()
    message = check_failed(w, decision, "InvalidSpec", untouched=None)
    assert field in message
    assert "spec.spec" not in message


def test_invalid_spec_leaves_the_secret_and_recovers(world):
    w = world({**SA, "secretTemplate": {"labels": {"team": "a"}}})
    w.step()
    secret, status = copy.deepcopy(w.secret), copy.deepcopy(w.status)
    w.edit_spec(lambda s: s.update(secret={"length": 8}))
    decision = w.step()
    check_failed(w, decision, "InvalidSpec", untouched=secret)
    assert w.status["clientId"] == status["clientId"]
    assert w.status["fingerprint"] == status["fingerprint"]

    w.edit_spec(lambda s: s.pop("secret"))
    recovered = w.step()
    assert recovered.secret is None  # nothing to change in the Secret
    assert w.condition()["status"] == "True"
    assert w.condition()["reason"] == "Issued"
    assert w.condition("Stalled") is None
    assert w.status["fingerprint"] == status["fingerprint"]
    assert w.status["observedGeneration"] == 3
    assert [e.reason for e in w.events] == ["Issued", "InvalidSpec"]


def test_ready_transition_times(world):
    """lastTransitionTime moves only when Ready's status does."""
    w = world(SA)
    w.step()
    issued_at = w.condition()["lastTransitionTime"]
    w.step(timedelta(minutes=1))
    assert w.condition()["lastTransitionTime"] == issued_at
    w.edit_spec(lambda s: s.update(secret={"length": 8}))
    w.step(timedelta(minutes=1))
    failed_at = w.condition()["lastTransitionTime"]
    assert failed_at != issued_at
    w.edit_spec(lambda s: s.update(secret={"length": 9}))
    w.step(timedelta(minutes=1))
    assert w.condition()["lastTransitionTime"] == failed_at
    w.edit_spec(lambda s: s.pop("secret"))
    w.step(timedelta(minutes=1))
    assert w.condition()["lastTransitionTime"] not in (issued_at, failed_at)


def test_conditions_of_others_are_kept(world):
    w = world(SA)
    w.status["conditions"] = [
        {
            "type": "example.com/Audited",
            "status": "True",
            "lastTransitionTime": "2025-01-01T00:00:00Z",
            "reason": "Audited",
            "message": "",
        },
        {"type": "Broken"},  # not a valid condition: dropped
    ]
    w.step()
    types = [c["type"] for c in w.status["conditions"]]
    assert types == ["example.com/Audited", "Ready"]
