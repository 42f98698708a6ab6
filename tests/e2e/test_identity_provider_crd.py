"""The IdentityProvider and ClusterIdentityProvider CRDs against the real API server: what
`kubectl apply` refuses (naming the field), what it takes, and the columns `kubectl get`
prints. The operator is not needed: the schema and its CEL rules decide."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, manifest

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
KINDS = ("IdentityProvider", "ClusterIdentityProvider")


@pytest.fixture
def cluster_names(cluster: Cluster) -> Iterator[list[str]]:
    """ClusterIdentityProviders a test made (cluster-scoped: no namespace takes them away)."""
    made: list[str] = []
    yield made
    for name in made:
        cluster.kubectl("delete", "clusteridentityprovider", name, "--ignore-not-found")


def apply(
    cluster: Cluster, namespace: str, kind: str, spec: dict[str, Any], name: str = "provider"
) -> Any:
    where = ["-n", namespace] if kind == "IdentityProvider" else []
    return cluster.kubectl(
        "apply", *where, "-f", "-", stdin=json.dumps(manifest(kind, name, spec)), check=False
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({**HYDRA, **KEYCLOAK}, "spec", "exactly one of spec.hydra and spec.keycloak"),
        ({}, "spec", "exactly one of spec.hydra and spec.keycloak"),
        ({"hydra": {"adminURL": "ftp://hydra:21"}}, "spec.hydra.adminURL", "http or https"),
        (
            {"hydra": {"adminURL": "http://admin:secret@hydra:4445"}},
            "spec.hydra.adminURL",
            "no user information",
        ),
        (
            {"hydra": {"adminURL": "http://h:4445", "publicURL": "hydra:4444"}},
            "spec.hydra.publicURL",
            "http or https",
        ),
        (
            {"keycloak": {**KEYCLOAK["keycloak"], "url": "https://keycloak/?realm=x"}},
            "spec.keycloak.url",
            "query",
        ),
        ({**HYDRA, "resync": "30s"}, "spec.resync", "at least 1m"),
        ({**HYDRA, "resync": "ten minutes"}, "spec.resync", ""),
    ],
    ids=["both", "neither", "scheme", "userinfo", "public-url", "query", "resync", "resync-text"],
)
def test_invalid_providers_are_refused_naming_the_field(
    cluster: Cluster,
    namespace: str,
    cluster_names: list[str],
    kind: str,
    spec: dict[str, Any],
    field: str,
    words: str,
) -> None:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    cluster_names.append(name)
    result = apply(cluster, namespace, kind, spec, name)
    assert result.returncode != 0
    assert "is invalid" in result.stderr, result.stderr
    assert f"{field}:" in result.stderr, result.stderr
    assert words in result.stderr, result.stderr


def test_valid_providers_are_taken_and_printed(
    cluster: Cluster, namespace: str, cluster_names: list[str]
) -> None:
    result = apply(cluster, namespace, "IdentityProvider", {**HYDRA, "resync": "1m"}, "hydra")
    assert result.returncode == 0, result.stderr
    name = f"shared-{uuid.uuid4().hex[:8]}"
    cluster_names.append(name)
    # `{}`: every namespace, as a LabelSelector means it (a consumer's selector may not be).
    result = apply(
        cluster, namespace, "ClusterIdentityProvider", {**KEYCLOAK, "allowedNamespaces": {}}, name
    )
    assert result.returncode == 0, result.stderr
    header = cluster.kubectl("get", "idp", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "TYPE", "READY", "CLIENTS", "AGE"]
    wide = cluster.kubectl("get", "cidp", name, "-o", "wide").stdout.splitlines()[0].split()
    assert wide == ["NAME", "TYPE", "READY", "REASON", "CLIENTS", "AGE"]
    # The credentials' Provider and Registered columns are in -o wide only.
    credential = manifest(
        "ServiceAccountCredential",
        "named",
        {"serviceAccount": "a", "identityProvider": {"name": "hydra"}},
    )
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(credential))
    plain = cluster.kubectl("get", "sacred", "named", "-n", namespace).stdout.splitlines()[0]
    assert "PROVIDER" not in plain.split()
    wide_table = cluster.kubectl("get", "sacred", "named", "-n", namespace, "-o", "wide").stdout
    header, row = (line.split() for line in wide_table.splitlines()[:2])
    assert {"PROVIDER", "REGISTERED"} <= set(header)
    assert "hydra" in row
    listed = cluster.kubectl("get", "credsmith", "-n", namespace, "-o", "name").stdout
    assert "identityprovider.credsmith.io/hydra" in listed  # in the credsmith category
