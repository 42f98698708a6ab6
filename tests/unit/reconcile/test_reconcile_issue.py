"""First issue: the Secret of every type, the decorations of the secret, and the status."""

import json
import re
import uuid

import pytest

from credsmith.api.alphabets import ALPHABETS, CHECKSUM_LENGTH
from credsmith.api.enums import KeyAlgorithm, SecretAlphabet
from credsmith.api.status import format_timestamp
from credsmith.issuing.client_id import TOKEN_LENGTH
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.keypair import key_algorithm_of, key_pair_from_private_pem
from credsmith.issuing.random_secret import has_valid_checksum
from credsmith.reconcile.kinds import API_CLIENT, secret_name_of

SA = {"serviceAccount": "billing-exporter"}
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{16}$")
BASE62 = set(ALPHABETS[SecretAlphabet.ALPHANUMERIC])

# (spec additions, Secret type, keys, client ID key, value key)
TYPES = {
    "ClientSecret": ({}, "Opaque", {"client_id", "client_secret"}, "client_id", "client_secret"),
    "APIKey": ({"type": "APIKey"}, "Opaque", {"key_id", "api_key"}, "key_id", "api_key"),
    "BasicAuth": (
        {"type": "BasicAuth"},
        "kubernetes.io/basic-auth",
        {"username", "password"},
        "username",
        "password",
    ),
}
KEY_PAIR_KEYS = {"client_id", "key_id", "private_key.pem", "public_key.pem", "public_jwk.json"}
# One RSA size: the others differ only in key generation time.
ALGORITHMS = [
    KeyAlgorithm.ED25519,
    KeyAlgorithm.ECDSA_P256,
    KeyAlgorithm.ECDSA_P384,
    KeyAlgorithm.RSA_2048,
]


def check_ready_issued(w, value):
    """What every first issue reports."""
    status = w.status
    ready = w.condition("Ready")
    assert ready["status"] == "True"
    assert ready["reason"] == "Issued"
    assert ready["lastTransitionTime"] == format_timestamp(w.now)
    assert ready["observedGeneration"] == w.generation
    assert w.secret_name in ready["message"]
    assert w.condition("Stalled") is None
    assert status["observedGeneration"] == w.generation
    assert status["secretName"] == w.secret_name
    assert status["revision"] == 1
    assert status["issuedAt"] == status["rotatedAt"] == format_timestamp(w.now)
    assert FINGERPRINT.match(status["fingerprint"])
    assert status["fingerprint"] == fingerprint(value)
    assert "nextRotationAt" not in status
    assert "previousExpiresAt" not in status
    assert [(e.type, e.reason) for e in w.events] == [("Normal", "Issued")]
    assert w.secret_name in w.events[0].message


