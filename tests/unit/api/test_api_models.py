"""The spec models: the manifests of design.md parse, defaults apply in code, the wire
shape is camelCase, and the Python validators reject what the CEL rules reject."""

from datetime import timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from credsmith.api.alphabets import min_length
from credsmith.api.api_client import ApiClientSpec, ApiClientStatus
from credsmith.api.common import ROTATE_ANNOTATION, ClientIdSpec, RotationSpec, SecretSpec
from credsmith.api.enums import (
    ClientIdFormat,
    CredentialType,
    DeletionPolicy,
    HashAlgorithm,
    KeyAlgorithm,
    SecretAlphabet,
)
from credsmith.api.service_account_credential import (
    ServiceAccountCredentialSpec,
    ServiceAccountCredentialStatus,
)

# Every field of design.md's tables, with its examples.
SAC_MANIFEST = """
apiVersion: credsmith.io/v1alpha1
kind: ServiceAccountCredential
metadata:
  name: deploy-bot
  annotations:
    credsmith.io/rotate: "2024-06-13"
spec:
  serviceAccount: 8f84cf09-8036-51e4-b579-bd30cb07b269
  title: Deploy bot
  description: Deploys from CI
  type: APIKey
  clientId:
    format: Token
    prefix: svc_
  secret:
    length: 40
    alphabet: URLSafe
    prefix: sk_live_
    checksum: true
  rotation:
    period: 720h
    overlap: 24h
  secretName: deploy-bot-credentials
  secretTemplate:
    labels:
      app.kubernetes.io/name: deploy-bot
    annotations:
      example.com/owner: platform
    data:
      url: "https://{{ clientId }}:{{ clientSecret }}@api"
  deletionPolicy: Orphan
"""

API_CLIENT_MANIFEST = """
apiVersion: credsmith.io/v1alpha1
kind: ApiClient
metadata:
  name: billing
spec:
  displayName: Billing service
  description: Reads invoices
  roles:
    - id: invoices:read
      name: Read invoices
    - id: invoices.export
  registry:
    name: api-clients
    hash: Argon2id
"""


