"""Public keys of KeyPair credentials from a JWK Set file (RFC 7517), by key ID and client.

A server that accepts ``private_key_jwt`` client assertions (RFC 7523) mounts the JWK Set
ConfigMap the operator maintains and checks each assertion with the key of the client it
claims to come from::

    from credsmith_verify import JwkSet

    keys = JwkSet.load("/etc/credsmith/jwks/jwks.json")
    claims = keys.verify_assertion(assertion, client_id=client_id, audience=token_endpoint)
    if claims is None: ...   # 401

Every key the operator publishes names its client in a ``client_id`` member, and a key
verifies only for that client: a KeyPair credential's key never signs for another client
of the same set. (The ConfigMap also holds ``<clientId>.jwks.json``, one client's keys
alone, for servers that configure a ``jwks_uri`` per client; loading that file works the
same.) A key without ``client_id`` (a set from elsewhere) verifies for no client.

`verify_assertion` checks the compact JWS (a ``kid`` in its header, an ``alg`` the key
allows) and the claims RFC 7523 section 3 requires: ``iss`` and ``sub`` are the client ID,
``aud`` names the audience, ``exp`` is in the future (``nbf`` and ``iat`` not), within a
small leeway; it returns the claims. Replay (``jti``) is the caller's to check.
`verify(kid, alg, signing_input, signature, client_id=...)` checks one signature (RFC
7515/7518/8037: RS256/384/512, PS256/384/512, ES256/384/512, EdDSA), and
`key(kid, client_id=...)` gives the `cryptography` public key for other uses (a JOSE
library, for instance).

Like `ClientRegistry`, the set is re-read when the file changes, a missing or unparsable
file keeps the last good set in use (with a warning), and before any good set was read it
is empty: every check fails. Keys the set cannot use are left out, as RFC 7517 section 5
asks: unknown key types or curves, ``use`` other than ``sig``, missing members, values out
of range, a ``client_id`` that is not a string, and any key carrying private members (a
leaked private key is never used). A key ID listed twice is left out altogether.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import os
import time
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


CLIENT_ID_MEMBER = "client_id"
# Clock skew tolerated on exp, nbf and iat (seconds).
ASSERTION_LEEWAY = 60


@dataclass(frozen=True)
class JsonWebKey:
    kid: str
    kty: str
    crv: str | None
    alg: str | None
    public_key: PublicKey
    client_id: str | None = None  # the client the key belongs to (None: no client)

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
    client_id = member.get(CLIENT_ID_MEMBER)
    if not (client_id is None or (isinstance(client_id, str) and client_id)):
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
    curve = crv if isinstance(crv, str) else None
    return JsonWebKey(kid, str(kty), curve, alg, public_key, client_id)


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

    def kids(self, client_id: str | None = None) -> frozenset[str]:
        """The key IDs of the set, or of one client's keys."""
        self._file.refresh()
        keys = self._file.value.values()
        return frozenset(k.kid for k in keys if client_id is None or k.client_id == client_id)

    def key(self, kid: str, *, client_id: str) -> JsonWebKey | None:
        """The key with this ID if it belongs to that client, re-reading the file first if
        it changed. Another client's key is None, as a missing one is."""
        self._file.refresh()
        key = self._file.value.get(kid)
        return key if key is not None and key.client_id == client_id else None

    def verify(
        self, kid: str, alg: str, signing_input: bytes, signature: bytes, *, client_id: str
    ) -> bool:
        """Whether `signature` is a valid JWS signature (RFC 7518 encoding: raw R||S for
        ECDSA) of `signing_input` by the key `kid` of the client `client_id`, with an `alg`
        that key allows."""
        key = self.key(kid, client_id=client_id)
        if key is None or not key.allows(alg):
            return False
        try:
            _verify(key, alg, signing_input, signature)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    def verify_assertion(
        self, assertion: str, *, client_id: str, audience: str, now: float | None = None
    ) -> dict[str, Any] | None:
        """The claims of a ``private_key_jwt`` client assertion (RFC 7523) from `client_id`
        to `audience`, or None: signed by a key of that client, iss = sub = client_id, aud
        naming `audience`, not expired (exp required), not before nbf or iat."""
        try:
            header, claims, signing_input, signature = _split_jws(assertion)
        except (ValueError, TypeError, UnicodeDecodeError):
            return None
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or not isinstance(alg, str) or header.get("crit"):
            return None
        if not self.verify(kid, alg, signing_input, signature, client_id=client_id):
            return None
        moment = time.time() if now is None else now
        return claims if _claims_ok(claims, client_id, audience, moment) else None


def _split_jws(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWS; ValueError if it is
    not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("header or claims are not JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url(parts[2])


def _claims_ok(claims: Mapping[str, Any], client_id: str, audience: str, now: float) -> bool:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        return False
    aud = claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        return False
    exp, nbf, iat = (_number(claims.get(name, 0)) for name in ("exp", "nbf", "iat"))
    if "exp" not in claims or exp is None or nbf is None or iat is None:
        return False
    late = now + ASSERTION_LEEWAY
    return exp > now - ASSERTION_LEEWAY and nbf <= late and iat <= late


def _number(value: object) -> float | None:
    """A NumericDate (RFC 7519 section 2), or None. Finite: Python's json reads Infinity
    and NaN, which JSON has not (an assertion with exp Infinity would never expire)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


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
