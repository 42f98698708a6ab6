"""The operator's KeyPair JWKs, in a JWK Set, verify signatures made with their private keys
through credsmith_verify.JwkSet: the verifier reads what the issuer writes."""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from credsmith.api.enums import KeyAlgorithm
from credsmith.issuing.keypair import new_key_pair
from credsmith.reconcile.jwks import CLIENT_ID_MEMBER
from credsmith_verify import JwkSet

SIGNING_INPUT = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJjbGllbnQifQ"
CLIENT = "0b6c1c1e-2f0e-4c43-9d0a-7f6f2c8e5a11"


def sign(private_pem: str, alg: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(SIGNING_INPUT)
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384()}[alg[2:]]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(SIGNING_INPUT, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.sign(SIGNING_INPUT, padding.PKCS1v15(), digest)


@pytest.mark.parametrize(
    "algorithm",
    [KeyAlgorithm.ED25519, KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384, KeyAlgorithm.RSA_2048],
)
def test_operator_key_pairs_verify_through_a_jwk_set(
    tmp_path: Path, algorithm: KeyAlgorithm
) -> None:
    current, previous = new_key_pair(algorithm), new_key_pair(algorithm)
    path = tmp_path / "jwks.json"
    path.write_text(
        json.dumps(
            {
                "keys": [
                    {**json.loads(k.public_jwk_json()), CLIENT_ID_MEMBER: CLIENT}
                    for k in (current, previous)
                ]
            }
        )
    )
    keys = JwkSet.load(path)
    assert keys.kids() == {current.key_id, previous.key_id}
    alg = current.public_jwk["alg"]
    for pair in (current, previous):
        assert keys.verify(
            pair.key_id, alg, SIGNING_INPUT, sign(pair.private_key_pem, alg), client_id=CLIENT
        )
    signature = sign(current.private_key_pem, alg)
    assert not keys.verify(previous.key_id, alg, SIGNING_INPUT, signature, client_id=CLIENT)
    assert not keys.verify(current.key_id, alg, SIGNING_INPUT + b".", signature, client_id=CLIENT)
    assert not keys.verify(current.key_id, alg, SIGNING_INPUT, signature, client_id="other")


def test_a_pyjwt_client_assertion_verifies_for_its_client_only(tmp_path: Path) -> None:
    """What a client library writes (PyJWT) with an operator key pair is what
    verify_assertion reads, and only for the client the key is bound to."""
    pair = new_key_pair(KeyAlgorithm.ECDSA_P256)
    path = tmp_path / "jwks.json"
    jwk = {**json.loads(pair.public_jwk_json()), CLIENT_ID_MEMBER: CLIENT}
    path.write_text(json.dumps({"keys": [jwk]}))
    keys = JwkSet.load(path)
    audience = "https://issuer.example/token"
    claims = {"iss": CLIENT, "sub": CLIENT, "aud": audience, "exp": 2**31, "jti": "1"}
    token = jwt.encode(
        claims, pair.private_key_pem, algorithm="ES256", headers={"kid": pair.key_id}
    )
    found = keys.verify_assertion(token, client_id=CLIENT, audience=audience)
    assert found is not None
    assert found["sub"] == CLIENT
    as_other = {**claims, "iss": "other", "sub": "other"}
    other = jwt.encode(
        as_other, pair.private_key_pem, algorithm="ES256", headers={"kid": pair.key_id}
    )
    assert keys.verify_assertion(other, client_id="other", audience=audience) is None
