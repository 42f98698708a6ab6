"""Generate the CustomResourceDefinitions from the pydantic models.

The models in this package are the one source of truth; `crds/` is this module's
output, and a unit test fails when it is stale. Regenerate with:

    python -m credsmith.api.crd crds
"""

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from credsmith import GROUP, VERSION
from credsmith.api.api_client import KIND as API_CLIENT
from credsmith.api.api_client import ApiClientSpec, ApiClientStatus
from credsmith.api.base import WireModel
from credsmith.api.identity_provider import (
    CLUSTER_IDENTITY_PROVIDER,
    IDENTITY_PROVIDER,
    ClusterIdentityProviderSpec,
    IdentityProviderSpec,
    IdentityProviderStatus,
)
from credsmith.api.schema import structural_schema
from credsmith.api.service_account_credential import KIND as SERVICE_ACCOUNT_CREDENTIAL
from credsmith.api.service_account_credential import (
    ServiceAccountCredentialSpec,
    ServiceAccountCredentialStatus,
)

CATEGORY = "credsmith"
HEADER = (
    "# Generated from the pydantic models in credsmith/api by "
    "`python -m credsmith.api.crd crds`. Do not edit.\n"
)


def _column(
    name: str, type_: str, json_path: str, description: str, priority: int = 0
) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": type_,
        "jsonPath": json_path,
        "description": description,
    }
    if priority:
        column["priority"] = priority  # shown only by `kubectl get -o wide`
    return column


_READY = '.status.conditions[?(@.type=="Ready")]'
READY = _column(
    "Ready", "string", f"{_READY}.status", "Whether the credential is issued and current."
)
REASON = _column("Reason", "string", f"{_READY}.reason", "Why Ready is what it is.", priority=1)
CLIENT_ID = _column("Client ID", "string", ".status.clientId", "The issued client ID.")
SECRET = _column("Secret", "string", ".status.secretName", "The Secret holding the credential.")
REVISION = _column(
    "Revision", "integer", ".status.revision", "1 on first issue, +1 on every rotation."
)
# A string, not a date: kubectl shows a future date column as "<invalid>".
NEXT_ROTATION = _column(
    "Next Rotation", "string", ".status.nextRotationAt", "When the next scheduled rotation is due."
)
AGE = _column("Age", "date", ".metadata.creationTimestamp", "Time since creation.")
PROVIDER = _column(
    "Provider",
    "string",
    ".spec.identityProvider.name",
    "The identity provider that also holds the credential.",
    priority=1,
)
REGISTERED = _column(
    "Registered",
    "string",
    '.status.conditions[?(@.type=="Registered")].status',
    "Whether the identity provider holds the credential as the Secret does.",
    priority=1,
)
PROVIDER_COLUMNS = (
    _column("Type", "string", ".status.type", "Hydra or Keycloak."),
    _column(
        "Ready", "string", f"{_READY}.status", "Whether the provider is reached and authenticated."
    ),
    _column("Reason", "string", f"{_READY}.reason", "Why Ready is what it is.", priority=1),
    _column("Clients", "integer", ".status.clients", "How many clients it holds for credentials."),
    AGE,
)


