"""IdentityProvider, ClusterIdentityProvider and spec.identityProvider: the models (what the
operator accepts) and the CEL rules of their CRDs (what the API server refuses; the refusals
themselves are e2e: tests/e2e/test_identity_provider_crd.py)."""

from typing import Any

import pytest
from pydantic import ValidationError

from credsmith.api.api_client import ApiClientSpec
from credsmith.api.crd import build_crds
from credsmith.api.identity_provider import (
    ClusterIdentityProviderSpec,
    IdentityProviderSpec,
    ProviderType,
)
from credsmith.api.provider_ref import ProviderKind
from credsmith.api.service_account_credential import ServiceAccountCredentialSpec

HYDRA = {"hydra": {"adminURL": "http://hydra-admin.auth:4445"}}
KEYCLOAK = {
    "keycloak": {
        "url": "https://keycloak.auth:8443",
        "realm": "machines",
        "credentialsSecretRef": {
            "name": "keycloak-admin",
            "clientIdKey": "client_id",
            "clientSecretKey": "client_secret",
        },
    }
}


def crd(kind: str) -> dict[str, Any]:
    [found] = [c for c in build_crds() if c["spec"]["names"]["kind"] == kind]
    return found


def spec_schema(kind: str) -> dict[str, Any]:
    [version] = crd(kind)["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return schema


def test_defaults_and_type() -> None:
    hydra = IdentityProviderSpec.model_validate(HYDRA)
    assert (hydra.resync, hydra.type, hydra.urls) == (
        "10m",
        ProviderType.HYDRA,
        ("http://hydra-admin.auth:4445",),
    )
    both = IdentityProviderSpec.model_validate(
        {"hydra": {"adminURL": "http://a:4445", "publicURL": "https://b:4444/"}}
    )
    assert both.urls == ("http://a:4445", "https://b:4444/")
    keycloak = ClusterIdentityProviderSpec.model_validate(KEYCLOAK)
    assert keycloak.type is ProviderType.KEYCLOAK
    assert keycloak.allowed_namespaces is None  # absent: no namespace
    assert keycloak.keycloak is not None
    assert keycloak.keycloak.credentials_secret_ref.client_secret_key == "client_secret"
    assert hydra.to_wire()["hydra"] == {"adminURL": "http://hydra-admin.auth:4445"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({**HYDRA, **KEYCLOAK}, "exactly one of spec.hydra and spec.keycloak"),
        ({}, "exactly one of spec.hydra and spec.keycloak"),
        ({**HYDRA, "resync": "30s"}, "spec.resync must be at least 1m"),
        ({"hydra": {"adminURL": "ftp://hydra:21"}}, "http or https URL"),
        ({"hydra": {"adminURL": "http://admin:pw@hydra:4445"}}, "no user information"),
        ({"hydra": {"adminURL": "hydra:4445"}}, "http or https URL"),
        ({"hydra": {"adminURL": "http://hydra:4445/?x=1"}}, "query"),
        ({"hydra": {"adminURL": "http://h", "publicURL": "https://u@h"}}, "user information"),
    ],
    ids=["both", "neither", "resync", "scheme", "userinfo", "no-scheme", "query", "public"],
)
def test_the_model_refuses(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IdentityProviderSpec.model_validate(spec)


def test_cel_rules_of_the_provider_kinds() -> None:
    for kind in ("IdentityProvider", "ClusterIdentityProvider"):
        schema = spec_schema(kind)
        rules = {e["rule"]: e for e in schema["x-kubernetes-validations"]}
        assert rules["has(self.hydra) != has(self.keycloak)"]["message"] == (
            "exactly one of spec.hydra and spec.keycloak must be set"
        )
        resync = rules["!has(self.resync) || duration(self.resync) >= duration('1m')"]
        assert resync["fieldPath"] == ".resync"
        hydra = schema["properties"]["hydra"]["properties"]
        for node in (
            hydra["adminURL"],
            hydra["publicURL"],
            schema["properties"]["keycloak"]["properties"]["url"],
        ):
            [url] = node["x-kubernetes-validations"]
            assert url["rule"] == r"self.matches(r'^https?://[^/?#@\s]+(/[^?#\s]*)?$')"
            assert node["maxLength"] == 2048
        assert "allowedNamespaces" in schema["properties"] or kind == "IdentityProvider"
    cluster = spec_schema("ClusterIdentityProvider")["properties"]["allowedNamespaces"]
    # An empty selector is allowed (every namespace), unlike a consumer's selector.
    assert not any(
        "size(self.matchLabels) > 0" in e["rule"] for e in cluster["x-kubernetes-validations"]
    )
    assert crd("ClusterIdentityProvider")["spec"]["scope"] == "Cluster"


def test_namespace_selector_may_be_empty() -> None:
    spec = ClusterIdentityProviderSpec.model_validate({**KEYCLOAK, "allowedNamespaces": {}})
    assert spec.allowed_namespaces is not None
    assert spec.allowed_namespaces.match_labels == {}


def test_identity_provider_ref_defaults() -> None:
    spec = ServiceAccountCredentialSpec.model_validate(
        {"serviceAccount": "a", "identityProvider": {"name": "hydra"}}
    )
    assert spec.identity_provider is not None
    assert spec.identity_provider.kind is ProviderKind.IDENTITY_PROVIDER
    assert spec.identity_provider.client.grant_types == ["client_credentials"]
    assert (spec.identity_provider.client.scope, spec.identity_provider.client.audience) == ([], [])
    client = ApiClientSpec.model_validate(
        {"displayName": "x", "identityProvider": {"kind": "ClusterIdentityProvider", "name": "s"}}
    )
    assert client.identity_provider is not None
    assert client.identity_provider.kind is ProviderKind.CLUSTER_IDENTITY_PROVIDER


@pytest.mark.parametrize("type_", ["ClientSecret", "KeyPair"])
def test_identity_provider_for_client_types(type_: str) -> None:
    ServiceAccountCredentialSpec.model_validate(
        {"serviceAccount": "a", "type": type_, "identityProvider": {"name": "hydra"}}
    )


@pytest.mark.parametrize("type_", ["APIKey", "BasicAuth"])
def test_identity_provider_refused_for_other_types(type_: str) -> None:
    with pytest.raises(ValidationError, match=r"spec\.identityProvider is allowed only when"):
        ServiceAccountCredentialSpec.model_validate(
            {"serviceAccount": "a", "type": type_, "identityProvider": {"name": "hydra"}}
        )


@pytest.mark.parametrize(
    "client",
    [
        {"grantTypes": []},
        {"grantTypes": ["client credentials"]},
        {"scope": ["has space"]},
        {"scope": ['quo"te']},
        {"audience": ["a b"]},
    ],
)
def test_client_fields_are_checked(client: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ServiceAccountCredentialSpec.model_validate(
            {"serviceAccount": "a", "identityProvider": {"name": "h", "client": client}}
        )
