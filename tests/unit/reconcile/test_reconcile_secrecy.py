"""No secret value in status, Events, the log summary, or the repr of what might be logged.

The harness (conftest.py) scans every pass of every test; these tests make sure the scan
itself works, and drive each type through every path with real values."""

import base64
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from credsmith.api.enums import KeyAlgorithm
from credsmith.issuing.keypair import new_key_pair
from credsmith.reconcile.credential import KindRules
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.snapshots import Event, SecretSnapshot

SA = {"serviceAccount": "billing-exporter"}
VALUE = "Qx7vLm2pRt9sWz4yNb6cHd8fJk3gTu5eXa1oPi0q"
PEM = new_key_pair(KeyAlgorithm.ED25519).private_key_pem


@pytest.mark.parametrize(
    "text",
    [
        VALUE,
        f"the secret is {VALUE}.",
        VALUE[10:26],  # any 16 characters of it
        repr(VALUE.encode()),
        json.dumps({"client_secret": VALUE}),
        base64.b64encode(VALUE.encode()).decode(),
        str({"data": {"client_secret": base64.b64encode(VALUE.encode()).decode()[:24]}}),
    ],
)
def test_scanner_finds_a_value(leaks, text):
    assert leaks([VALUE], {"place": text}) == ["secret value #0 appears in place"]


@pytest.mark.parametrize(
    "text",
    [
        PEM,
        PEM.splitlines()[1],
        repr(PEM),
        base64.b64encode(PEM.encode()).decode(),
    ],
    # Fixed ids: PEM is new each run, and xdist workers must collect the same names.
    ids=["pem", "a-line", "repr", "base64"],
)
def test_scanner_finds_a_private_key(leaks, text):
    assert leaks([PEM], {"place": text}) != []


@pytest.mark.parametrize(
    "text",
    [
        "Issued revision 1 into Secret billing",
        VALUE[:15],  # too short to tell
        "sha256:0123456789abcdef",
        "-----BEGIN PRIVATE KEY-----",
    ],
)
def test_scanner_ignores_other_text(leaks, text):
    assert leaks([VALUE, PEM], {"place": text}) == []


def test_harness_fails_a_decision_that_leaks(world):
    w = world(SA)
    decision = w.step()
    value = w.data()["client_secret"]
    for leaky in (
        replace(decision, summary=f"issued {value}"),
        replace(decision, events=(Event("Normal", "Issued", f"value {value[:20]}"),)),
        replace(decision, status={**decision.status, "note": value}),
    ):
        with pytest.raises(AssertionError, match="secret value"):
            w._check(leaky, w.snapshot(), w.secret_snapshot())


def test_repr_of_snapshots_and_decisions_holds_no_data(world):
    w = world({**SA, "type": "KeyPair"}, real=True)
    decision = w.step()
    private = w.data()["private_key.pem"]
    snapshot = w.secret_snapshot()
    assert snapshot.data["private_key.pem"] == private.encode()  # the data is there ...
    for text in (repr(snapshot), str(snapshot), repr(decision), str(decision)):
        assert "PRIVATE KEY" not in text  # ... but not in its repr
        assert base64.b64encode(private.encode()).decode()[:40] not in text
    assert decision.secret is not None  # and the Decision still carries the manifest


TYPES: dict[str, tuple[KindRules, dict[str, Any], str]] = {
    "ClientSecret": (SERVICE_ACCOUNT_CREDENTIAL, {**SA, "type": "ClientSecret"}, "client_secret"),
    "APIKey": (
        SERVICE_ACCOUNT_CREDENTIAL,
        {**SA, "type": "APIKey", "secret": {"prefix": "ak_"}},
        "api_key",
    ),
    "BasicAuth": (
        SERVICE_ACCOUNT_CREDENTIAL,
        {**SA, "type": "BasicAuth", "secret": {"checksum": True}},
        "password",
    ),
    "KeyPair": (SERVICE_ACCOUNT_CREDENTIAL, {**SA, "type": "KeyPair"}, "private_key.pem"),
    "ApiClient": (
        API_CLIENT,
        {"displayName": "Reporting", "roles": [{"id": "r"}]},
        "client_secret",
    ),
}
FAILING_ON_THE_VALUE = [
    "{{ clientSecret + 1 }}",
    "{{ clientSecret | b64decode }}",
    "{{ clientSecret * 100000 }}",
    "{{ clientSecret ~ nope }}",
    "{{ clientSecret | truncate('x') }}",
    "{% if clientSecret > 1 %}x{% endif %}",
    "{{ clientSecret[0:4] ~ (clientSecret | int) }}",
]


@pytest.mark.parametrize("case", TYPES)
def test_every_path_keeps_values_secret(world, leaks, case):
    """Issue, overlap rotation, period rotation, parameter change, strip, delete, conflict,
    failing templates, invalid spec, crash: the harness scans each pass."""
    rules, spec, value_key = TYPES[case]
    spec = {
        **spec,
        "rotation": {"period": "2h", "overlap": "1h"},
        "secretTemplate": {"data": {"url": "https://{{ clientId }}:{{ clientSecret }}@x"}},
    }
    w = world(spec, rules=rules, real=True)
    w.step()
    w.request_rotation("one")
    w.step()
    w.step(timedelta(hours=1))
    w.step(timedelta(hours=2))
    w.edit_spec(lambda s: s.update(secret={"length": 64}))
    w.step()
    for template in FAILING_ON_THE_VALUE:
        w.edit_spec(lambda s, t=template: s.update(secretTemplate={"data": {"x": t}}))
        w.step()
        assert w.condition()["reason"] == "InvalidTemplate"
    w.edit_spec(lambda s: s.pop("secretTemplate"))
    w.step()
    w.remove_keys(value_key)
    w.step()
    w.delete_secret()
    w.step()
    w.lose_status()
    w.step()
    w.delete_secret()
    w.foreign_secret()
    w.step()
    w.delete_secret()
    w.edit_spec(lambda s: s.update(secret={"length": 3}))
    w.step()
    w.edit_spec(lambda s: s.pop("secret"))
    w.step()
    w.converge()

    values = w.secret_values()
    assert len(values) >= 5
    everything = {
        "all statuses": json.dumps([d.status for d in w.decisions]),
        "all events": repr(w.events),
        "all summaries": "\n".join(d.summary for d in w.decisions),
        "all decisions": repr(w.decisions),
        "resource": json.dumps(w.resource),
    }
    assert leaks(values, everything) == []
    reasons = {e.reason for e in w.events}
    assert {"Issued", "Rotated", "Reissued", "InvalidTemplate", "SecretConflict"} <= reasons
    assert "InvalidSpec" in reasons


def test_secret_snapshot_from_api_round_trip():
    manifest = {
        "metadata": {"name": "s", "namespace": "n", "resourceVersion": 12},
        "data": {"a": base64.b64encode(b"\x00\xff").decode()},
    }
    snapshot = SecretSnapshot.from_api(manifest)
    assert snapshot.type == "Opaque"
    assert snapshot.resource_version == "12"
    assert snapshot.text("a") is None
    assert snapshot.text("missing") is None
    assert snapshot.owner_references == ()
