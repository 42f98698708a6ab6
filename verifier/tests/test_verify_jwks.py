"""JwkSet: public keys by kid from a JWK Set file, and JWS signature checks with them."""

from __future__ import annotations

import base64
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from credsmith_verify import JwkSet

MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjbGllbnQifQ"
CLIENT = "client-a"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: PrivateKey, kid: str, alg: str | None) -> dict[str, Any]:
    jwk: dict[str, Any]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes_raw()
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[key.curve.name]
        jwk = {
            "kty": "EC",
            "crv": crv,
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
        }
    else:
        numbers_rsa = key.public_key().public_numbers()
        n = numbers_rsa.n.to_bytes((numbers_rsa.n.bit_length() + 7) // 8, "big")
        jwk = {"kty": "RSA", "n": b64url(n), "e": b64url(b"\x01\x00\x01")}
    jwk.update(kid=kid, use="sig", client_id=CLIENT)
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def sign(key: PrivateKey, alg: str, data: bytes) -> bytes:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg.startswith("PS"):
        pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        return key.sign(data, pss, digest)
    return key.sign(data, padding.PKCS1v15(), digest)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


KEYS: dict[str, Any] = {
    "EdDSA": lambda: ed25519.Ed25519PrivateKey.generate(),
    "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ES512": lambda: ec.generate_private_key(ec.SECP521R1()),
}


def write_set(path: Path, *jwks: dict[str, Any]) -> None:
    replacement = path.with_name(path.name + ".new")
    replacement.write_text(json.dumps({"keys": list(jwks)}))
    os.replace(replacement, path)


@pytest.mark.parametrize("alg", [*KEYS, "RS256", "RS512", "PS256"])
def test_signatures_verify_with_the_key_the_kid_names(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, alg: str
) -> None:
    key = rsa_key if alg[:2] in ("RS", "PS") else KEYS[alg]()
    other = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    write_set(path, public_jwk(key, "k1", alg), public_jwk(other, "k2", "EdDSA"))
    keys = JwkSet.load(path)
    assert keys.loaded
    assert keys.kids() == {"k1", "k2"}
    signature = sign(key, alg, MESSAGE)
    assert keys.verify("k1", alg, MESSAGE, signature, client_id=CLIENT)
    assert not keys.verify("k1", alg, MESSAGE + b"x", signature, client_id=CLIENT)
    assert not keys.verify("k2", "EdDSA", MESSAGE, signature, client_id=CLIENT)  # another key
    assert not keys.verify("k3", alg, MESSAGE, signature, client_id=CLIENT)  # no such key
    assert not keys.verify(
        "k1", alg, MESSAGE, signature[:-1] + bytes([signature[-1] ^ 1]), client_id=CLIENT
    )
    found = keys.key("k1", client_id=CLIENT)
    assert found is not None
    assert found.alg == alg


def test_only_an_algorithm_that_fits_the_key_is_used(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    path = tmp_path / "jwks.json"
    p256 = ec.generate_private_key(ec.SECP256R1())
    jwk_rsa = public_jwk(rsa_key, "rsa", "RS256")
    jwk_rsa_any = public_jwk(rsa_key, "rsa-any", None)
    write_set(path, jwk_rsa, jwk_rsa_any, public_jwk(p256, "ec", None))
    keys = JwkSet.load(path)
    rs512 = sign(rsa_key, "RS512", MESSAGE)
    assert not keys.verify("rsa", "RS512", MESSAGE, rs512, client_id=CLIENT)  # the key says RS256
    assert keys.verify("rsa-any", "RS512", MESSAGE, rs512, client_id=CLIENT)  # no alg: any RSA one
    es256 = sign(p256, "ES256", MESSAGE)
    assert keys.verify("ec", "ES256", MESSAGE, es256, client_id=CLIENT)
    assert not keys.verify(
        "ec", "ES384", MESSAGE, es256, client_id=CLIENT
    )  # another curve's algorithm
    assert not keys.verify("ec", "none", MESSAGE, b"", client_id=CLIENT)
    assert not keys.verify("ec", "HS256", MESSAGE, es256, client_id=CLIENT)


def test_unusable_keys_are_left_out(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    good = ed25519.Ed25519PrivateKey.generate()
    p256 = public_jwk(ec.generate_private_key(ec.SECP256R1()), "off-curve", "ES256")
    p256["y"] = b64url(bytes(31) + b"\x01")
    small = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point: refused
    leaked = public_jwk(good, "leaked", "EdDSA")
    leaked["d"] = b64url(bytes(32))
    unpadded_x = public_jwk(good, "padded", "EdDSA")
    unpadded_x["x"] += "="
    members: list[Any] = [
        public_jwk(good, "good", "EdDSA"),
        {**public_jwk(good, "enc", "EdDSA"), "use": "enc"},
        {"kty": "oct", "kid": "hmac", "k": b64url(b"0" * 32)},
        {"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": b64url(bytes(32))},
        {k: v for k, v in public_jwk(good, "nokid", "EdDSA").items() if k != "kid"},
        {"kty": "EC", "crv": "P-256", "kid": "no-y", "x": p256["x"]},
        p256,
        public_jwk(small, "rsa-1024", "RS256"),
        leaked,
        unpadded_x,
        "not an object",
    ]
    path = tmp_path / "jwks.json"
    write_set(path, *members)
    keys = JwkSet.load(path)
    assert keys.kids() == {"good"}
    assert "10 keys left out" in caplog.text


def test_a_kid_listed_twice_is_left_out(tmp_path: Path) -> None:
    one, two = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    write_set(path, public_jwk(one, "k", "EdDSA"), public_jwk(two, "k", "EdDSA"))
    keys = JwkSet.load(path)
    assert keys.key("k", client_id=CLIENT) is None
    assert not keys.verify("k", "EdDSA", MESSAGE, one.sign(MESSAGE), client_id=CLIENT)


def test_reload_and_last_good_set(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="credsmith_verify")
    old, new = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    keys = JwkSet.load(path)  # no file yet: empty, no exception
    assert not keys.loaded
    assert not keys.verify("old", "EdDSA", MESSAGE, old.sign(MESSAGE), client_id=CLIENT)

    write_set(path, public_jwk(old, "old", "EdDSA"), public_jwk(new, "new", "EdDSA"))
    assert keys.verify(
        "old", "EdDSA", MESSAGE, old.sign(MESSAGE), client_id=CLIENT
    )  # during an overlap
    assert keys.verify("new", "EdDSA", MESSAGE, new.sign(MESSAGE), client_id=CLIENT)

    path.write_text('{"keys": [')  # half-written
    assert keys.verify("old", "EdDSA", MESSAGE, old.sign(MESSAGE), client_id=CLIENT)
    assert keys.error is not None

    write_set(path, public_jwk(new, "new", "EdDSA"))  # after the overlap
    assert not keys.verify("old", "EdDSA", MESSAGE, old.sign(MESSAGE), client_id=CLIENT)
    assert keys.verify("new", "EdDSA", MESSAGE, new.sign(MESSAGE), client_id=CLIENT)
    assert keys.error is None
    assert "serving an empty one" in caplog.text
    assert "still serving the last good version" in caplog.text


def test_the_operators_public_jwk_shape_loads(tmp_path: Path) -> None:
    """What a KeyPair credential's public_jwk.json holds: kty, crv/x/y or n/e, kid, alg, use."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = public_jwk(key, "thumbprint", "ES384")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [json.loads(json.dumps(jwk, sort_keys=True))]}))
    keys = JwkSet.load(path)
    assert keys.verify(
        "thumbprint", "ES384", MESSAGE, sign(key, "ES384", MESSAGE), client_id=CLIENT
    )


def assertion(
    key: ed25519.Ed25519PrivateKey, kid: str, claims: dict[str, Any], alg: str = "EdDSA"
) -> str:
    """A compact JWS of `claims`, as a client signs a private_key_jwt assertion."""
    header = b64url(json.dumps({"alg": alg, "kid": kid, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{body}".encode()
    return f"{header}.{body}.{b64url(key.sign(signing_input))}"


NOW = 1_800_000_000


def claims_of(client_id: str, **changes: Any) -> dict[str, Any]:
    claims = {"iss": client_id, "sub": client_id, "aud": "https://as/token", "exp": NOW + 60}
    return {**claims, "jti": "1", "iat": NOW, **changes}


def two_clients(
    tmp_path: Path,
) -> tuple[JwkSet, ed25519.Ed25519PrivateKey, ed25519.Ed25519PrivateKey]:
    a, b = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    write_set(
        path,
        {**public_jwk(a, "ka", "EdDSA"), "client_id": "client-a"},
        {**public_jwk(b, "kb", "EdDSA"), "client_id": "client-b"},
    )
    return JwkSet.load(path), a, b


def test_a_key_verifies_only_for_its_own_client(tmp_path: Path) -> None:
    """The kid is found, but bound to another client: refused, as a missing key is."""
    keys, _, b = two_clients(tmp_path)
    signed_by_b = b.sign(MESSAGE)
    assert keys.verify("kb", "EdDSA", MESSAGE, signed_by_b, client_id="client-b")
    assert not keys.verify("kb", "EdDSA", MESSAGE, signed_by_b, client_id="client-a")
    assert keys.key("kb", client_id="client-a") is None
    found = keys.key("kb", client_id="client-b")
    assert found is not None
    assert found.client_id == "client-b"
    assert keys.kids(client_id="client-a") == {"ka"}
    assert keys.kids() == {"ka", "kb"}


def test_a_key_without_a_client_verifies_for_none(tmp_path: Path) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    path = tmp_path / "jwks.json"
    unbound = public_jwk(key, "k", "EdDSA")
    del unbound["client_id"]
    write_set(path, unbound, {**public_jwk(key, "bad", "EdDSA"), "client_id": 7})
    keys = JwkSet.load(path)
    assert keys.kids() == {"k"}  # a client_id that is not a string: the key is unusable
    for client_id in ("", CLIENT, "None"):
        assert not keys.verify("k", "EdDSA", MESSAGE, key.sign(MESSAGE), client_id=client_id)


def test_a_client_assertion_verifies_with_its_claims(tmp_path: Path) -> None:
    keys, a, _ = two_clients(tmp_path)
    token = assertion(a, "ka", claims_of("client-a"))
    found = keys.verify_assertion(token, client_id="client-a", audience="https://as/token", now=NOW)
    assert found is not None
    assert found["sub"] == "client-a"
    listed = assertion(a, "ka", claims_of("client-a", aud=["x", "https://as/token"]))
    assert keys.verify_assertion(listed, client_id="client-a", audience="https://as/token", now=NOW)


def test_an_assertion_signed_by_another_clients_key_is_refused(tmp_path: Path) -> None:
    """Client B signs with its own key, kid and all, claiming to be client A."""
    keys, _, b = two_clients(tmp_path)
    forged = assertion(b, "kb", claims_of("client-a"))
    assert (
        keys.verify_assertion(forged, client_id="client-a", audience="https://as/token", now=NOW)
        is None
    )
    honest = assertion(b, "kb", claims_of("client-b"))
    assert keys.verify_assertion(honest, client_id="client-b", audience="https://as/token", now=NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"iss": "client-b"},
        {"sub": "client-b"},
        {"aud": "https://elsewhere/token"},
        {"aud": ["https://elsewhere/token"]},
        {"exp": NOW - 61},
        {"exp": None},
        {"exp": True},
        {"exp": "soon"},
        {"exp": float("inf")},  # "Infinity": Python's json reads it, JSON has no such number
        {"exp": float("nan")},
        {"iat": float("-inf")},
        {"exp": 10**400},  # an integer no float holds: refused, not raised
        {"nbf": NOW + 61},
        {"iat": NOW + 61},
    ],
    ids=str,
)
def test_assertions_with_wrong_claims_are_refused(tmp_path: Path, changes: dict[str, Any]) -> None:
    keys, a, _ = two_clients(tmp_path)
    claims = {k: v for k, v in claims_of("client-a", **changes).items() if v is not None}
    token = assertion(a, "ka", claims)
    assert (
        keys.verify_assertion(token, client_id="client-a", audience="https://as/token", now=NOW)
        is None
    )


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + ".x",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: "!" + t,
        lambda t: t[:-2] + ("AA" if t[-2:] != "AA" else "BB"),
        lambda t: b64url(b'{"alg":"none","kid":"ka"}') + "." + t.split(".", 1)[1],
        lambda t: b64url(b"[]") + "." + t.split(".", 1)[1],
    ],
)
def test_malformed_assertions_are_refused(tmp_path: Path, mangle: Any) -> None:
    keys, a, _ = two_clients(tmp_path)
    token = mangle(assertion(a, "ka", claims_of("client-a")))
    assert (
        keys.verify_assertion(token, client_id="client-a", audience="https://as/token", now=NOW)
        is None
    )