@dataclass(frozen=True)
class KindDefinition:
    """What the CRD of one kind is made of."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec: type[WireModel]
    status: type[WireModel]
    columns: tuple[dict[str, Any], ...]
    selectable_fields: tuple[str, ...]
    scope: str = "Namespaced"


KINDS = (
    KindDefinition(
        kind=SERVICE_ACCOUNT_CREDENTIAL,
        plural="serviceaccountcredentials",
        short_names=("sacred",),
        description=(
            "ServiceAccountCredential issues a client ID and secret (or API key, key pair, "
            "basic-auth password) for a machine identity into a Secret, and keeps it rotated."
        ),
        spec=ServiceAccountCredentialSpec,
        status=ServiceAccountCredentialStatus,
        columns=(
            READY,
            REASON,
            _column(
                "Type", "string", ".status.parameters.type", "The credential type.", priority=1
            ),
            CLIENT_ID,
            SECRET,
            REVISION,
            NEXT_ROTATION,
            _column(
                "Service Account",
                "string",
                ".spec.serviceAccount",
                "The identity the credential belongs to.",
                priority=1,
            ),
            PROVIDER,
            REGISTERED,
            AGE,
        ),
        selectable_fields=(".spec.serviceAccount",),
    ),
    KindDefinition(
        kind=API_CLIENT,
        plural="apiclients",
        short_names=("apiclient",),
        description=(
            "ApiClient issues a client ID and secret for a client of an API that you serve, "
            "with a display name and roles, and keeps a registry of verifiers for the server."
        ),
        spec=ApiClientSpec,
        status=ApiClientStatus,
        columns=(
            _column("Display Name", "string", ".spec.displayName", "The client's name for people."),
            READY,
            REASON,
            CLIENT_ID,
            SECRET,
            REVISION,
            NEXT_ROTATION,
            # kubectl prints only the first match of a [*] path, so a count, not the ids.
            _column("Roles", "integer", ".status.roleCount", "How many roles the client has."),
            PROVIDER,
            REGISTERED,
            AGE,
        ),
        selectable_fields=(".spec.displayName", ".spec.registry.name"),
    ),
    KindDefinition(
        kind=IDENTITY_PROVIDER,
        plural="identityproviders",
        short_names=("idp",),
        description=(
            "IdentityProvider is an Ory Hydra or a Keycloak realm where the credentials of "
            "its namespace that name it are also registered as OAuth2 clients."
        ),
        spec=IdentityProviderSpec,
        status=IdentityProviderStatus,
        columns=PROVIDER_COLUMNS,
        selectable_fields=(),
    ),
    KindDefinition(
        kind=CLUSTER_IDENTITY_PROVIDER,
        plural="clusteridentityproviders",
        short_names=("cidp",),
        description=(
            "ClusterIdentityProvider is an Ory Hydra or a Keycloak realm where credentials "
            "of the namespaces its allowedNamespaces selects are also registered as OAuth2 "
            "clients."
        ),
        spec=ClusterIdentityProviderSpec,
        status=IdentityProviderStatus,
        columns=PROVIDER_COLUMNS,
        selectable_fields=(),
        scope="Cluster",
    ),
)


def _root_schema(kind: KindDefinition) -> dict[str, Any]:
    status = structural_schema(kind.status, "status")
    # Tolerate fields a newer operator writes: status is ours, not the user's.
    status["x-kubernetes-preserve-unknown-fields"] = True
    root: dict[str, Any] = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "The versioned schema of this object: credsmith.io/v1alpha1.",
            },
            "kind": {
                "type": "string",
                "description": "The REST resource this object represents.",
            },
            "metadata": {"type": "object"},
            "spec": structural_schema(kind.spec, "spec"),
            "status": status,
        },
    }
    # CEL rules for the root (they need metadata.name): the credential kinds have some.
    if rules := getattr(kind.spec, "root_validations", ()):
        root["x-kubernetes-validations"] = list(rules)
    return root


def build_crd(kind: KindDefinition) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    singular = kind.kind.lower()
    version: dict[str, Any] = {
        "name": VERSION,
        "served": True,
        "storage": True,
        "subresources": {"status": {}},
        "additionalPrinterColumns": list(kind.columns),
        "schema": {"openAPIV3Schema": _root_schema(kind)},
    }
    if kind.selectable_fields:
        version["selectableFields"] = [{"jsonPath": p} for p in kind.selectable_fields]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "scope": kind.scope,
            "versions": [version],
        },
    }


def build_crds() -> list[dict[str, Any]]:
    """Every CRD: ServiceAccountCredential, ApiClient, IdentityProvider,
    ClusterIdentityProvider."""
    return [build_crd(kind) for kind in KINDS]


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so descriptions stay readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def render_crd_yaml(crd: dict[str, Any]) -> str:
    """One CRD as a YAML document: keys sorted, so the output is stable."""
    # No line wrapping: a CEL rule or description reads (and diffs) as one line.
    body = yaml.dump(
        crd, Dumper=_Dumper, sort_keys=True, allow_unicode=True, width=2**31 - 1, indent=2
    )
    return f"{HEADER}---\n{body}"


def render_crds_yaml() -> str:
    """Every CRD as one multi-document YAML stream (what `credsmith crds` prints)."""
    return "".join(render_crd_yaml(crd) for crd in build_crds())


def crd_file_name(crd: dict[str, Any]) -> str:
    """`<group>_<plural>.yaml`, as controller-gen names them."""
    return f"{crd['spec']['group']}_{crd['spec']['names']['plural']}.yaml"


def write_crds(directory: Path) -> list[Path]:
    """Write each CRD to its own file in `directory`; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for crd in build_crds():
        path = directory / crd_file_name(crd)
        path.write_text(render_crd_yaml(crd), encoding="utf-8")
        paths.append(path)
    return paths


def stale_crds(directory: Path) -> list[Path]:
    """The CRD files in `directory` that are missing or differ from the models."""
    stale = []
    for crd in build_crds():
        path = directory / crd_file_name(crd)
        if not path.is_file() or path.read_text(encoding="utf-8") != render_crd_yaml(crd):
            stale.append(path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write credsmith's CRDs from its API models.")
    parser.add_argument("directory", type=Path, help="where to write them, e.g. crds")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any file is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_crds(args.directory)
        for path in stale:
            print(f"stale: {path}", file=sys.stderr)
        return 1 if stale else 0
    for path in write_crds(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