@pytest.mark.parametrize("type_name", TYPES)
def test_each_random_type_gets_exactly_its_keys(world, type_name):
    extra, secret_type, keys, id_key, value_key = TYPES[type_name]
    w = world({**SA, **extra}, real=True)
    decision = w.step()

    assert decision.create is True
    assert decision.requeue_at is None
    assert decision.summary
    data = w.data()
    assert set(data) == keys
    assert w.secret["type"] == secret_type
    assert len(data[value_key]) == 48
    assert set(data[value_key]) <= BASE62
    assert UUID4.match(data[id_key])
    assert w.status["clientId"] == data[id_key]
    assert "keyId" not in w.status
    assert "id" not in w.status
    check_ready_issued(w, data[value_key])
    assert w.status["parameters"] == {
        "clientIdFormat": "UUID",
        "secretLength": 48,
        "secretAlphabet": "Alphanumeric",
        "secretChecksum": False,
        "deletionPolicy": "Delete",
        "type": type_name,
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_key_pair_of_each_algorithm(world, algorithm):
    w = world({**SA, "type": "KeyPair", "keyPair": {"algorithm": algorithm.value}}, real=True)
    w.step()

    data = w.data()
    assert set(data) == KEY_PAIR_KEYS
    assert w.secret["type"] == "Opaque"
    private = data["private_key.pem"]
    assert private.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    assert key_algorithm_of(private) is algorithm
    pair = key_pair_from_private_pem(private)
    assert data["key_id"] == pair.key_id == w.status["keyId"]
    assert data["public_key.pem"] == pair.public_key_pem
    assert data["public_key.pem"].startswith("-----BEGIN PUBLIC KEY-----\n")
    jwk = json.loads(data["public_jwk.json"])
    assert jwk["kid"] == data["key_id"]
    assert "d" not in jwk
    assert w.status["clientId"] == data["client_id"]
    check_ready_issued(w, private)
    assert w.status["parameters"]["type"] == "KeyPair"
    assert w.status["parameters"]["keyAlgorithm"] == algorithm.value


def test_key_pair_defaults_to_ed25519(world):
    w = world({**SA, "type": "KeyPair"}, real=True)
    w.step()
    assert key_algorithm_of(w.data()["private_key.pem"]) is KeyAlgorithm.ED25519
    assert w.status["parameters"]["keyAlgorithm"] == "Ed25519"


@pytest.mark.parametrize(
    ("secret", "length"),
    [
        ({"length": 22}, 22),  # the shortest with 128 bits of Alphanumeric
        ({"length": 256}, 256),
        ({"length": 32, "alphabet": "Hex"}, 32),
        ({"length": 64, "alphabet": "URLSafe"}, 64),
        ({"length": 22, "alphabet": "Base64"}, 22),
        ({"length": 20, "alphabet": "Printable"}, 20),
    ],
)
def test_requested_length_and_alphabet(world, secret, length):
    w = world({**SA, "type": "APIKey", "secret": secret}, real=True)
    w.step()
    value = w.data()["api_key"]
    alphabet = SecretAlphabet(secret.get("alphabet", "Alphanumeric"))
    assert len(value) == length
    assert set(value) <= set(ALPHABETS[alphabet])
    assert w.status["parameters"]["secretLength"] == length
    assert w.status["parameters"]["secretAlphabet"] == alphabet.value


def test_prefix_and_checksum(world):
    secret = {"length": 40, "prefix": "sk_live_", "checksum": True}
    w = world({**SA, "type": "APIKey", "secret": secret}, real=True)
    w.step()
    value = w.data()["api_key"]
    assert value.startswith("sk_live_")
    assert len(value) == len("sk_live_") + 40 + CHECKSUM_LENGTH
    assert has_valid_checksum(value, "sk_live_")
    assert w.status["parameters"]["secretPrefix"] == "sk_live_"
    assert w.status["parameters"]["secretChecksum"] is True


def test_prefix_without_checksum(world):
    w = world({**SA, "secret": {"prefix": "cs-"}}, real=True)
    w.step()
    value = w.data()["client_secret"]
    assert value.startswith("cs-")
    assert len(value) == 3 + 48
    assert not has_valid_checksum(value, "cs-")


def test_basic_auth_password_honours_the_secret_block(world):
    w = world({**SA, "type": "BasicAuth", "secret": {"length": 32, "alphabet": "Hex"}}, real=True)
    w.step()
    password = w.data()["password"]
    assert len(password) == 32
    assert set(password) <= set("0123456789abcdef")


@pytest.mark.parametrize(
    ("client_id", "check"),
    [
        ({}, UUID4.match),
        (
            {"format": "UUID", "prefix": "svc_"},
            lambda v: v.startswith("svc_") and UUID4.match(v[4:]),
        ),
        ({"format": "Token"}, lambda v: len(v) == TOKEN_LENGTH and set(v) <= BASE62),
        (
            {"format": "Token", "prefix": "app-"},
            lambda v: v.startswith("app-") and len(v) == 4 + TOKEN_LENGTH,
        ),
        ({"value": "billing@example.com"}, lambda v: v == "billing@example.com"),
    ],
)
def test_client_id_formats(world, client_id, check):
    w = world({**SA, "clientId": client_id}, real=True)
    w.step()
    assert check(w.data()["client_id"])
    assert w.status["clientId"] == w.data()["client_id"]


def test_client_id_parameters_reported(world):
    w = world({**SA, "clientId": {"format": "Token", "prefix": "svc_"}})
    w.step()
    assert w.status["parameters"]["clientIdFormat"] == "Token"
    assert w.status["parameters"]["clientIdPrefix"] == "svc_"
    v = world({**SA, "clientId": {"value": "mine"}})
    v.step()
    assert "clientIdFormat" not in v.status["parameters"]


def test_rotation_and_deletion_parameters_reported(world):
    spec = {**SA, "rotation": {"period": "720h", "overlap": "24h"}, "deletionPolicy": "Orphan"}
    w = world(spec)
    w.step()
    parameters = w.status["parameters"]
    assert parameters["rotationPeriod"] == "720h"
    assert parameters["rotationOverlap"] == "24h"
    assert parameters["deletionPolicy"] == "Orphan"


def test_secret_name_defaults_to_metadata_name(world):
    w = world(SA, name="orders")
    w.step()
    assert set(w.secrets) == {"orders"}
    assert w.status["secretName"] == "orders"


def test_secret_name_given(world):
    w = world({**SA, "secretName": "orders-credentials"}, name="orders")
    w.step()
    assert set(w.secrets) == {"orders-credentials"}
    assert w.status["secretName"] == "orders-credentials"
    assert "orders-credentials" in w.condition()["message"]


def test_template_labels_annotations_and_data(world):
    template = {
        "labels": {"team": "billing", "app.kubernetes.io/part-of": "invoices"},
        "annotations": {"example.com/owner": "billing team <billing@example.com>"},
        "data": {
            "url": "https://{{ clientId }}:{{ clientSecret | urlquote }}@billing.example.com",
            "client.properties": "id={{ clientId }}\n",
        },
    }
    w = world({**SA, "secretTemplate": template}, real=True)
    w.step()
    meta = w.secret["metadata"]
    assert meta["labels"]["team"] == "billing"
    assert meta["labels"]["app.kubernetes.io/part-of"] == "invoices"
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "credsmith"
    assert meta["annotations"]["example.com/owner"] == "billing team <billing@example.com>"
    data = w.data()
    assert set(data) == {"client_id", "client_secret", "url", "client.properties"}
    assert data["url"] == (
        f"https://{data['client_id']}:{data['client_secret']}@billing.example.com"
    )
    assert data["client.properties"] == f"id={data['client_id']}\n"


@pytest.mark.parametrize(
    ("extra", "template", "expected"),
    [
        ({"type": "APIKey"}, "{{ keyId }}/{{ apiKey }}", "{key_id}/{api_key}"),
        ({"type": "APIKey"}, "{{ clientId }}/{{ clientSecret }}", "{key_id}/{api_key}"),
        ({"type": "BasicAuth"}, "{{ username }}:{{ password }}", "{username}:{password}"),
        ({"type": "BasicAuth"}, "{{ clientId }}:{{ clientSecret }}", "{username}:{password}"),
        ({"type": "KeyPair"}, "{{ keyId }} {{ clientId }}", "{key_id} {client_id}"),
    ],
)
def test_template_variables_of_each_type(world, extra, template, expected):
    w = world({**SA, **extra, "secretTemplate": {"data": {"out": template}}})
    w.step()
    data = w.data()
    assert data["out"] == expected.format(**data)


def test_delete_policy_owns_the_secret(world):
    w = world(SA)
    w.step()
    assert w.secret["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "credsmith.io/v1alpha1",
            "kind": "ServiceAccountCredential",
            "name": "billing",
            "uid": w.uid,
            "controller": True,
        }
    ]
    assert "finalizers" not in w.resource["metadata"]


