"""Signing key pairs with their PEM encodings, public JWK and RFC 7638 key ID.

Everything public is derived from the private key alone, so the operator can adopt an existing
Secret (after a crash between writing it and writing status) by re-deriving the rest.
"""

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from credsmith.api.enums import KeyAlgorithm

RSA_PUBLIC_EXPONENT = 65537

# The longest private key PEM the operator writes (an RSA-4096 PKCS#8 PEM is 3272 bytes),
# with room to spare; a longer one is no key of ours.
MAX_PRIVATE_KEY_PEM = 4096
_RSA_SIZES: dict[KeyAlgorithm, int] = {
    KeyAlgorithm.RSA_2048: 2048,
    KeyAlgorithm.RSA_3072: 3072,
    KeyAlgorithm.RSA_4096: 4096,
}
_EC_CURVES: dict[KeyAlgorithm, ec.EllipticCurve] = {
    KeyAlgorithm.ECDSA_P256: ec.SECP256R1(),
    KeyAlgorithm.ECDSA_P384: ec.SECP384R1(),
}
# JWA names (RFC 7518 section 3.1, RFC 8037 section 3.1) and JWK curve names.
_JWS_ALG: dict[KeyAlgorithm, str] = {
    KeyAlgorithm.ED25519: "EdDSA",
    KeyAlgorithm.ECDSA_P256: "ES256",
    KeyAlgorithm.ECDSA_P384: "ES384",
    KeyAlgorithm.RSA_2048: "RS256",
    KeyAlgorithm.RSA_3072: "RS256",
    KeyAlgorithm.RSA_4096: "RS256",
}
_JWK_CURVE: dict[KeyAlgorithm, str] = {
    KeyAlgorithm.ECDSA_P256: "P-256",
    KeyAlgorithm.ECDSA_P384: "P-384",
}
# RFC 7638 section 3.2: the members a thumbprint covers, per key type.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class KeyPair:
    """A private key and everything a verifier needs, ready to be written to a Secret."""

    # repr=False: a KeyPair in a log line or a traceback must not print the private key.
    private_key_pem: str = field(repr=False)
    """PKCS#8, unencrypted (the Secret is the protection)."""
    public_key_pem: str
    """SubjectPublicKeyInfo."""
    public_jwk: dict[str, str] = field(hash=False)
    """RFC 7517 public JWK with kid (= key_id), alg and use=sig."""
    key_id: str
    """RFC 7638 SHA-256 thumbprint, base64url without padding."""

    def public_jwk_json(self) -> str:
        """The public JWK as compact JSON with sorted keys, so equal keys give equal bytes."""
        return json.dumps(self.public_jwk, sort_keys=True, separators=(",", ":"))


def new_key_pair(algorithm: KeyAlgorithm) -> KeyPair:
    """A freshly generated key pair for `algorithm`."""
    key: _PrivateKey
    if algorithm is KeyAlgorithm.ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif algorithm in _EC_CURVES:
        key = ec.generate_private_key(_EC_CURVES[algorithm])
    elif algorithm in _RSA_SIZES:
        key = rsa.generate_private_key(RSA_PUBLIC_EXPONENT, _RSA_SIZES[algorithm])
    else:  # pragma: no cover - exhaustive over the enum
        raise ValueError(f"unsupported key algorithm: {algorithm!r}")
    return _key_pair(key, algorithm)


def key_pair_from_private_pem(pem: str) -> KeyPair:
    """Rebuild every field from a private key PEM; for our own PEMs the result equals the original.

    Raises ValueError (never quoting the PEM) if it is not an unencrypted private key of a
    supported algorithm.
    """
    key = _load_private_key(pem)
    return _key_pair(key, _algorithm_of_key(key))


def key_algorithm_of(pem: str) -> KeyAlgorithm:
    """The algorithm of a private key PEM, to tell whether a stored key matches the spec."""
    return _algorithm_of_key(_load_private_key(pem))


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 JWK thumbprint: SHA-256 over the required members only, sorted, no whitespace.

    Optional members (kid, alg, use, ...) are ignored, so the thumbprint identifies the key
    itself. The member values are base64url or fixed names, so JSON escaping never matters.
    """
    kty = jwk.get("kty", "")
    members = _THUMBPRINT_MEMBERS.get(kty)
    if members is None:
        raise ValueError(f"unsupported JWK key type: {kty!r}")
    missing = [name for name in members if name not in jwk]
    if missing:
        raise ValueError(f"JWK lacks required members: {', '.join(missing)}")
    canonical = json.dumps(
        {name: jwk[name] for name in members}, sort_keys=True, separators=(",", ":")
    )
    return _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


def _key_pair(key: _PrivateKey, algorithm: KeyAlgorithm) -> KeyPair:
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    public_key = key.public_key()
    public_pem = public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    jwk = _public_jwk_members(key, algorithm)
    key_id = jwk_thumbprint(jwk)
    jwk.update(kid=key_id, alg=_JWS_ALG[algorithm], use="sig")
    return KeyPair(
        private_key_pem=private_pem,
        public_key_pem=public_pem,
        public_jwk=jwk,
        key_id=key_id,
    )


def _public_jwk_members(key: _PrivateKey, algorithm: KeyAlgorithm) -> dict[str, str]:
    """The key-type members of the public JWK (RFC 7518 section 6, RFC 8037 section 2)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(raw)}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        numbers = key.public_key().public_numbers()
        # Coordinates are fixed-length, left-padded to the field size (RFC 7518 6.2.1.2).
        size = (key.curve.key_size + 7) // 8
        return {
            "kty": "EC",
            "crv": _JWK_CURVE[algorithm],
            "x": _b64url(numbers.x.to_bytes(size, "big")),
            "y": _b64url(numbers.y.to_bytes(size, "big")),
        }
    rsa_numbers = key.public_key().public_numbers()
    # RSA integers are minimal big-endian (RFC 7518 6.3.1.1): no leading zero octets.
    return {
        "kty": "RSA",
        "n": _b64url(_minimal_bytes(rsa_numbers.n)),
        "e": _b64url(_minimal_bytes(rsa_numbers.e)),
    }


@lru_cache(maxsize=1024)
def _loaded(pem: str) -> PrivateKeyTypes | None:
    """The key, loaded once per process: loading checks it, and an RSA-4096 key took 0.1 to
    0.5 s to check, three times per pass and per JWK Set rebuild (key objects are
    immutable; the PEMs are in the Secret cache anyway)."""
    try:
        return serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # Our own words, and no exception chaining: cryptography's message is not needed.
        return None


def _load_private_key(pem: str) -> _PrivateKey:
    if len(pem.encode("utf-8")) > MAX_PRIVATE_KEY_PEM:
        # Not parsed at all: loading checks the key, and a planted RSA key of 8192 bits or
        # more takes seconds to minutes to check (on every pass, before any fingerprint).
        raise ValueError("not a private key of a supported size")
    key = _loaded(pem)
    if key is None:
        raise ValueError("not an unencrypted PEM private key")
    if not isinstance(
        key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ):
        raise ValueError(f"unsupported private key type: {type(key).__name__}")
    return key


def _algorithm_of_key(key: _PrivateKey) -> KeyAlgorithm:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return KeyAlgorithm.ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey):
        for algorithm, curve in _EC_CURVES.items():
            if key.curve.name == curve.name:
                return algorithm
        raise ValueError(f"unsupported elliptic curve: {key.curve.name}")
    for algorithm, size in _RSA_SIZES.items():
        if key.key_size == size:
            return algorithm
    raise ValueError(f"unsupported RSA key size: {key.key_size}")


def _minimal_bytes(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