def spec_of(manifest: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(manifest)["spec"]
    return spec


def test_service_account_credential_example_parses() -> None:
    spec = ServiceAccountCredentialSpec.model_validate(spec_of(SAC_MANIFEST))
    assert spec.service_account == "8f84cf09-8036-51e4-b579-bd30cb07b269"
    assert spec.type is CredentialType.API_KEY
    assert spec.client_id.format is ClientIdFormat.TOKEN
    assert spec.client_id.prefix == "svc_"
    assert spec.secret.length == 40
    assert spec.secret.alphabet is SecretAlphabet.URL_SAFE
    assert spec.secret.prefix == "sk_live_"
    assert spec.secret.checksum is True
    assert spec.rotation.period_duration == timedelta(days=30)
    assert spec.rotation.overlap_duration == timedelta(hours=24)
    assert spec.effective_secret_name("deploy-bot") == "deploy-bot-credentials"
    assert spec.secret_template.data["url"] == "https://{{ clientId }}:{{ clientSecret }}@api"
    assert spec.secret_template.labels == {"app.kubernetes.io/name": "deploy-bot"}
    assert spec.deletion_policy is DeletionPolicy.ORPHAN
    assert spec.key_algorithm is None
    assert ROTATE_ANNOTATION in yaml.safe_load(SAC_MANIFEST)["metadata"]["annotations"]


def test_api_client_example_parses() -> None:
    spec = ApiClientSpec.model_validate(spec_of(API_CLIENT_MANIFEST))
    assert spec.display_name == "Billing service"
    assert [(r.id, r.name) for r in spec.roles] == [
        ("invoices:read", "Read invoices"),
        ("invoices.export", None),
    ]
    assert spec.registry is not None
    assert spec.registry.name == "api-clients"
    assert spec.registry.hash is HashAlgorithm.ARGON2ID
    assert spec.object_errors("billing") == []


def test_defaults_are_applied_in_code() -> None:
    spec = ServiceAccountCredentialSpec.model_validate({"serviceAccount": "svc"})
    assert spec.type is CredentialType.CLIENT_SECRET
    assert spec.client_id == ClientIdSpec(format=ClientIdFormat.UUID)
    assert spec.secret.length == 48
    assert spec.secret.alphabet is SecretAlphabet.ALPHANUMERIC
    assert spec.secret.prefix is None
    assert spec.secret.checksum is False
    assert spec.rotation.period_duration is None
    assert spec.deletion_policy is DeletionPolicy.DELETE
    assert spec.effective_secret_name("my-cred") == "my-cred"
    assert spec.key_pair is None
    client = ApiClientSpec.model_validate({"displayName": "x", "registry": {"name": "r"}})
    assert client.roles == []
    assert client.registry is not None
    assert client.registry.hash is HashAlgorithm.SHA256


def test_key_pair_algorithm_defaults_to_ed25519() -> None:
    spec = ServiceAccountCredentialSpec.model_validate({"serviceAccount": "s", "type": "KeyPair"})
    assert spec.key_algorithm is KeyAlgorithm.ED25519
    explicit = ServiceAccountCredentialSpec.model_validate(
        {"serviceAccount": "s", "type": "KeyPair", "keyPair": {"algorithm": "RSA-4096"}}
    )
    assert explicit.key_algorithm is KeyAlgorithm.RSA_4096


@pytest.mark.parametrize(
    ("model", "manifest"),
    [(ServiceAccountCredentialSpec, SAC_MANIFEST), (ApiClientSpec, API_CLIENT_MANIFEST)],
)
def test_round_trips_to_the_wire_shape(
    model: type[ServiceAccountCredentialSpec | ApiClientSpec], manifest: str
) -> None:
    wire = spec_of(manifest)
    parsed = model.model_validate(wire)
    assert parsed.model_dump(mode="json", exclude_unset=True) == wire
    assert model.model_validate(parsed.to_wire()) == parsed


def test_wire_shape_is_camel_case_and_python_names_work() -> None:
    spec = ServiceAccountCredentialSpec(service_account="svc", secret_name="out")
    wire = spec.to_wire()
    assert wire["serviceAccount"] == "svc"
    assert wire["secretName"] == "out"
    assert wire["clientId"] == {"format": "UUID"}
    assert "secret_name" not in wire
    assert "title" not in wire  # unset optional fields are left out


def test_unknown_fields_from_the_cluster_are_ignored() -> None:
    spec = ServiceAccountCredentialSpec.model_validate(
        {"serviceAccount": "svc", "fieldFromANewerVersion": 1, "secret": {"future": True}}
    )
    assert "fieldFromANewerVersion" not in spec.to_wire()


def test_default_blocks_are_not_shared() -> None:
    a = ServiceAccountCredentialSpec(service_account="a")
    b = ServiceAccountCredentialSpec(service_account="b")
    a.secret_template.labels["x"] = "y"
    assert b.secret_template.labels == {}


@pytest.mark.parametrize("alphabet", list(SecretAlphabet))
def test_entropy_minimum_per_alphabet(alphabet: SecretAlphabet) -> None:
    needed = min_length(alphabet)
    assert SecretSpec(length=needed, alphabet=alphabet).length == needed
    with pytest.raises(ValidationError, match=f"at least {needed} for alphabet {alphabet.value}"):
        SecretSpec(length=needed - 1, alphabet=alphabet)


def test_default_length_suits_every_alphabet() -> None:
    for alphabet in SecretAlphabet:
        assert SecretSpec(alphabet=alphabet).length == 48


@pytest.mark.parametrize(
    ("rotation", "message"),
    [
        ({"period": "1h", "overlap": "1h"}, "overlap must be shorter"),
        ({"period": "1h", "overlap": "90m"}, "overlap must be shorter"),
        ({"period": "500ms"}, "period must be at least 1m"),
        ({"period": "0"}, "period must be at least 1m"),
        ({"period": "1s"}, "period must be at least 1m"),
        ({"period": "59s"}, "period must be at least 1m"),
        ({"period": "1d"}, "pattern"),
        ({"period": "-1h"}, "pattern"),
        ({"period": "1h\n"}, "pattern"),  # `$` must not match before a final newline
    ],
)
def test_rotation_rules(rotation: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RotationSpec.model_validate(rotation)


def test_rotation_overlap_alone_is_allowed() -> None:
    assert RotationSpec(overlap="1h").overlap_duration == timedelta(hours=1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "serviceAccount"),
        ({"serviceAccount": ""}, "serviceAccount"),
        ({"serviceAccount": "a\tb"}, "serviceAccount"),
        ({"serviceAccount": "s", "title": "line\n"}, "title"),
        ({"serviceAccount": "s", "title": "bell\x07"}, "title"),
        ({"serviceAccount": "s", "title": "del\x7f"}, "title"),
        ({"serviceAccount": "s", "title": "x" * 129}, "title"),
        ({"serviceAccount": "s", "description": ""}, "description"),
        ({"serviceAccount": "s", "description": "x" * 301}, "description"),
        ({"serviceAccount": "s", "type": "Password"}, "type"),
        ({"serviceAccount": "s", "keyPair": {}}, "only when spec.type is KeyPair"),
        ({"serviceAccount": "s", "clientId": {"value": "v", "prefix": "p"}}, "verbatim"),
        ({"serviceAccount": "s", "clientId": {"value": "v", "format": "UUID"}}, "verbatim"),
        ({"serviceAccount": "s", "clientId": {"value": "a b"}}, "value"),
        ({"serviceAccount": "s", "clientId": {"prefix": "Svc"}}, "prefix"),
        ({"serviceAccount": "s", "clientId": {"prefix": "a" * 17}}, "prefix"),
        ({"serviceAccount": "s", "secret": {"length": 257}}, "length"),
        ({"serviceAccount": "s", "secret": {"prefix": "sk live"}}, "prefix"),
        ({"serviceAccount": "s", "secretName": "Not_A_Name"}, "secretName"),
        ({"serviceAccount": "s", "secretTemplate": {"data": {"a b": "x"}}}, "data"),
        ({"serviceAccount": "s", "secretTemplate": {"labels": {"-x": "y"}}}, "labels"),
        ({"serviceAccount": "s", "secretTemplate": {"labels": {"x": "y" * 64}}}, "labels"),
        (
            {
                "serviceAccount": "s",
                "secretTemplate": {"labels": {f"k{i}": "v" for i in range(65)}},
            },
            "labels",
        ),
        ({"serviceAccount": "s", "deletionPolicy": "Keep"}, "deletionPolicy"),
    ],
)
def test_service_account_credential_rejects(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ServiceAccountCredentialSpec.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "displayName"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": "x" * 129}, "displayName"),
        ({"displayName": "a", "description": "x" * 301}, "description"),
        ({"displayName": "a", "roles": [{"id": "r"}, {"id": "r"}]}, "duplicate id r"),
        ({"displayName": "a", "roles": [{"id": "a b"}]}, "id"),
        ({"displayName": "a", "roles": [{"name": "no id"}]}, "id"),
        ({"displayName": "a", "roles": [{"id": "r", "name": "x\ny"}]}, "name"),
        ({"displayName": "a", "roles": [{"id": f"r{i}"} for i in range(65)]}, "roles"),
        ({"displayName": "a", "registry": {}}, "name"),
        ({"displayName": "a", "registry": {"name": "r", "hash": "MD5"}}, "hash"),
    ],
)
def test_api_client_rejects(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ApiClientSpec.model_validate(spec)


def test_free_text_allows_unicode() -> None:
    spec = ServiceAccountCredentialSpec(service_account="svc", title="Déploiement ✓")
    assert spec.title == "Déploiement ✓"


def test_registry_must_not_be_the_clients_own_secret() -> None:
    spec = ApiClientSpec.model_validate({"displayName": "a", "registry": {"name": "billing"}})
    assert spec.object_errors("billing") == [
        "spec.registry.name must name a different Secret than the client's own "
        "(spec.secretName, by default metadata.name)"
    ]
    assert spec.object_errors("other") == []
    renamed = spec.model_copy(update={"secret_name": "billing-credentials"})
    assert renamed.object_errors("billing") == []


def test_parameters_report_the_settings_in_force() -> None:
    spec = ServiceAccountCredentialSpec.model_validate({"serviceAccount": "s", "type": "KeyPair"})
    assert spec.parameters().to_wire() == {
        "type": "KeyPair",
        "keyAlgorithm": "Ed25519",
        "clientIdFormat": "UUID",
        "secretLength": 48,
        "secretAlphabet": "Alphanumeric",
        "secretChecksum": False,
        "deletionPolicy": "Delete",
    }
    full = ServiceAccountCredentialSpec.model_validate(spec_of(SAC_MANIFEST)).parameters()
    assert full.rotation_period == "720h"
    assert full.secret_prefix == "sk_live_"
    assert full.client_id_prefix == "svc_"
    byo = ApiClientSpec.model_validate({"displayName": "a", "clientId": {"value": "my-id"}})
    assert byo.parameters().client_id_format is None
    assert byo.parameters().registry_hash is None
    registry = ApiClientSpec.model_validate(spec_of(API_CLIENT_MANIFEST)).parameters()
    assert registry.registry_hash is HashAlgorithm.ARGON2ID


def test_status_reads_a_live_object_and_ignores_foreign_fields() -> None:
    live = {
        "observedGeneration": 2,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "lastTransitionTime": "2024-06-13T06:44:37Z",
                "reason": "Issued",
                "message": "",
            }
        ],
        "clientId": "svc_4f8a",
        "secretName": "deploy-bot",
        "revision": 2,
        "issuedAt": "2024-06-13T06:44:37Z",
        "rotatedAt": "2024-07-13T06:44:37.5+00:00",
        "nextRotationAt": "2024-08-12T06:44:37Z",
        "fingerprint": "sha256:0123456789abcdef",
        "keyId": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        "lastRotateRequest": "2024-07-13",
        "kopf": {"progress": {}},
    }
    status = ServiceAccountCredentialStatus.model_validate(live)
    assert status.revision == 2
    assert status.conditions[0].reason == "Issued"
    wire = status.to_wire()
    assert "kopf" not in wire
    assert wire["lastRotateRequest"] == "2024-07-13"
    assert wire["conditions"][0]["lastTransitionTime"] == "2024-06-13T06:44:37Z"
    client = ApiClientStatus.model_validate({"id": "5bf77342-221c-11ee-be56-0242ac120002"})
    assert client.to_wire() == {"id": "5bf77342-221c-11ee-be56-0242ac120002", "conditions": []}


@pytest.mark.parametrize(
    "status",
    [
        {"issuedAt": "yesterday"},
        {"issuedAt": "2024-06-13"},
        {"issuedAt": "2024-06-13T06:44:37"},  # no time zone
        {"fingerprint": "sha256:XYZ"},
        {"revision": -1},
        {"conditions": [{"type": "Ready", "status": "Maybe", "reason": "Issued"}]},
        {"conditions": [{"type": "Ready", "status": "True", "reason": "not camel"}]},
    ],
)
def test_status_rejects(status: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ServiceAccountCredentialStatus.model_validate(status)
