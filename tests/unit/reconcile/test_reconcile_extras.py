"""spec.extraSecrets: generated beside the credential, rotated with it, settled key by key."""

from __future__ import annotations

import base64
import string
from datetime import timedelta
from typing import Any

import pytest

from credsmith.issuing.fingerprint import fingerprint

EXTRAS: list[dict[str, Any]] = [
    {"key": "webhook_signing_key", "prefix": "whsec_"},
    {"key": "encryption.key", "length": 64, "alphabet": "Hex"},
    {"key": "api-token", "length": 32, "alphabet": "URLSafe"},
]
SPEC = {"serviceAccount": "a", "extraSecrets": EXTRAS, "rotation": {"overlap": "1h"}}
HOUR = timedelta(hours=1)


def extras_of(w) -> dict[str, str]:
    return {e["key"]: w.data()[e["key"]] for e in w.spec["extraSecrets"]}


def test_extras_are_issued_with_their_shapes_and_reported_by_fingerprint(world):
    w = world(SPEC)
    decision = w.converge()
    values = extras_of(w)
    assert values["webhook_signing_key"].startswith("whsec_")
    assert len(values["webhook_signing_key"]) == len("whsec_") + 48
    assert len(values["encryption.key"]) == 64
    assert set(values["encryption.key"]) <= set("0123456789abcdef")
    assert set(values["api-token"]) <= set(string.ascii_letters + string.digits + "-_")
    assert w.status["extraSecrets"] == [
        {"key": key, "fingerprint": fingerprint(values[key])} for key in sorted(values)
    ]
    assert decision.events == ()


def test_a_rotation_renews_every_extra_and_keeps_the_previous_ones_for_the_overlap(world):
    w = world(SPEC)
    w.converge()
    before = extras_of(w)
    w.request_rotation("r1")
    w.step()
    after = extras_of(w)
    assert w.status["revision"] == 2
    assert all(after[k] != before[k] for k in before)
    assert w.data()["webhook_signing_key_previous"] == before["webhook_signing_key"]
    assert w.data()["encryption_previous.key"] == before["encryption.key"]
    assert w.data()["api-token_previous"] == before["api-token"]
    w.step(HOUR + timedelta(seconds=1))
    assert not [k for k in w.data() if "_previous" in k]
    assert extras_of(w) == after
    w.converge()


def test_adding_a_key_issues_only_it(world):
    w = world(SPEC)
    w.converge()
    before = extras_of(w)
    w.edit_spec(lambda s: s["extraSecrets"].append({"key": "fourth"}))
    decision = w.step()
    assert [(e.reason, e.message) for e in decision.events] == [
        ("ExtraSecretIssued", "Issued extra secret fourth")
    ]
    assert w.status["revision"] == 1
    assert {k: v for k, v in extras_of(w).items() if k != "fourth"} == before
    assert len(w.data()["fourth"]) == 48
    w.converge()


def test_removing_a_key_removes_only_it(world):
    w = world(SPEC)
    w.converge()
    before = extras_of(w)
    w.edit_spec(lambda s: s.update(extraSecrets=[e for e in EXTRAS if e["key"] != "api-token"]))
    w.converge()
    assert "api-token" not in w.data()
    assert extras_of(w) == {k: v for k, v in before.items() if k != "api-token"}
    assert w.status["revision"] == 1


def test_changing_a_keys_settings_regenerates_only_it(world):
    w = world(SPEC)
    w.converge()
    before = extras_of(w)
    w.edit_spec(lambda s: s["extraSecrets"][2].update(length=40))
    decision = w.step()
    assert [e.reason for e in decision.events] == ["ExtraSecretRegenerated"]
    assert "api-token" in decision.events[0].message
    after = extras_of(w)
    assert len(after["api-token"]) == 40
    assert {k: v for k, v in after.items() if k != "api-token"} == {
        k: v for k, v in before.items() if k != "api-token"
    }
    assert w.status["revision"] == 1


@pytest.mark.parametrize("edited", ["password123", "whsec_" + "A" * 48])
def test_a_hand_edited_extra_is_replaced_with_a_warning(world, edited):
    w = world(SPEC)
    w.converge()
    main = w.data()["client_secret"]

    def edit(secret):
        secret["data"]["webhook_signing_key"] = base64.b64encode(edited.encode()).decode()

    w.edit_secret(edit)
    decision = w.step()
    warnings = [e for e in decision.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["Reissued"]
    assert "webhook_signing_key" in warnings[0].message
    assert edited not in warnings[0].message
    assert w.data()["webhook_signing_key"] != edited
    assert w.data()["client_secret"] == main  # only the extra is replaced
    w.converge()


def test_templates_reach_extras_and_may_not_inspect_them(world):
    template = {
        "data": {
            "env": "KEY={{ extra.webhook_signing_key }} TLS={{ extra['encryption.key']|upper }}"
        }
    }
    w = world({**SPEC, "secretTemplate": template})
    w.converge()
    values = extras_of(w)
    assert w.data()["env"] == (
        f"KEY={values['webhook_signing_key']} TLS={values['encryption.key'].upper()}"
    )
    w.edit_spec(lambda s: s.update(secretTemplate={"data": {"x": "{{ extra.api-token }}"}}))
    w.step()  # `extra.api - token`: a subtraction; the secret may not be an operand
    assert w.condition()["reason"] == "InvalidTemplate"
    oracle = "{% if extra.webhook_signing_key[6] == 'a' %}x{% endif %}"
    w.edit_spec(lambda s: s.update(secretTemplate={"data": {"x": oracle}}))
    w.step()
    assert w.condition()["reason"] == "InvalidTemplate"
    assert "extra['webhook_signing_key']" in w.condition()["message"]


@pytest.mark.parametrize(
    "extras",
    [
        [{"key": "client_secret"}],
        [{"key": "client_secret_previous"}],
        [{"key": "a"}, {"key": "a_previous"}],
        [{"key": "url"}],
    ],
)
def test_colliding_keys_are_an_invalid_spec(world, extras):
    w = world(
        {"serviceAccount": "a", "extraSecrets": extras, "secretTemplate": {"data": {"url": "x"}}}
    )
    w.step()
    assert w.condition()["reason"] == "InvalidSpec"
    assert "spec.extraSecrets" in w.condition()["message"]
    assert w.secret is None
