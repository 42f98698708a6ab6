"""Public keys of KeyPair credentials from a JWK Set file (RFC 7517), by key ID.

A server that accepts ``private_key_jwt`` client assertions (RFC 7523) or signed requests
mounts the JWK Set and looks up the key a message names in its ``kid``::

    from credsmith_verify import JwkSet

    keys = JwkSet.load("/etc/credsmith/jwks/jwks.json")
    if not keys.verify(kid, alg, signing_input, signature): ...   # 401

`verify` checks a JWS signature (RFC 7515/7518/8037: RS256/384/512, PS256/384/512,
ES256/384/512, EdDSA) with the key `kid` names, and only with an algorithm that fits the
key: the key's own ``alg`` if it has one, and always its type and curve. `key(kid)` gives
the `cryptography` public key for other uses (a JOSE library, for instance); claims such as
``exp``, ``aud`` and ``jti`` are the caller's to check.

Like `ClientRegistry`, the set is re-read when the file changes, a missing or unparsable
file keeps the last good set in use (with a warning), and before any good set was read it
is empty: every check fails. Keys the set cannot use are left out, as RFC 7517 section 5
asks: unknown key types or curves, ``use`` other than ``sig``, missing members, values out
of range, and any key carrying private members (a leaked private key is never used). A key
ID listed twice is left out altogether.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from credsmith_verify._watched import MountedDocument

JWKS_FILE = "jwks.json"

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

logger = logging.getLogger("credsmith_verify")

# RFC 7517 section 9.3 (and RFC 7518 sections 6.2.2, 6.3.2): members only a private key has.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_SHA: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_ES_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class JsonWebKey:
    kid: str
    kty: str
    crv: str | None
    alg: str | None
    public_key: PublicKey

    def allows(self, alg: str) -> bool:
        """Whether a JWS signed with `alg` may be checked with this key."""
        if self.alg is not None and alg != self.alg:
            return False
        if self.kty == "RSA":
            return alg[:2] in ("RS", "PS") and alg[2:] in _SHA
        if self.kty == "EC":
            return _ES_CURVE.get(alg) == self.crv
        return self.kty == "OKP" and alg == "EdDSA"


def parse_jwk_set(text: str) -> dict[str, JsonWebKey]:
    """The usable signature keys of a JWK Set by kid; raises ValueError (or TypeError) when
    the text is not a JWK Set at all."""
    document = json.loads(text)
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWK Set: no keys array")
    keys: dict[str, JsonWebKey] = {}
    duplicates: set[str] = set()
    skipped = 0
    for member in document["keys"]:
        key = _key(member) if isinstance(member, Mapping) else None
        if key is None:
            skipped += 1
            continue
        if key.kid in keys:
            duplicates.add(key.kid)
        keys[key.kid] = key
    for kid in duplicates:
        del keys[kid]
    if skipped or duplicates:
        logger.warning(
            "JWK Set: %d keys left out (unusable), %d key IDs listed more than once left out",
            skipped,
            len(duplicates),
        )
    return keys


def _key(member: Mapping[str, Any]) -> JsonWebKey | None:
    kid, kty, use, alg = (member.get(name) for name in ("kid", "kty", "use", "alg"))
    if not isinstance(kid, str) or not kid or _PRIVATE_MEMBERS & member.keys():
        return None
    if use not in (None, "sig") or not (alg is None or isinstance(alg, str)):
        return None
    crv = member.get("crv")
    try:
        public_key = _public_key(kty, crv, member)
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm):
        return None
    if public_key is None:
        return None
    return JsonWebKey(kid, str(kty), crv if isinstance(crv, str) else None, alg, public_key)


def _public_key(kty: object, crv: object, member: Mapping[str, Any]) -> PublicKey | None:
    if kty == "RSA":
        n, e = _int(member["n"]), _int(member["e"])
        if n.bit_length() < MIN_RSA_BITS:
            return None
        return rsa.RSAPublicNumbers(e, n).public_key()
    if kty == "EC" and isinstance(crv, str) and crv in _CURVES:
        curve, size = _CURVES[crv]
        x, y = _b64url(member["x"]), _b64url(member["y"])
        if len(x) != size or len(y) != size:
            return None
        numbers = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
        )
        return numbers.public_key()  # raises ValueError for a point not on the curve
    if kty == "OKP" and crv == "Ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(_b64url(member["x"]))
    if kty == "OKP" and crv == "Ed448":
        return ed448.Ed448PublicKey.from_public_bytes(_b64url(member["x"]))
    return None


def _b64url(value: object) -> bytes:
    """Unpadded base64url (RFC 7515 section 2), canonical only; ValueError otherwise."""
    if not isinstance(value, str) or len(value) % 4 == 1:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != value:
        raise ValueError("not canonical base64url")
    return data


def _int(value: object) -> int:
    data = _b64url(value)
    if not data or (len(data) > 1 and data[0] == 0):
        raise ValueError("not a minimal big-endian integer")
    return int.from_bytes(data, "big")


class JwkSet(MountedDocument[dict[str, JsonWebKey]]):
    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path, parse_jwk_set, {}, "JWK Set")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JwkSet:
        return cls(path)

    def __len__(self) -> int:
        return len(self._file.value)

    def kids(self) -> frozenset[str]:
        self._file.refresh()
        return frozenset(self._file.value)

    def key(self, kid: str) -> JsonWebKey | None:
        """The key with this ID, re-reading the file first if it changed."""
        self._file.refresh()
        return self._file.value.get(kid)

    def verify(self, kid: str, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Whether `signature` is a valid JWS signature (RFC 7518 encoding: raw R||S for
        ECDSA) of `signing_input` by the key `kid`, with an `alg` that key allows."""
        key = self.key(kid)
        if key is None or not key.allows(alg):
            return False
        try:
            _verify(key, alg, signing_input, signature)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True


def _verify(key: JsonWebKey, alg: str, data: bytes, signature: bytes) -> None:
    public = key.public_key
    if isinstance(public, rsa.RSAPublicKey):
        digest = _SHA[alg[2:]]()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg.startswith("RS")
            else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        )
        public.verify(signature, data, pad, digest)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        size = _CURVES[_ES_CURVE[alg]][1]
        if len(signature) != 2 * size:
            raise InvalidSignature
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        public.verify(encode_dss_signature(r, s), data, ec.ECDSA(_SHA[alg[2:]]()))
    else:
        public.verify(signature, data)
