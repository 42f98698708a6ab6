"""Nothing read back from a Secret is believed unchecked (issue: trust boundary).

Edited values, forged bookkeeping and forged hashes lead to a re-issue or a re-made hash
with a Warning, never to a silently adopted value; a previous value retires on time even
while the spec is broken; a client whose client ID an earlier client holds is not Ready.
"""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

from credsmith.api.enums import HashAlgorithm, KeyAlgorithm
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.hashing import hash_secret, verify_secret
from credsmith.issuing.keypair import new_key_pair
from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.registry import registry_entry
from tests.state_key import TEST_STATE_KEY

SA = {"serviceAccount": "billing-exporter"}
REGISTERED = {"displayName": "Reports", "registry": {"name": "reg"}}
CHOSEN = "A" * 48  # a value of the right shape that someone chose


def set_value(w, key, value, **annotations):
    def change(secret):
        secret["data"][key] = base64.b64encode(value.encode()).decode()
        secret["metadata"]["annotations"].update(annotations)

    w.edit_secret(change)


def reissued(w, decision, before_revision, word, untrusted=False):
    """`untrusted`: the state failed the belief rule (state_mac.py), which a Warning
    Untrusted names besides the Reissued one."""
    assert w.status["revision"] == before_revision + 1
    warnings = [e for e in decision.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["Reissued", "Untrusted"][: 1 + untrusted]
    assert word in warnings[0].message
    return warnings[0].message


@pytest.mark.parametrize(
    ("value", "word"),
    [
        ("password123", "characters instead of 48"),
        ("A" * 47 + "!", "outside the Alphanumeric alphabet"),
    ],
)
def test_an_edited_value_of_the_wrong_shape_is_reissued(world, value, word):
    w = world(SA)
    w.converge()
    set_value(w, "client_secret", value)
    message = reissued(w, w.step(), 1, word)
    assert value not in message
    assert w.data()["client_secret"] != value
    w.converge()


def test_an_edited_value_of_the_right_shape_fails_its_fingerprint(world):
    w = world(SA)
    w.converge()
    set_value(w, "client_secret", CHOSEN)
    reissued(w, w.step(), 1, "fingerprint")
    assert w.data()["client_secret"] != CHOSEN


def test_a_forged_fingerprint_does_not_get_past_status(world):
    w = world(SA)
    w.converge()
    set_value(w, "client_secret", CHOSEN, **{"credsmith.io/fingerprint": fingerprint(CHOSEN)})
    # Its MAC no longer verifies, and status disagrees with the fingerprint.
    reissued(w, w.step(), 1, "fingerprint disagree with status", untrusted=True)
    assert w.data()["client_secret"] != CHOSEN


def test_a_revision_that_does_not_follow_status_is_reissued(world):
    w = world(SA)
    w.converge()
    set_value(
        w,
        "client_secret",
        CHOSEN,
        **{"credsmith.io/fingerprint": fingerprint(CHOSEN), "credsmith.io/revision": "7"},
    )
    # The planted revision is not believed, so not followed either: status's is.
    reissued(w, w.step(), 1, "revision, fingerprint disagree with status", untrusted=True)


def test_a_crash_between_secret_and_status_is_still_adopted(world):
    """The Secret one revision ahead of status is what a crash leaves: no re-issue."""
    w = world(SA)
    w.converge()
    w.request_rotation("r1")
    status = dict(w.status)
    w.step()
    value = w.data()["client_secret"]
    w.resource["status"] = status  # the status write was lost
    decision = w.step()
    assert w.data()["client_secret"] == value
    assert w.status["revision"] == 2
    assert decision.events == ()


@pytest.mark.parametrize(
    ("replacement", "word"),
    [
        (KeyAlgorithm.ED25519, "fingerprint"),
        (KeyAlgorithm.RSA_2048, "not a Ed25519 key"),
    ],
)
def test_a_replaced_private_key_is_reissued(world, replacement, word):
    w = world({**SA, "type": "KeyPair"})
    w.converge()
    pair = new_key_pair(replacement)

    def change(secret):
        secret["data"]["private_key.pem"] = base64.b64encode(pair.private_key_pem.encode()).decode()
        for key, value in (
            ("key_id", pair.key_id),
            ("public_key.pem", pair.public_key_pem),
            ("public_jwk.json", pair.public_jwk_json()),
        ):
            secret["data"][key] = base64.b64encode(value.encode()).decode()

    w.edit_secret(change)
    reissued(w, w.step(), 1, word)
    assert w.data()["private_key.pem"] != pair.private_key_pem


def test_a_public_key_put_beside_ours_is_reissued(world):
    w = world({**SA, "type": "KeyPair"})
    w.converge()
    other = new_key_pair(KeyAlgorithm.ED25519)
    set_value(w, "public_key.pem", other.public_key_pem)
    reissued(w, w.step(), 1, "public_key.pem does not match")


def test_a_forged_hash_is_never_believed_and_is_made_anew(world):
    w = world(REGISTERED, rules=API_CLIENT)
    w.converge()
    secret = w.data()["client_secret"]
    forged = hash_secret(CHOSEN, HashAlgorithm.SHA256)
    w.edit_secret(
        lambda s: s["metadata"]["annotations"].update({"credsmith.io/secret-hash": forged})
    )
    # Before the operator's next pass, the registry already ignores the forged hash.
    assert registry_entry(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY) is None
    decision = w.step()
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "Untrusted")]
    entry = registry_entry(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY)
    assert entry is not None
    assert verify_secret(secret, entry["secret"]["hash"])
    assert not verify_secret(CHOSEN, entry["secret"]["hash"])
    assert w.data()["client_secret"] == secret  # a hash is re-made, the value stays
    w.converge()


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda s: s.update(secretTemplate={"data": {"x": "{{ oops"}}), id="template"),
        pytest.param(lambda s: s.update(secret={"length": 3}), id="spec"),
    ],
)
def test_the_previous_value_retires_on_time_while_the_spec_is_broken(world, breakage):
    w = world({**SA, "rotation": {"overlap": "1h"}})
    w.converge()
    w.request_rotation("r1")
    w.step()
    value = w.data()["client_secret"]
    assert "client_secret_previous" in w.data()
    w.edit_spec(breakage)
    decision = w.step(timedelta(minutes=30))
    assert w.condition()["status"] == "False"
    # Woken for the expiry (recorded to the second).
    assert decision.requeue_at is not None
    assert abs(decision.requeue_at - (w.now + timedelta(minutes=30))) < timedelta(seconds=1)
    assert "client_secret_previous" in w.data()
    w.step(timedelta(minutes=31))
    assert "client_secret_previous" not in w.data()
    annotations = w.secret["metadata"]["annotations"]
    assert not any(k.startswith("credsmith.io/previous") for k in annotations)
    assert w.data()["client_secret"] == value
    assert w.condition()["status"] == "False"
    w.converge()


