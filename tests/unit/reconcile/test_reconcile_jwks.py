"""The JWK Set ConfigMap: public keys of checked, owned KeyPair credentials only."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from credsmith.reconcile.jwks import (
    JWKS_FILE,
    ConfigMapSnapshot,
    client_jwks_file,
    public_keys,
    reconcile_jwks,
)
from credsmith_verify import JwkSet
from tests.state_key import TEST_STATE_KEY

SPEC = {
    "serviceAccount": "a",
    "type": "KeyPair",
    "keyPair": {"jwks": {"name": "keys"}},
    "rotation": {"overlap": "1h"},
}


def jwks(w) -> dict[str, Any]:
    decision = reconcile_jwks(
        "team-a", "keys", [(w.snapshot(), w.secret_snapshot())], None, w.now, TEST_STATE_KEY
    )
    assert decision.config_map is not None
    keys: dict[str, Any] = json.loads(decision.config_map["data"][JWKS_FILE])
    return keys


def test_the_current_key_and_the_previous_one_until_it_expires(world):
    w = world(SPEC)
    w.converge()
    first = w.data()["key_id"]
    assert [k["kid"] for k in jwks(w)["keys"]] == [first]
    w.request_rotation("r1")
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


def decide(*worlds):
    members = [(w.snapshot(), w.secret_snapshot()) for w in worlds]
    return reconcile_jwks("team-a", "keys", members, None, worlds[0].now, TEST_STATE_KEY)


def created(w, moment: str):
    w.resource["metadata"]["creationTimestamp"] = moment
    return w


def test_each_key_names_its_client_and_each_client_has_its_own_set(world, tmp_path):
    a, b = world(SPEC, name="a"), world({**SPEC, "serviceAccount": "b"}, name="b")
    a.converge()
    b.converge()
    data = decide(a, b).config_map["data"]
    id_a, id_b = a.data()["client_id"], b.data()["client_id"]
    kid_a, kid_b = a.data()["key_id"], b.data()["key_id"]
    assert sorted(data) == sorted([JWKS_FILE, f"{id_a}.jwks.json", f"{id_b}.jwks.json"])
    everyone = {k["kid"]: k["client_id"] for k in json.loads(data[JWKS_FILE])["keys"]}
    assert everyone == {kid_a: id_a, kid_b: id_b}
    own = json.loads(data[client_jwks_file(id_a)])["keys"]
    assert [(k["kid"], k["client_id"]) for k in own] == [(kid_a, id_a)]  # B's kid is absent
    # The verifier binds them: B's key, kid and all, does not sign for A.
    (tmp_path / JWKS_FILE).write_text(data[JWKS_FILE])
    keys = JwkSet.load(tmp_path / JWKS_FILE)
    private_b = serialization.load_pem_private_key(b.data()["private_key.pem"].encode(), None)
    assert isinstance(private_b, ed25519.Ed25519PrivateKey)
    signature = private_b.sign(b"input")
    assert keys.verify(kid_b, "EdDSA", b"input", signature, client_id=id_b)
    assert not keys.verify(kid_b, "EdDSA", b"input", signature, client_id=id_a)


def test_a_client_id_taken_by_an_earlier_credential_publishes_nothing(world):
    """clientId.value lets anyone name any client: the later credential's keys are left
    out (not bound to the earlier one's client) and it is reported."""
    shared = {**SPEC, "clientId": {"value": "shared-client"}}
    first = created(world(shared, name="first"), "2025-01-01T00:00:00Z")
    second = created(
        world({**shared, "serviceAccount": "b"}, name="second"), "2025-01-02T00:00:00Z"
    )
    first.converge()
    second.converge()
    decision = decide(second, first)
    assert decision.duplicates == {"second": "first"}
    data = decision.config_map["data"]
    kids = [k["kid"] for k in json.loads(data["shared-client.jwks.json"])["keys"]]
    assert kids == [first.data()["key_id"]]
    assert [k["kid"] for k in json.loads(data[JWKS_FILE])["keys"]] == kids


def test_a_client_id_that_cannot_be_a_config_map_key_is_only_in_the_shared_set(world):
    odd = world({**SPEC, "clientId": {"value": "urn:client/one"}}, name="odd")
    odd.converge()
    assert client_jwks_file("urn:client/one") is None
    assert client_jwks_file("x" * 244) is None  # the key would pass 253 characters
    assert client_jwks_file("svc_" + "A1b2" * 6) == "svc_" + "A1b2" * 6 + ".jwks.json"
    data = decide(odd).config_map["data"]
    assert list(data) == [JWKS_FILE]
    [key] = json.loads(data[JWKS_FILE])["keys"]
    assert key["client_id"] == "urn:client/one"


def test_a_jwks_past_its_size_limit_leaves_out_the_latest_created(world):
    worlds = [world(SPEC, name=name) for name in ("a", "b", "c", "d")]
    for w in worlds:
        w.converge()
    members = [(w.snapshot(), w.secret_snapshot()) for w in worlds]
    now = worlds[0].now
    whole = reconcile_jwks("team-a", "keys", members, None, now, TEST_STATE_KEY)
    assert whole.config_map is not None
    assert whole.full == ()
    two = reconcile_jwks("team-a", "keys", members[:2], None, now, TEST_STATE_KEY).config_map
    assert two is not None
    limit = sum(len(value.encode()) for value in two["data"].values())
    decision = reconcile_jwks("team-a", "keys", members, None, now, TEST_STATE_KEY, limit=limit)
    # The two created first fit exactly; the later ones are left out, and the document
    # holds the first two's keys alone (the count is exact: the limit is not passed).
    assert decision.full == ("c", "d")
    assert decision.config_map is not None
    assert decision.config_map["data"] == two["data"]
    assert reconcile_jwks(
        "team-a", "keys", members, None, now, TEST_STATE_KEY, limit=limit - 1
    ).full == (
        "b",
        "c",
        "d",
    )


def _config_map_key_ok(key: str) -> bool:
    """The API server's IsConfigMapKey (k8s.io/apimachinery validation): the characters and
    length, and no "." or ".." or leading ".." (kubelet's atomic writer owns those names)."""
    return (
        re.fullmatch(r"[-._a-zA-Z0-9]{1,253}", key) is not None
        and key not in (".", "..")
        and not key.startswith("..")
    )


@pytest.mark.parametrize("client_id", ["..data", "..", ".", "..x"])
def test_a_client_id_that_would_start_a_key_with_two_dots_does_not_refuse_the_set(world, client_id):
    """clientId.value is anyone's choice: `..x.jwks.json` is a key the API server refuses,
    and the whole ConfigMap with it, every other client's keys included."""
    assert client_jwks_file(client_id) is None
    odd = world({**SPEC, "clientId": {"value": client_id}}, name="odd")
    other = world({**SPEC, "serviceAccount": "b"}, name="other")
    odd.converge()
    other.converge()
    data = decide(odd, other).config_map["data"]
    assert all(_config_map_key_ok(key) for key in data)
    assert client_jwks_file(other.data()["client_id"]) in data
