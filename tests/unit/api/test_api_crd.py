"""The generated CRDs: structural, bounded, no spec defaults, the CEL rules in place
(and naming fields that exist), printer columns, and crds/ up to date."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from credsmith import GROUP, VERSION
from credsmith.api.alphabets import min_length
from credsmith.api.crd import (
    build_crds,
    main,
    render_crd_yaml,
    render_crds_yaml,
    stale_crds,
    write_crds,
)
from credsmith.api.enums import SecretAlphabet

CRDS_DIR = Path(__file__).resolve().parents[3] / "crds"
FILES = [
    "credsmith.io_serviceaccountcredentials.yaml",
    "credsmith.io_apiclients.yaml",
    "credsmith.io_identityproviders.yaml",
    "credsmith.io_clusteridentityproviders.yaml",
]
CREDENTIAL_KINDS = ("ServiceAccountCredential", "ApiClient")
PROVIDER_KINDS = ("IdentityProvider", "ClusterIdentityProvider")
FORBIDDEN = {"$ref", "$defs", "definitions", "anyOf", "allOf", "oneOf", "not", "default"}
FORBIDDEN |= {"title", "nullable", "propertyNames", "patternProperties", "uniqueItems", "const"}


def crd_by_kind() -> dict[str, dict[str, Any]]:
    return {crd["spec"]["names"]["kind"]: crd for crd in build_crds()}


def version_of(crd: dict[str, Any]) -> dict[str, Any]:
    [version] = crd["spec"]["versions"]
    return version  # type: ignore[no-any-return]


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return version_of(crd)["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def walk(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node, with its path."""
    yield path, node
    for name, sub in node.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}.*")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    """Kubernetes' structural-schema rules, plus our own: every string, list and map is
    bounded (CEL cost estimation), and no defaults anywhere."""
    problems = []
    for path, node in walk(schema):
        where = path or "<root>"
        problems += [f"{where}: has {key}" for key in FORBIDDEN & node.keys()]
        typed = node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}
        if not typed and not node.get("x-kubernetes-int-or-string"):
            problems.append(f"{where}: no type")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: both properties and additionalProperties")
        if node.get("type") == "string" and "maxLength" not in node:
            problems.append(f"{where}: unbounded string")
        if node.get("type") == "array" and "maxItems" not in node:
            problems.append(f"{where}: unbounded list")
        if "additionalProperties" in node and "maxProperties" not in node:
            problems.append(f"{where}: unbounded map")
        if node.get("type") == "array" and node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            missing = set(keys) - set(node["items"].get("required", []))
            problems += [f"{where}: list-map key {k} not required" for k in sorted(missing)]
    return problems


def test_structural_checker_catches_problems() -> None:
    bad = {
        "type": "object",
        "properties": {
            "a": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "b": {"type": "string", "maxLength": 1, "default": "x"},
            "c": {"type": "string"},
            "d": {"type": "array", "items": {"type": "integer"}},
            "e": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    }
    assert structural_problems(bad) == [
        ".a: has anyOf",
        ".a: no type",
        ".b: has default",
        ".c: unbounded string",
        ".d: unbounded list",
        ".e: unbounded map",
    ]


@pytest.mark.parametrize("kind", [*CREDENTIAL_KINDS, *PROVIDER_KINDS])
def test_schema_is_structural_and_bounded(kind: str) -> None:
    schema = root_schema(crd_by_kind()[kind])
    assert structural_problems(schema["properties"]["spec"]) == []
    assert structural_problems(schema["properties"]["status"]) == []
    assert schema["required"] == ["spec"]
    assert schema["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("kind", [*CREDENTIAL_KINDS, *PROVIDER_KINDS])
def test_no_default_anywhere(kind: str) -> None:
    rendered = render_crd_yaml(crd_by_kind()[kind])
    assert "default:" not in rendered.replace("(default", "")


def test_names_and_scope() -> None:
    sac, client, idp, cidp = build_crds()
    assert sac["metadata"]["name"] == f"serviceaccountcredentials.{GROUP}"
    assert sac["spec"]["names"] == {
        "kind": "ServiceAccountCredential",
        "listKind": "ServiceAccountCredentialList",
        "plural": "serviceaccountcredentials",
        "singular": "serviceaccountcredential",
        "shortNames": ["sacred"],
        "categories": ["credsmith"],
    }
    assert client["spec"]["names"]["shortNames"] == ["apiclient"]
    assert client["spec"]["names"]["categories"] == ["credsmith"]
    for crd in (sac, client):
        assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
        assert crd["spec"]["scope"] == "Namespaced"
        version = version_of(crd)
        assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)
        assert version["subresources"] == {"status": {}}
    assert idp["metadata"]["name"] == f"identityproviders.{GROUP}"
    assert (idp["spec"]["names"]["shortNames"], idp["spec"]["scope"]) == (["idp"], "Namespaced")
    assert cidp["metadata"]["name"] == f"clusteridentityproviders.{GROUP}"
    assert (cidp["spec"]["names"]["shortNames"], cidp["spec"]["scope"]) == (["cidp"], "Cluster")
    for crd in (idp, cidp):
        assert crd["spec"]["names"]["categories"] == ["credsmith"]
        assert version_of(crd)["subresources"] == {"status": {}}
        assert "selectableFields" not in version_of(crd)


def test_status_tolerates_unknown_fields_and_keys_conditions_by_type() -> None:
    for crd in build_crds():
        status = root_schema(crd)["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
        conditions = status["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert conditions["items"]["required"] == [
            "type",
            "status",
            "lastTransitionTime",
            "reason",
            "message",
        ]
        if crd["spec"]["names"]["kind"] in PROVIDER_KINDS:
            continue
        for field in ("issuedAt", "rotatedAt", "nextRotationAt", "previousExpiresAt"):
            assert status["properties"][field]["format"] == "date-time"


def test_kind_specific_status_fields() -> None:
    kinds = crd_by_kind()
    sac = root_schema(kinds["ServiceAccountCredential"])["properties"]["status"]["properties"]
    client = root_schema(kinds["ApiClient"])["properties"]["status"]["properties"]
    assert "keyId" in sac
    assert "id" not in sac
    assert client["id"]["format"] == "uuid"
    assert "keyId" not in client
    assert "type" in sac["parameters"]["properties"]
    assert "registryHash" in client["parameters"]["properties"]


def test_roles_are_a_list_map_keyed_by_id() -> None:
    spec = root_schema(crd_by_kind()["ApiClient"])["properties"]["spec"]
    roles = spec["properties"]["roles"]
    assert roles["x-kubernetes-list-type"] == "map"
    assert roles["x-kubernetes-list-map-keys"] == ["id"]
    assert roles["maxItems"] == 64
    assert roles["items"]["required"] == ["id"]
    assert spec["required"] == ["displayName"]


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("ServiceAccountCredential", "serviceAccount"),
        ("ServiceAccountCredential", "title"),
        ("ServiceAccountCredential", "description"),
        ("ApiClient", "displayName"),
        ("ApiClient", "description"),
        ("ApiClient", "roles[].name"),
    ],
)
def test_free_text_forbids_control_characters(kind: str, path: str) -> None:
    spec = root_schema(crd_by_kind()[kind])["properties"]["spec"]
    node = dict(walk(spec))["." + path]
    # The regex text itself, backslashes and all: RE2 (the apiserver) reads \x escapes.
    assert node["pattern"] == r"^[^\x00-\x1F\x7F]*$"
    pattern = re.compile(node["pattern"])
    assert pattern.fullmatch("Déploiement ✓")
    for bad in ("a\nb", "a\tb", "\x00", "a\x7f"):
        assert not pattern.fullmatch(bad)


def rules_by_location(
    schema: dict[str, Any],
) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    for path, node in walk(schema):
        for entry in node.get("x-kubernetes-validations", []):
            yield path, node, entry


def all_rules(kind: str) -> dict[str, dict[str, str]]:
    rules = rules_by_location(root_schema(crd_by_kind()[kind]))
    return {entry["rule"]: entry for _, _, entry in rules}


ENTROPY_TABLE = "{" + ", ".join(f"'{a.value}': {min_length(a)}" for a in SecretAlphabet) + "}"
SHARED_RULES = {
    "!has(self.value) || (!has(self.format) && !has(self.prefix))",
    "!has(self.period) || duration(self.period) >= duration('1m')",
    "!has(self.period) || !has(self.overlap) || duration(self.overlap) < duration(self.period)",
    "(has(self.length) ? self.length : 48) >= "
    + ENTROPY_TABLE
    + "[(has(self.alphabet) ? self.alphabet : 'Alphanumeric')]",
    "(has(self.clientId) && has(self.clientId.format) ? self.clientId.format : 'UUID') == "
    "(has(oldSelf.clientId) && has(oldSelf.clientId.format) ? oldSelf.clientId.format : 'UUID')"
    " && (has(self.clientId) && has(self.clientId.prefix) ? self.clientId.prefix : '') == "
    "(has(oldSelf.clientId) && has(oldSelf.clientId.prefix) ? oldSelf.clientId.prefix : '')"
    " && (has(self.clientId) && has(self.clientId.value) ? self.clientId.value : '') == "
    "(has(oldSelf.clientId) && has(oldSelf.clientId.value) ? oldSelf.clientId.value : '')",
    "(has(self.spec.secretName) ? self.spec.secretName : self.metadata.name) == "
    "(has(oldSelf.spec.secretName) ? oldSelf.spec.secretName : oldSelf.metadata.name)",
    "self.all(k, size(k) >= 1 && size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",
}
SAC_RULES = {
    "(has(self.type) ? self.type : 'ClientSecret') == "
    "(has(oldSelf.type) ? oldSelf.type : 'ClientSecret')",
    "!has(self.keyPair) || (has(self.type) && self.type == 'KeyPair')",
    "!has(self.identityProvider) || (has(self.type) ? self.type : 'ClientSecret') in "
    "['ClientSecret', 'KeyPair']",
}
API_CLIENT_RULES = {
    "!has(self.spec.registry) || self.spec.registry.name != "
    "(has(self.spec.secretName) ? self.spec.secretName : self.metadata.name)",
}


def test_entropy_table_matches_the_alphabets() -> None:
    assert ENTROPY_TABLE == (
        "{'Alphanumeric': 22, 'URLSafe': 22, 'Hex': 32, 'Base64': 22, 'Printable': 20}"
    )


@pytest.mark.parametrize(
    ("kind", "expected", "absent"),
    [
        ("ServiceAccountCredential", SHARED_RULES | SAC_RULES, API_CLIENT_RULES),
        ("ApiClient", SHARED_RULES | API_CLIENT_RULES, SAC_RULES),
    ],
)
def test_cel_rules_are_present(kind: str, expected: set[str], absent: set[str]) -> None:
    rules = all_rules(kind)
    assert expected <= rules.keys()
    assert not absent & rules.keys()
    # labels and annotations keys: a qualified name, checked in CEL (raw string literal)
    schema = root_schema(crd_by_kind()[kind])
    key_rules = {
        path: entry["rule"]
        for path, _, entry in rules_by_location(schema)
        if entry["rule"].startswith("self.all(k, size(k) >= 1 && size(k) <= 317")
    }
    assert set(key_rules) == {
        ".spec.secretTemplate.labels",
        ".spec.secretTemplate.annotations",
        ".spec.consumers[].selector.matchLabels",
    }
    assert all("k.matches(r'^([a-z0-9]" in r for r in key_rules.values())


def test_rules_sit_where_they_govern() -> None:
    schema = root_schema(crd_by_kind()["ServiceAccountCredential"])
    where = {entry["rule"]: path for path, _, entry in rules_by_location(schema)}
    assert where["!has(self.keyPair) || (has(self.type) && self.type == 'KeyPair')"] == ".spec"
    assert where["!has(self.value) || (!has(self.format) && !has(self.prefix))"] == ".spec.clientId"
    entropy = [r for r in where if r.startswith("(has(self.length)")]
    assert sorted(where[r] for r in entropy) == [".spec.extraSecrets[]", ".spec.secret"]
    [secret_name] = [r for r in where if "self.spec.secretName" in r]
    assert where[secret_name] == ""


def test_entropy_rule_message_names_the_minimum() -> None:
    [entry] = [
        e
        for r, e in all_rules("ApiClient").items()
        if r.startswith("(has(self.length)") and "messageExpression" in e
    ]
    assert entry["fieldPath"] == ".length"
    assert "'Hex': '32'" in entry["messageExpression"]
    assert entry["messageExpression"].startswith("'secret.length must be at least ' + ")
    assert "Hex 32" in entry["message"]


FIELD_REF = re.compile(r"\b(self|oldSelf)((?:\.\w+)*)(\()?")


def referenced_paths(cel: str) -> list[list[str]]:
    """Field paths a rule reads from self/oldSelf (a final `.name(` is a method call)."""
    paths = []
    for match in FIELD_REF.finditer(cel):
        segments = match.group(2).split(".")[1:]
        if match.group(3):
            segments = segments[:-1]
        paths.append(segments)
    return paths


def resolves(node: dict[str, Any], segments: list[str], at_root: bool) -> bool:
    if at_root and segments[:1] == ["metadata"]:
        return segments[1:] in ([], ["name"], ["generateName"])
    for name in segments:
        if name not in node.get("properties", {}):
            return False
        node = node["properties"][name]
    return True


def test_referenced_paths_helper() -> None:
    assert referenced_paths("self.all(k, k.matches('x')) && has(oldSelf.a.b)") == [[], ["a", "b"]]


@pytest.mark.parametrize("kind", [*CREDENTIAL_KINDS, *PROVIDER_KINDS])
def test_every_rule_reads_fields_that_exist_and_says_which(kind: str) -> None:
    schema = root_schema(crd_by_kind()[kind])
    for path, node, entry in rules_by_location(schema):
        cel = entry["rule"]
        for segments in referenced_paths(cel) + referenced_paths(
            entry.get("messageExpression", "")
        ):
            assert resolves(node, segments, at_root=path == ""), f"{path}: {cel} reads {segments}"
        if "fieldPath" in entry:
            field = entry["fieldPath"].lstrip(".").split(".")
            assert resolves(node, field, at_root=path == ""), f"{path}: fieldPath {field}"
        assert cel.count("(") == cel.count(")"), cel
        assert cel.replace("\\'", "").count("'") % 2 == 0, cel
        # The message names the field: a dotted field path such as rotation.overlap.
        assert re.search(r"\b[a-z][A-Za-z]*\.[a-z][A-Za-z]*", entry["message"]), entry
        if "oldSelf" in cel:  # transition rules cannot sit under a list
            assert "[]" not in path


def test_printer_columns() -> None:
    kinds = crd_by_kind()
    columns = {
        kind: [
            (c["name"], c["type"], c["jsonPath"], c.get("priority", 0))
            for c in version_of(crd)["additionalPrinterColumns"]
        ]
        for kind, crd in kinds.items()
    }
    ready = '.status.conditions[?(@.type=="Ready")]'
    shared = [
        ("Ready", "string", f"{ready}.status", 0),
        ("Reason", "string", f"{ready}.reason", 1),
        ("Client ID", "string", ".status.clientId", 0),
        ("Secret", "string", ".status.secretName", 0),
        ("Revision", "integer", ".status.revision", 0),
        # A string: kubectl prints a future date column as "<invalid>".
        ("Next Rotation", "string", ".status.nextRotationAt", 0),
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]
    for kind in CREDENTIAL_KINDS:
        assert [c for c in columns[kind] if c in shared] == shared
        # The provider only in -o wide: the default columns stay as they were.
        assert ("Provider", "string", ".spec.identityProvider.name", 1) in columns[kind]
        registered = '.status.conditions[?(@.type=="Registered")].status'
        assert ("Registered", "string", registered, 1) in columns[kind]
    for kind in PROVIDER_KINDS:
        assert [c for c in columns[kind] if c[3] == 0] == [
            ("Type", "string", ".status.type", 0),
            ("Ready", "string", f"{ready}.status", 0),
            ("Clients", "integer", ".status.clients", 0),
            ("Age", "date", ".metadata.creationTimestamp", 0),
        ]
    assert columns["ApiClient"][0] == ("Display Name", "string", ".spec.displayName", 0)
    assert ("Roles", "integer", ".status.roleCount", 0) in columns["ApiClient"]
    assert ("Type", "string", ".status.parameters.type", 1) in columns["ServiceAccountCredential"]


def test_render_is_four_documents_in_order_and_round_trips() -> None:
    text = render_crds_yaml()
    assert text.count("\n---\n") == 4
    documents = list(yaml.safe_load_all(text))
    assert documents == build_crds()
    assert [d["spec"]["names"]["kind"] for d in documents] == [
        *CREDENTIAL_KINDS,
        *PROVIDER_KINDS,
    ]
    assert render_crds_yaml() == text  # stable


def test_write_and_detect_stale_files(tmp_path: Path) -> None:
    paths = write_crds(tmp_path / "crds")
    assert [p.name for p in paths] == FILES
    assert stale_crds(tmp_path / "crds") == []
    assert main([str(tmp_path / "crds"), "--check"]) == 0
    first = paths[0]
    first.write_text(first.read_text().replace("Deploy", "deploy").replace("Time since", "Age of"))
    paths[1].unlink()
    assert stale_crds(tmp_path / "crds") == paths[:2]
    assert main([str(tmp_path / "crds"), "--check"]) == 1
    assert main([str(tmp_path / "crds")]) == 0
    assert stale_crds(tmp_path / "crds") == []


def test_crds_directory_is_up_to_date() -> None:
    stale = [p.name for p in stale_crds(CRDS_DIR)]
    assert stale == [], f"crds/ is stale: run `python -m credsmith.api.crd crds` ({stale})"
    assert sorted(p.name for p in CRDS_DIR.glob("*.yaml")) == sorted(FILES)
