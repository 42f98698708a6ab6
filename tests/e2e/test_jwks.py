"""keyPair.jwks.name end to end: the JWK Set ConfigMap holds every KeyPair credential's
public key, and an independent JOSE library (PyJWT's PyJWKClient, fetching the set from
Debian's nginx as a verifier would) accepts tokens signed with each private key; during a
rotation overlap the old key still verifies, after it only the new one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import jwt
import pytest
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, present, wait_for
from tests.e2e.nginx import MISSING, WHY_MISSING, nginx
from tests.e2e.test_service_account_credential import apply, get, read_secret, sacred

pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)
OVERLAP_SECONDS = 20
ALGORITHMS = {"Ed25519": "EdDSA", "ECDSA-P256": "ES256", "RSA-2048": "RS256"}


@pytest.fixture
def jwks_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """nginx serving one file, jwks.json, as the issuer's JWKS endpoint would."""
    root = tmp_path / "issuer"
    root.mkdir()
    with nginx(root, "location = /jwks.json { default_type application/json; }") as url:
        document = root / "html" / "jwks.json"
        document.write_text('{"keys": []}')
        yield f"{url}jwks.json", document


def publish(core: client.CoreV1Api, namespace: str, document: Path) -> dict[str, Any]:
    """The ConfigMap's jwks.json, written where the server reads it (as a kubelet mount)."""
    found = core.read_namespaced_config_map("client-keys", namespace)
    text = present(found.data)["jwks.json"]
    staged = document.with_suffix(".new")
    staged.write_text(text)
    staged.replace(document)
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def verifies(url: str, private_pem: str, algorithm: str, kid: str) -> bool:
    """Sign a client assertion with the private key; verify it with the JWKS from `url`."""
    token = jwt.encode(
        {"iss": "client", "sub": "client", "aud": "https://issuer.example", "exp": 2**31},
        private_pem,
        algorithm=algorithm,
        headers={"kid": kid},
    )
    keys = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=False)
    try:
        key = keys.get_signing_key_from_jwt(token)
        jwt.decode(token, key, algorithms=[algorithm], audience="https://issuer.example")
    except (jwt.PyJWKClientError, jwt.InvalidTokenError):
        return False
    return True


def test_tokens_of_every_key_pair_verify_against_the_jwk_set_through_a_rotation(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    jwks_server: tuple[str, Path],
) -> None:
    url, document = jwks_server
    names = {"ed": "Ed25519", "ec": "ECDSA-P256"}
    for name, algorithm in names.items():
        keys = {"algorithm": algorithm, "jwks": {"name": "client-keys"}}
        rotation = {"overlap": f"{OVERLAP_SECONDS}s"}
        apply(cluster, namespace, sacred(name, type="KeyPair", keyPair=keys, rotation=rotation))

    def key_set_size() -> int:
        try:
            return len(publish(core, namespace, document)["keys"])
        except client.ApiException:
            return 0

    wait_for(lambda: key_set_size() == 2, 90, what="two keys in the JWK Set")
    issued = {name: read_secret(core, exposure, namespace, name)[0] for name in names}
    for name, algorithm in names.items():
        data = issued[name]
        assert verifies(url, data["private_key.pem"], ALGORITHMS[algorithm], data["key_id"])
    jwk_set = publish(core, namespace, document)
    assert all(set(k) >= {"kid", "kty", "use", "alg"} for k in jwk_set["keys"])
    assert not any("d" in k for k in jwk_set["keys"])  # public material only

    # A key nobody published does not verify.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    stranger = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert not verifies(url, stranger.decode(), "EdDSA", issued["ed"]["key_id"])

    # Rotate one: during the overlap both its keys verify; after it only the new one.
    old = issued["ed"]
    cluster.kubectl("annotate", "-n", namespace, "sacred/ed", "credsmith.io/rotate=r1")
    wait_for(lambda: key_set_size() == 3, 60, what="the new key beside the old one")
    new = read_secret(core, exposure, namespace, "ed")[0]
    assert new["key_id"] != old["key_id"]
    assert verifies(url, new["private_key.pem"], "EdDSA", new["key_id"])
    assert verifies(url, old["private_key.pem"], "EdDSA", old["key_id"])
    expires = get(custom, namespace, "ed")["status"]["previousExpiresAt"]
    assert expires
    wait_for(lambda: key_set_size() == 2, OVERLAP_SECONDS + 40, what="the old key to retire")
    assert not verifies(url, old["private_key.pem"], "EdDSA", old["key_id"])
    assert verifies(url, new["private_key.pem"], "EdDSA", new["key_id"])
    assert verifies(url, issued["ec"]["private_key.pem"], "ES256", issued["ec"]["key_id"])


