"""Key pairs: PEMs, JWK, RFC 7638 thumbprints, adoption from an existing private key."""

import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from credsmith.api.enums import KeyAlgorithm
from credsmith.issuing.keypair import (
    KeyPair,
    jwk_thumbprint,
    key_algorithm_of,
    key_pair_from_private_pem,
    new_key_pair,
)

MESSAGE = b"credsmith signs this"
RSA_BITS = {KeyAlgorithm.RSA_2048: 2048, KeyAlgorithm.RSA_3072: 3072, KeyAlgorithm.RSA_4096: 4096}
EC_CURVES = {KeyAlgorithm.ECDSA_P256: ("P-256", 32), KeyAlgorithm.ECDSA_P384: ("P-384", 48)}
JWS_ALG = {
    KeyAlgorithm.ED25519: "EdDSA",
    KeyAlgorithm.ECDSA_P256: "ES256",
    KeyAlgorithm.ECDSA_P384: "ES384",
    KeyAlgorithm.RSA_2048: "RS256",
    KeyAlgorithm.RSA_3072: "RS256",
    KeyAlgorithm.RSA_4096: "RS256",
}
PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def b64url_decode(text: str) -> bytes:
    assert "=" not in text
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pem_of(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module", params=list(KeyAlgorithm), ids=str)
def generated(request: pytest.FixtureRequest) -> tuple[KeyAlgorithm, KeyPair]:
    """One key pair per algorithm for the whole module: RSA-4096 generation is slow."""
    algorithm: KeyAlgorithm = request.param
    return algorithm, new_key_pair(algorithm)


def sign_and_verify(pair: KeyPair, algorithm: KeyAlgorithm) -> None:
    """Sign with the private PEM; verify with the public PEM and with a key built from the JWK."""
    private = serialization.load_pem_private_key(pair.private_key_pem.encode(), password=None)
    public = serialization.load_pem_public_key(pair.public_key_pem.encode())
    jwk = pair.public_jwk
    if algorithm is KeyAlgorithm.ED25519:
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        assert isinstance(public, ed25519.Ed25519PublicKey)
        signature = private.sign(MESSAGE)
        public.verify(signature, MESSAGE)
        ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(jwk["x"])).verify(
            signature, MESSAGE
        )
    elif algorithm in EC_CURVES:
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        digest = hashes.SHA256() if algorithm is KeyAlgorithm.ECDSA_P256 else hashes.SHA384()
        signature = private.sign(MESSAGE, ec.ECDSA(digest))
        public.verify(signature, MESSAGE, ec.ECDSA(digest))
        from_jwk = ec.EllipticCurvePublicNumbers(
            int.from_bytes(b64url_decode(jwk["x"]), "big"),
            int.from_bytes(b64url_decode(jwk["y"]), "big"),
            private.curve,
        ).public_key()
        from_jwk.verify(signature, MESSAGE, ec.ECDSA(digest))
    else:
        assert isinstance(private, rsa.RSAPrivateKey)
        assert isinstance(public, rsa.RSAPublicKey)
        signature = private.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        from_jwk_rsa = rsa.RSAPublicNumbers(
            int.from_bytes(b64url_decode(jwk["e"]), "big"),
            int.from_bytes(b64url_decode(jwk["n"]), "big"),
        ).public_key()
        from_jwk_rsa.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())


def test_pems_load_and_sign(generated: tuple[KeyAlgorithm, KeyPair]) -> None:
    algorithm, pair = generated
    assert pair.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    assert pair.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----\n")  # SPKI
    sign_and_verify(pair, algorithm)


def test_jwk_members(generated: tuple[KeyAlgorithm, KeyPair]) -> None:
    algorithm, pair = generated
    jwk = pair.public_jwk
    assert jwk["alg"] == JWS_ALG[algorithm]
    assert jwk["use"] == "sig"
    assert jwk["kid"] == pair.key_id == jwk_thumbprint(jwk)
    assert not PRIVATE_JWK_MEMBERS & set(jwk)
    if algorithm is KeyAlgorithm.ED25519:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
        assert len(b64url_decode(jwk["x"])) == 32
    elif algorithm in EC_CURVES:
        curve, size = EC_CURVES[algorithm]
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"]) == ("EC", curve)
        # Fixed-length coordinates, even when the leading byte is zero.
        assert len(b64url_decode(jwk["x"])) == size
        assert len(b64url_decode(jwk["y"])) == size
    else:
        assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
        assert jwk["kty"] == "RSA"
        assert jwk["e"] == "AQAB"  # 65537
        n = b64url_decode(jwk["n"])
        assert n[0] != 0  # minimal encoding
        assert int.from_bytes(n, "big").bit_length() == RSA_BITS[algorithm]


def test_key_id_is_the_thumbprint_of_the_public_key(
    generated: tuple[KeyAlgorithm, KeyPair],
) -> None:
    """Recompute RFC 7638 here from the definition, independently of the module."""
    _, pair = generated
    jwk = pair.public_jwk
    required = {
        "EC": ["crv", "kty", "x", "y"],
        "OKP": ["crv", "kty", "x"],
        "RSA": ["e", "kty", "n"],
    }
    canonical = "{" + ",".join(f'"{k}":"{jwk[k]}"' for k in required[jwk["kty"]]) + "}"
    digest = hashes.Hash(hashes.SHA256())
    digest.update(canonical.encode())
    expected = base64.urlsafe_b64encode(digest.finalize()).rstrip(b"=").decode()
    assert pair.key_id == expected
    assert len(pair.key_id) == 43


