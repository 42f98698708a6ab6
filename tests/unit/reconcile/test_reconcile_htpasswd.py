"""registry.formats Htpasswd: one `clientId:bcrypt` line per client in the registry's
`auth` key, made once per value, only of the current secret, never of a forged hash."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import bcrypt
import pytest

from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.registry import HTPASSWD_FILE, reconcile_registry
from tests.state_key import TEST_STATE_KEY

HTPASSWD = {
    "displayName": "Gateway client",
    "registry": {"name": "reg", "formats": ["ClientsJSON", "Htpasswd"]},
    "rotation": {"overlap": "1h"},
}
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def registry_of(w: Any) -> dict[str, str]:
    decision = reconcile_registry(
        "team-a", "reg", [(w.snapshot(), w.secret_snapshot())], None, w.now, TEST_STATE_KEY
    )
    assert decision.secret is not None
    return {k: base64.b64decode(v).decode() for k, v in decision.secret["data"].items()}


def users(auth: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in auth.splitlines())


def test_a_line_per_client_that_bcrypt_verifies(world):
    w = world(HTPASSWD, rules=API_CLIENT)
    w.converge()
    auth = registry_of(w)[HTPASSWD_FILE]
    assert registry_of(w)["users"] == auth  # Traefik's key
    lines = users(auth)
    assert list(lines) == [w.data()["client_id"]]
    made = lines[w.data()["client_id"]]
    assert made.startswith("$2b$10$")
    assert bcrypt.checkpw(w.data()["client_secret"].encode(), made.encode())
    assert not bcrypt.checkpw(b"wrong", made.encode())
    assert w.data()["client_secret"] not in auth


def test_the_hash_is_made_once_per_value_and_only_the_current_is_listed(world):
    w = world(HTPASSWD, rules=API_CLIENT)
    w.converge()
    first = registry_of(w)[HTPASSWD_FILE]
    w.converge()
    assert registry_of(w)[HTPASSWD_FILE] == first  # no new salt: no registry write
    old = w.data()["client_secret"]
    w.annotate(ROTATE_ANNOTATION, "r1")
    w.step()
    auth = registry_of(w)[HTPASSWD_FILE]
    [made] = users(auth).values()
    assert bcrypt.checkpw(w.data()["client_secret"].encode(), made.encode())
    assert not bcrypt.checkpw(old.encode(), made.encode())  # gateways read one line a user


def test_a_forged_htpasswd_hash_is_never_listed(world):
    w = world(HTPASSWD, rules=API_CLIENT)
    w.converge()
    forged = bcrypt.hashpw(b"chosen", bcrypt.gensalt(rounds=4)).decode()
    w.edit_secret(
        lambda s: s["metadata"]["annotations"].update({"credsmith.io/htpasswd-hash": forged})
    )
    assert forged not in registry_of(w)[HTPASSWD_FILE]
    decision = w.step()
    assert [e.reason for e in decision.events] == ["Untrusted"]
    [made] = users(registry_of(w)[HTPASSWD_FILE]).values()
    assert bcrypt.checkpw(w.data()["client_secret"].encode(), made.encode())


def test_without_htpasswd_there_is_no_auth_key(world):
    w = world({**HTPASSWD, "registry": {"name": "reg"}}, rules=API_CLIENT)
    w.converge()
    assert set(registry_of(w)) == {"clients.json"}
    assert "credsmith.io/htpasswd-hash" not in w.secret["metadata"]["annotations"]


@pytest.mark.parametrize(
    "spec",
    [
        {"secret": {"length": 70, "prefix": "sk_"}},  # 73 bytes
        {"secret": {"length": 68, "checksum": True}},  # 74 bytes
        {"clientId": {"value": "a:b"}},
    ],
)
def test_what_htpasswd_cannot_hold_is_an_invalid_spec(world, spec):
    w = world({**HTPASSWD, **spec}, rules=API_CLIENT)
    w.step()
    assert w.condition()["reason"] == "InvalidSpec"
    assert "bcrypt" in w.condition()["message"]
    assert w.secret is None


def test_the_longest_secret_that_fits_is_listed_whole(world):
    w = world({**HTPASSWD, "secret": {"length": 66, "checksum": True}}, rules=API_CLIENT)
    w.converge()
    value = w.data()["client_secret"]
    assert len(value.encode()) == 72
    [made] = users(registry_of(w)[HTPASSWD_FILE]).values()
    assert bcrypt.checkpw(value.encode(), made.encode())
    assert not bcrypt.checkpw(value[:-1].encode() + b"!", made.encode())
