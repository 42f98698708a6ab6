"""A private key planted in a KeyPair credential's Secret (by anyone who may write it, no
read needed) is parsed before its fingerprint is compared, and the key is checked as it is
loaded: an RSA key of 8192 bits took 4.5 s to load here, one of 16384 bits some 30 s, on
every pass of the credential and every rebuild of its JWK Set (on the operator's event
loop). No PEM longer than the largest the operator writes (RSA-4096) is parsed at all."""

from __future__ import annotations

import base64
import textwrap

import pytest
from cryptography.hazmat.primitives import serialization  # the module keypair loads keys with

from credsmith.api.enums import KeyAlgorithm
from credsmith.issuing import keypair
from credsmith.reconcile.jwks import reconcile_jwks

SA = {"serviceAccount": "billing-exporter", "type": "KeyPair"}


def huge_pem(size: int) -> str:
    body = base64.b64encode(b"\x30" * size).decode()
    lines = "\n".join(textwrap.wrap(body, 64))
    return f"-----BEGIN PRIVATE KEY-----\n{lines}\n-----END PRIVATE KEY-----\n"


def test_a_planted_oversized_private_key_is_never_parsed(world, monkeypatch):
    loaded: list[int] = []
    real = serialization.load_pem_private_key

    def spy(data, password, *args, **kwargs):
        loaded.append(len(data))
        return real(data, password, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", spy)
    w = world(SA)
    w.converge()
    planted = huge_pem(4800)  # the size of an RSA-8192 key's PKCS#8 PEM
    assert len(planted) > 6000

    def change(secret):
        secret["data"]["private_key.pem"] = base64.b64encode(planted.encode()).decode()

    w.edit_secret(change)
    loaded.clear()
    decision = w.step()
    assert [e.reason for e in decision.events if e.type == "Warning"] == ["Reissued"]
    assert all(size <= keypair.MAX_PRIVATE_KEY_PEM for size in loaded), loaded
    assert w.data()["private_key.pem"] != planted


@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_every_key_the_operator_writes_fits(algorithm):
    pem = keypair.new_key_pair(algorithm).private_key_pem
    assert len(pem.encode()) <= keypair.MAX_PRIVATE_KEY_PEM
    assert keypair.key_pair_from_private_pem(pem).private_key_pem == pem


def test_a_key_is_loaded_once_not_on_every_check(world, monkeypatch):
    """Loading checks the key (an RSA-4096 one took 0.1 to 0.5 s here): a pass and each JWK
    Set rebuild loaded every member's key three times, the rebuilds on the event loop."""
    w = world({**SA, "keyPair": {"algorithm": "RSA-4096", "jwks": {"name": "keys"}}})
    w.converge()
    loaded: list[int] = []
    real = serialization.load_pem_private_key

    def spy(data, password, *args, **kwargs):
        loaded.append(len(data))
        return real(data, password, *args, **kwargs)

    monkeypatch.setattr(serialization, "load_pem_private_key", spy)
    for _ in range(2):
        reconcile_jwks(
            "team-a", "keys", [(w.snapshot(), w.secret_snapshot())], None, w.now, w.state_key
        )
        w.step()
    assert len(loaded) <= 1