def test_orphan_policy_leaves_no_owner_reference(world):
    w = world({**SA, "deletionPolicy": "Orphan"})
    w.step()
    assert "ownerReferences" not in w.secret["metadata"]


def test_switching_deletion_policy_keeps_the_value(world):
    w = world(SA)
    w.step()
    value = w.data()["client_secret"]
    w.edit_spec(lambda s: s.update(deletionPolicy="Orphan"))
    decision = w.step()
    assert decision.secret is not None
    assert "ownerReferences" not in w.secret["metadata"]
    assert w.data()["client_secret"] == value
    w.edit_spec(lambda s: s.update(deletionPolicy="Delete"))
    w.step()
    assert w.secret["metadata"]["ownerReferences"][0]["uid"] == w.uid
    assert w.data()["client_secret"] == value
    assert w.status["revision"] == 1
    assert [e.reason for e in w.events] == ["Issued"]


def test_observed_generation_follows_the_resource(world):
    w = world(SA)
    w.resource["metadata"]["generation"] = 5
    w.step()
    assert w.status["observedGeneration"] == 5
    assert w.condition()["observedGeneration"] == 5
    w.edit_spec(lambda s: s.update(title="Billing exporter"))
    decision = w.step()
    assert decision.secret is None
    assert w.status["observedGeneration"] == 6
    assert w.condition()["observedGeneration"] == 6
    assert w.condition()["lastTransitionTime"] == format_timestamp(w.now)


def test_api_client(world):
    spec = {"displayName": "Reporting dashboard", "roles": [{"id": "reports.read"}]}
    w = world(spec, rules=API_CLIENT, real=True)
    w.step()
    data = w.data()
    assert set(data) == {"client_id", "client_secret"}
    assert w.secret["type"] == "Opaque"
    assert uuid.UUID(w.status["id"]).version == 4
    assert UUID4.match(w.status["id"])
    assert w.status["id"] != w.status["clientId"]
    assert w.status["clientId"] == data["client_id"]
    check_ready_issued(w, data["client_secret"])
    assert w.secret["metadata"]["ownerReferences"][0]["kind"] == "ApiClient"
    assert "registryHash" not in w.status["parameters"]
    assert "type" not in w.status["parameters"]


def test_api_client_registry_hash_reported(world):
    spec = {"displayName": "Reporting", "registry": {"name": "clients"}}
    w = world(spec, rules=API_CLIENT)
    w.step()
    assert w.status["parameters"]["registryHash"] == "SHA256"


def test_api_client_id_generated_once(world, deterministic):
    w = world({"displayName": "Reporting"}, rules=API_CLIENT)
    w.step()
    ids = {w.status["id"]}
    for _ in range(3):
        w.step()
        ids.add(w.status["id"])
    assert len(ids) == 1


@pytest.mark.parametrize(
    ("spec", "expected"),
    [({}, "billing"), ({"secretName": "other"}, "other"), ({"secretName": ""}, "billing")],
)
def test_secret_name_of_an_unvalidated_resource(world, spec, expected):
    w = world(spec)
    assert secret_name_of(w.snapshot()) == expected
    w.spec["secretName"] = 42
    assert secret_name_of(w.snapshot()) == "billing"