def test_a_templated_key_holding_the_expired_previous_value_goes_with_it(world):
    template = {"data": {"old": "{{ clientSecretPrevious }}", "new": "{{ clientSecret }}"}}
    w = world({**SA, "rotation": {"overlap": "1h"}, "secretTemplate": template})
    w.converge()
    w.request_rotation("r1")
    w.step()
    assert w.data()["old"]
    w.edit_spec(lambda s: s.update(secret={"length": 3}))
    w.step(timedelta(hours=2))
    assert "old" not in w.data()
    assert w.data()["new"] == w.data()["client_secret"]


def test_a_duplicate_client_id_is_not_ready_and_says_whose_it_is(world):
    w = world(REGISTERED, rules=API_CLIENT)
    w.converge()
    decision = reconcile(
        API_CLIENT,
        w.snapshot(),
        w.secret_snapshot(),
        w.now,
        "alice",
        state_key=TEST_STATE_KEY,
    )
    ready = next(c for c in decision.status["conditions"] if c["type"] == "Ready")
    stalled = next(c for c in decision.status["conditions"] if c["type"] == "Stalled")
    assert (ready["status"], ready["reason"]) == ("False", "DuplicateClientId")
    assert stalled["status"] == "True"
    assert "alice" in ready["message"]
    assert [e.reason for e in decision.events] == ["DuplicateClientId"]
    assert decision.secret is None


ORACLE = "{% if clientSecret[0] == 'a' %}{{ 1/0 }}{% endif %}"


def test_the_oracle_template_is_refused_and_the_secret_untouched(world):
    w = world(SA)
    w.converge()
    value = w.data()["client_secret"]
    w.edit_spec(lambda s: s.update(secretTemplate={"data": {"x": ORACLE}}))
    w.step()
    ready = w.condition()
    assert (ready["status"], ready["reason"]) == ("False", "InvalidTemplate")
    assert 'secret variable "clientSecret"' in ready["message"]
    assert w.data()["client_secret"] == value


@pytest.mark.parametrize(
    ("spec", "variable"),
    [
        ({**SA}, "clientSecret"),
        ({**SA, "type": "APIKey"}, "apiKey"),
        ({**SA, "type": "BasicAuth"}, "password"),
        ({**SA, "type": "KeyPair"}, "privateKeyPem"),
    ],
)
def test_every_type_renders_its_secret_variables_through_placeholders(world, spec, variable):
    previous = (
        variable.replace("Pem", "PreviousPem") if "Pem" in variable else variable + "Previous"
    )
    template = {"data": {"t": f"{{{{ {variable}|b64encode }}}}|{{{{ {previous}|tojson }}}}"}}
    w = world({**spec, "rotation": {"overlap": "1h"}, "secretTemplate": template})
    w.converge()
    w.request_rotation("r1")
    w.step()
    assert w.condition()["reason"] == "Rotated"
    current, _, previous_json = w.data()["t"].partition("|")
    assert current
    assert previous_json.startswith('"')