def test_a_key_signs_only_for_its_own_client(
    cluster: Cluster,
    core: client.CoreV1Api,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    """Client B signs a private_key_jwt assertion with its own key (its kid, a valid
    signature) claiming to be client A: refused by the credsmith verifier and absent from
    A's own set, which a server configures as A's jwks_uri."""
    from credsmith_verify import JwkSet

    keys = {"algorithm": "Ed25519", "jwks": {"name": "client-keys"}}
    for name in ("a", "b"):
        apply(cluster, namespace, sacred(name, type="KeyPair", keyPair=keys))

    def documents() -> dict[str, str]:
        try:
            found = core.read_namespaced_config_map("client-keys", namespace)
        except client.ApiException:
            return {}
        return dict(found.data or {})

    def both_published() -> dict[str, str] | None:
        data = documents()
        return data if len(data) == 3 else None  # jwks.json and one set per client

    data = wait_for(both_published, 90, what="a JWK Set per client beside jwks.json")
    a, b = (read_secret(core, exposure, namespace, name)[0] for name in ("a", "b"))
    own_a = json.loads(data[f"{a['client_id']}.jwks.json"])
    assert [k["kid"] for k in own_a["keys"]] == [a["key_id"]]  # B's kid is absent
    assert all(k["client_id"] == a["client_id"] for k in own_a["keys"])
    everyone = {k["kid"]: k["client_id"] for k in json.loads(data["jwks.json"])["keys"]}
    assert everyone == {a["key_id"]: a["client_id"], b["key_id"]: b["client_id"]}

    audience = "https://issuer.example/token"

    def assertion(signer: dict[str, str], claimed: str) -> str:
        claims = {"iss": claimed, "sub": claimed, "aud": audience, "exp": 2**31, "jti": "1"}
        headers = {"kid": signer["key_id"]}
        return jwt.encode(claims, signer["private_key.pem"], algorithm="EdDSA", headers=headers)

    path = tmp_path / "jwks.json"
    path.write_text(data["jwks.json"])
    verifier = JwkSet.load(path)
    forged = assertion(b, a["client_id"])
    assert verifier.verify_assertion(forged, client_id=a["client_id"], audience=audience) is None
    honest_a, honest_b = assertion(a, a["client_id"]), assertion(b, b["client_id"])
    assert verifier.verify_assertion(honest_a, client_id=a["client_id"], audience=audience)
    assert verifier.verify_assertion(honest_b, client_id=b["client_id"], audience=audience)

    # PyJWT with A's own set (its jwks_uri): B's kid is not there, so B's token has no key.
    a_keys = jwt.PyJWKSet.from_dict(own_a)
    with pytest.raises(KeyError):
        a_keys[b["key_id"]]
    key = a_keys[a["key_id"]]
    claims = jwt.decode(honest_a, key, algorithms=["EdDSA"], audience=audience)
    assert claims["sub"] == a["client_id"]


def test_a_jwk_set_name_taken_by_a_foreign_config_map_makes_its_credentials_not_ready(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
) -> None:
    core.create_namespaced_config_map(
        namespace,
        cast(
            client.V1ConfigMap,
            {"metadata": {"name": "taken-keys"}, "data": {"jwks.json": "not ours"}},
        ),
    )
    keys = {"algorithm": "Ed25519", "jwks": {"name": "taken-keys"}}
    apply(cluster, namespace, sacred("signer", type="KeyPair", keyPair=keys))

    def ready() -> dict[str, Any] | None:
        conditions = get(custom, namespace, "signer").get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Ready"), None)

    wait_for(lambda: (ready() or {}).get("reason") == "JwksConflict", 90, what="JwksConflict")
    condition = ready()
    assert condition is not None
    assert condition["status"] == "False"
    assert "taken-keys" in condition["message"]
    assert core.read_namespaced_config_map("taken-keys", namespace).data == {
        "jwks.json": "not ours"
    }
    core.delete_namespaced_config_map("taken-keys", namespace)
    wait_for(lambda: (ready() or {}).get("status") == "True", 120, what="Ready again")
    published = core.read_namespaced_config_map("taken-keys", namespace).data
    assert len(json.loads(present(published)["jwks.json"])["keys"]) == 1