def test_public_jwk_json_is_compact_and_sorted(generated: tuple[KeyAlgorithm, KeyPair]) -> None:
    _, pair = generated
    text = pair.public_jwk_json()
    assert json.loads(text) == pair.public_jwk
    assert " " not in text
    assert list(json.loads(text)) == sorted(pair.public_jwk)


def test_adopting_the_private_key_rebuilds_everything(
    generated: tuple[KeyAlgorithm, KeyPair],
) -> None:
    algorithm, pair = generated
    adopted = key_pair_from_private_pem(pair.private_key_pem)
    assert adopted == pair
    assert adopted.public_jwk_json() == pair.public_jwk_json()
    assert key_algorithm_of(pair.private_key_pem) is algorithm


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()], ids=["P-256", "P-384"])
def test_ec_coordinates_keep_leading_zero_bytes(curve: ec.EllipticCurve) -> None:
    """About one key in 256 has an x coordinate with a leading zero byte: find one, so the
    fixed-length encoding (RFC 7518 6.2.1.2) is tested deterministically."""
    size = (curve.key_size + 7) // 8
    for _ in range(20_000):
        key = ec.generate_private_key(curve)
        if key.public_key().public_numbers().x < 1 << (8 * (size - 1)):
            break
    else:  # pragma: no cover - odds about 1e-34
        pytest.fail("no key with a short x coordinate found")
    pair = key_pair_from_private_pem(pem_of(key))
    x = b64url_decode(pair.public_jwk["x"])
    assert len(x) == size
    assert x[0] == 0
    assert int.from_bytes(x, "big") == key.public_key().public_numbers().x


def test_new_key_pairs_differ() -> None:
    first, second = new_key_pair(KeyAlgorithm.ED25519), new_key_pair(KeyAlgorithm.ED25519)
    assert first.key_id != second.key_id
    assert first != second


def test_repr_hides_the_private_key(generated: tuple[KeyAlgorithm, KeyPair]) -> None:
    _, pair = generated
    body = pair.private_key_pem.splitlines()[1]
    assert body not in repr(pair)
    assert "PRIVATE" not in repr(pair)
    assert hash(pair) == hash(key_pair_from_private_pem(pair.private_key_pem))


def test_rfc7638_section_3_1_example() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
        "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5"
        "v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08q"
        "NLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJ"
        "zKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


# RFC 8037 appendix A.1 (private key), A.2 (public key), A.3 (thumbprint).
RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"
RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_rfc8037_appendix_a3_example() -> None:
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    assert jwk_thumbprint(jwk) == RFC8037_THUMBPRINT


def test_rfc8037_private_key_is_adopted_with_the_rfc_thumbprint() -> None:
    key = ed25519.Ed25519PrivateKey.from_private_bytes(b64url_decode(RFC8037_D))
    pair = key_pair_from_private_pem(pem_of(key))
    assert pair.public_jwk["x"] == RFC8037_X
    assert pair.key_id == pair.public_jwk["kid"] == RFC8037_THUMBPRINT
    assert key_algorithm_of(pair.private_key_pem) is KeyAlgorithm.ED25519


def test_thumbprint_ignores_optional_members_and_their_order() -> None:
    base = {"kty": "OKP", "crv": "Ed25519", "x": RFC8037_X}
    decorated = {"use": "sig", "x": RFC8037_X, "alg": "EdDSA", "crv": "Ed25519", "kty": "OKP"}
    assert jwk_thumbprint(decorated) == jwk_thumbprint(base)


def test_thumbprint_refuses_incomplete_or_unknown_keys() -> None:
    with pytest.raises(ValueError, match="required"):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": "AAAA"})
    with pytest.raises(ValueError, match="key type"):
        jwk_thumbprint({"kty": "oct", "k": "AAAA"})


def test_pkcs1_rsa_key_is_adopted_as_pkcs8() -> None:
    key = rsa.generate_private_key(65537, 2048)
    traditional = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    assert traditional.startswith("-----BEGIN RSA PRIVATE KEY-----")
    pair = key_pair_from_private_pem(traditional)
    assert pair.private_key_pem == pem_of(key)
    assert key_algorithm_of(traditional) is KeyAlgorithm.RSA_2048


def test_garbage_is_refused_without_quoting_it() -> None:
    garbage = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LW1hdGVyaWFs\n-----END PRIVATE KEY-----\n"
    for pem in (garbage, "", "not a pem at all"):
        with pytest.raises(ValueError, match="not an unencrypted PEM private key") as info:
            key_pair_from_private_pem(pem)
        assert "c2VjcmV0" not in str(info.value)
        with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
            key_algorithm_of(pem)


def test_encrypted_key_is_refused() -> None:
    encrypted = (
        ed25519.Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="unencrypted"):
        key_pair_from_private_pem(encrypted)


def test_a_public_key_is_not_a_private_key(generated: tuple[KeyAlgorithm, KeyPair]) -> None:
    _, pair = generated
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        key_algorithm_of(pair.public_key_pem)


@pytest.mark.parametrize(
    ("make_key", "message"),
    [
        (lambda: ec.generate_private_key(ec.SECP521R1()), "curve"),
        (lambda: ec.generate_private_key(ec.SECP256K1()), "curve"),
        (lambda: rsa.generate_private_key(65537, 1024), "RSA key size"),  # noqa: S505
        (lambda: ed448.Ed448PrivateKey.generate(), "key type"),
    ],
    ids=["P-521", "secp256k1", "RSA-1024", "Ed448"],
)
def test_unsupported_keys_are_refused(make_key: object, message: str) -> None:
    key = make_key()  # type: ignore[operator]
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    with pytest.raises(ValueError, match=message):
        key_algorithm_of(pem)
    with pytest.raises(ValueError, match=message):
        key_pair_from_private_pem(pem)
