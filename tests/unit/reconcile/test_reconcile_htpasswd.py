"""registry.formats Htpasswd: one `clientId:bcrypt` line per client in the registry's
`auth` key, made once per value, only of the current secret, never of a forged hash."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import bcrypt
import pytest

from credsmith.api.enums import RegistryFormat
from credsmith.api.status import Reason
from credsmith.reconcile.kinds import API_CLIENT
from credsmith.reconcile.registry import (
    HTPASSWD_FILE,
    fits_htpasswd,
    reconcile_registry,
    registry_formats,
)
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
    w.request_rotation("r1")
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


PLAIN = {"displayName": "Plain client", "registry": {"name": "reg"}}


def registry_of_all(*worlds: Any) -> Any:
    members = [(w.snapshot(), w.secret_snapshot()) for w in worlds]
    return reconcile_registry("team-a", "reg", members, None, worlds[0].now, TEST_STATE_KEY)


def test_formats_are_the_registrys_the_union_of_what_clients_ask(world):
    asks, plain = world(HTPASSWD, rules=API_CLIENT, name="gw"), world(PLAIN, rules=API_CLIENT)
    assert registry_formats([plain.snapshot()]) == {RegistryFormat.CLIENTS_JSON}
    assert registry_formats([asks.snapshot(), plain.snapshot()]) == {
        RegistryFormat.CLIENTS_JSON,
        RegistryFormat.HTPASSWD,
    }
    odd = world({**PLAIN, "registry": {"name": "reg", "formats": ["Nope", 3]}}, rules=API_CLIENT)
    assert registry_formats([odd.snapshot()]) == {RegistryFormat.CLIENTS_JSON}


def test_every_client_is_in_the_auth_file_another_client_turned_on(world):
    """The plain client asks only for clients.json, but shares the registry with one that
    asks for Htpasswd: it is in `auth` too (the runtime tells it; it keeps a bcrypt hash)."""
    asks, plain = world(HTPASSWD, rules=API_CLIENT, name="gw"), world(PLAIN, rules=API_CLIENT)
    plain.registry_htpasswd = True
    asks.converge()
    plain.converge()
    decision = registry_of_all(asks, plain)
    assert decision.secret is not None
    assert decision.left_out == {}
    auth = base64.b64decode(decision.secret["data"][HTPASSWD_FILE]).decode()
    lines = users(auth)
    for w in (asks, plain):
        made = lines[w.data()["client_id"]]
        assert bcrypt.checkpw(w.data()["client_secret"].encode(), made.encode())


def test_a_client_that_cannot_be_in_the_auth_file_is_reported(world):
    """Its secret is past bcrypt's 72 bytes: it stays in clients.json, but out of `auth`,
    and is reported (the runtime makes it Ready=False, InvalidSpec)."""
    asks = world(HTPASSWD, rules=API_CLIENT, name="gw")
    long = world({**PLAIN, "secret": {"length": 96}}, rules=API_CLIENT)
    assert not fits_htpasswd(long.snapshot())
    asks.converge()
    long.converge()  # no bcrypt hash: the runtime does not ask for one it cannot make
    decision = registry_of_all(asks, long)
    assert decision.clients == 2
    assert list(decision.left_out) == [long.snapshot().name]
    left_out = decision.left_out[long.snapshot().name]
    assert left_out.reason is Reason.INVALID_SPEC
    assert "72 bytes" in left_out.message
