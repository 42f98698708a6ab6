"""The JWK Set ConfigMap: public keys of checked, owned KeyPair credentials only."""

from __future__ import annotations

import json
from datetime import timedelta

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.reconcile.jwks import JWKS_FILE, ConfigMapSnapshot, public_keys, reconcile_jwks
from tests.state_key import TEST_STATE_KEY

SPEC = {
    "serviceAccount": "a",
    "type": "KeyPair",
    "keyPair": {"jwks": {"name": "keys"}},
    "rotation": {"overlap": "1h"},
}


def jwks(w) -> dict:
    decision = reconcile_jwks(
        "team-a", "keys", [(w.snapshot(), w.secret_snapshot())], None, w.now, TEST_STATE_KEY
    )
    assert decision.config_map is not None
    return json.loads(decision.config_map["data"][JWKS_FILE])


def test_the_current_key_and_the_previous_one_until_it_expires(world):
    w = world(SPEC)
    w.converge()
    first = w.data()["key_id"]
    assert [k["kid"] for k in jwks(w)["keys"]] == [first]
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step()
    second = w.data()["key_id"]
    assert sorted(k["kid"] for k in jwks(w)["keys"]) == sorted([first, second])
    w.step(timedelta(hours=1, seconds=1))
    assert [k["kid"] for k in jwks(w)["keys"]] == [second]
    key = jwks(w)["keys"][0]
    assert key["use"] == "sig"
    assert key["alg"] == "EdDSA"
    assert "d" not in key


def test_a_swapped_public_key_or_a_foreign_secret_publishes_nothing(world):
    w = world(SPEC)
    w.converge()
    stranger = world({**SPEC, "serviceAccount": "b"}, name="stranger")
    # The stranger names the same JWK Set but reads another's Secret: not its own.
    assert public_keys(stranger.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY) == []
    w.edit_secret(lambda s: s["data"].update({"public_jwk.json": s["data"]["public_key.pem"]}))
    assert public_keys(w.snapshot(), w.secret_snapshot(), w.now, TEST_STATE_KEY) == []


def test_unchanged_sets_are_no_write_and_foreign_config_maps_are_a_conflict(world):
    w = world(SPEC)
    w.converge()
    members = [(w.snapshot(), w.secret_snapshot())]
    written = reconcile_jwks("team-a", "keys", members, None, w.now, TEST_STATE_KEY).config_map
    assert written is not None
    ours = ConfigMapSnapshot.from_api(
        {**written, "metadata": {**written["metadata"], "resourceVersion": "3"}}
    )
    assert reconcile_jwks("team-a", "keys", members, ours, w.now, TEST_STATE_KEY).config_map is None
    foreign = ConfigMapSnapshot.from_api({"metadata": {"name": "keys", "namespace": "team-a"}})
    decision = reconcile_jwks("team-a", "keys", members, foreign, w.now, TEST_STATE_KEY)
    assert decision.conflict
    assert decision.config_map is None
