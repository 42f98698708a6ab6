"""spec.consumers: the Python validators reject what the CEL rules reject, a selector is
rendered in the API server's labelSelector syntax, and the CRDs carry the rules."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from credsmith.api.common import CredentialSpec
from credsmith.api.consumers import MAX_CONSUMERS, Consumer, LabelSelector, SelectorRequirement
from credsmith.api.crd import build_crds
from credsmith.api.service_account_credential import ServiceAccountCredentialSpec

CRDS_DIR = Path(__file__).resolve().parents[3] / "crds"
FILES = ["credsmith.io_serviceaccountcredentials.yaml", "credsmith.io_apiclients.yaml"]
SA = {"serviceAccount": "billing-exporter"}

NAME_XOR_SELECTOR = "has(self.name) != has(self.selector)"
SELECTOR_NOT_EMPTY = (
    "(has(self.matchLabels) && size(self.matchLabels) > 0) || "
    "(has(self.matchExpressions) && size(self.matchExpressions) > 0)"
)
VALUES_RULE = (
    "self.operator in ['In', 'NotIn'] ? "
    "(has(self.values) && size(self.values) > 0) : "
    "(!has(self.values) || size(self.values) == 0)"
)


def spec_with(*consumers: dict[str, Any]) -> CredentialSpec:
    return ServiceAccountCredentialSpec.model_validate({**SA, "consumers": list(consumers)})


def refused(consumer: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        Consumer.model_validate(consumer)
    return str(caught.value)


# ---- Consumer -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "consumer",
    [
        {"kind": "Deployment", "name": "web"},
        {"kind": "StatefulSet", "name": "db"},
        {"kind": "DaemonSet", "name": "agent"},
        {"kind": "Deployment", "selector": {"matchLabels": {"app": "web"}}},
        {
            "kind": "Deployment",
            "selector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
        },
    ],
)
def test_valid_consumers(consumer: dict[str, Any]) -> None:
    parsed = Consumer.model_validate(consumer)
    assert parsed.kind.value == consumer["kind"]
    assert parsed.name == consumer.get("name")
    assert (parsed.selector is None) == ("selector" not in consumer)


def test_consumers_default_to_none() -> None:
    assert ServiceAccountCredentialSpec.model_validate(SA).consumers == []


@pytest.mark.parametrize(
    "consumer",
    [
        {"kind": "Deployment"},
        {"kind": "Deployment", "name": "web", "selector": {"matchLabels": {"app": "web"}}},
    ],
    ids=["neither", "both"],
)
def test_name_xor_selector(consumer: dict[str, Any]) -> None:
    assert "exactly one of consumers.name" in refused(consumer)


@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"matchLabels": {}},
        {"matchExpressions": []},
        {"matchLabels": {}, "matchExpressions": []},
    ],
)
def test_empty_selector_is_refused(selector: dict[str, Any]) -> None:
    message = refused({"kind": "Deployment", "selector": selector})
    assert "consumers.selector must have matchLabels or matchExpressions" in message


@pytest.mark.parametrize("kind", ["Pod", "ReplicaSet", "CronJob", "deployment", ""])
def test_kind_is_one_of_the_workloads(kind: str) -> None:
    refused({"kind": kind, "name": "web"})


@pytest.mark.parametrize("name", ["Web", "web_app", "-web", "a" * 254, ""])
def test_name_is_an_object_name(name: str) -> None:
    refused({"kind": "Deployment", "name": name})


@pytest.mark.parametrize("operator", ["In", "NotIn"])
def test_set_operators_need_values(operator: str) -> None:
    values: dict[str, Any]
    for values in ({}, {"values": []}):
        requirement = {"key": "tier", "operator": operator, **values}
        with pytest.raises(ValidationError, match=r"matchExpressions\.values must be non-empty"):
            SelectorRequirement.model_validate(requirement)
    SelectorRequirement.model_validate({"key": "tier", "operator": operator, "values": ["a"]})


@pytest.mark.parametrize("operator", ["Exists", "DoesNotExist"])
def test_existence_operators_take_no_values(operator: str) -> None:
    with pytest.raises(ValidationError, match=r"matchExpressions\.values must be non-empty"):
        SelectorRequirement.model_validate({"key": "t", "operator": operator, "values": ["a"]})
    SelectorRequirement.model_validate({"key": "t", "operator": operator})
    SelectorRequirement.model_validate({"key": "t", "operator": operator, "values": []})


@pytest.mark.parametrize("operator", ["in", "Equals", "NotExists", "", "!"])
def test_unknown_operator_is_refused(operator: str) -> None:
    with pytest.raises(ValidationError):
        SelectorRequirement.model_validate({"key": "t", "operator": operator, "values": ["a"]})


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"bad key!": "x"}},
        {"matchLabels": {"app": "bad value!"}},
        {"matchLabels": {"app": "x" * 64}},
        {"matchExpressions": [{"key": "", "operator": "Exists"}]},
        {"matchExpressions": [{"key": "t", "operator": "In", "values": ["a b"]}]},
    ],
)
def test_selector_keys_and_values_are_label_shaped(selector: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LabelSelector.model_validate(selector)


# Keys the API server rejects in a label selector (apimachinery's IsQualifiedName): the
# list request would be answered with 400. The schema must refuse them at apply.
LONG_PREFIX = ".".join(["a" * 63] * 4)[:254]  # 254 characters, a valid DNS shape
REJECTED_KEYS = [
    f"{LONG_PREFIX}/x",
    "a" * 300 + "/x",  # the 304-character key of issue 21
    "/x",
    "a/b/c",
    "Example.com/x",
    "example..com/x",
    "-example.com/x",
    "x" * 64,
    "a/" + "x" * 64,
    "-x",
    "x-",
    "x y",
]
ACCEPTED_KEYS = [
    "x",
    "X_y.z-1",
    "example.com/x",
    f"{LONG_PREFIX[:253]}/{'x' * 63}",
    "a-b.c-d/x",
]


@pytest.mark.parametrize("key", REJECTED_KEYS)
def test_selector_keys_are_refused_as_the_api_server_refuses_them(key: str) -> None:
    with pytest.raises(ValidationError, match=r"matchLabels"):
        LabelSelector.model_validate({"matchLabels": {key: "v"}})
    with pytest.raises(ValidationError, match=r"matchExpressions\.0\.key"):
        LabelSelector.model_validate({"matchExpressions": [{"key": key, "operator": "Exists"}]})


@pytest.mark.parametrize("key", ACCEPTED_KEYS)
def test_selector_keys_the_api_server_accepts_are_accepted(key: str) -> None:
    LabelSelector.model_validate({"matchLabels": {key: "v"}})
    LabelSelector.model_validate({"matchExpressions": [{"key": key, "operator": "Exists"}]})


def test_a_long_prefix_is_refused_with_a_message_naming_the_prefix() -> None:
    with pytest.raises(ValidationError) as caught:
        LabelSelector.model_validate(
            {"matchExpressions": [{"key": "a" * 300 + "/x", "operator": "DoesNotExist"}]}
        )
    assert "prefix (before '/') must be a DNS subdomain of at most 253 characters" in str(
        caught.value
    )


@pytest.mark.parametrize(
    "value", ["", "v", "V.1-2_3", "x" * 63], ids=["empty", "short", "mixed", "63"]
)
def test_label_values_the_api_server_accepts_are_accepted(value: str) -> None:
    LabelSelector.model_validate({"matchLabels": {"k": value}})
    if value:
        LabelSelector.model_validate(
            {"matchExpressions": [{"key": "k", "operator": "In", "values": [value]}]}
        )


@pytest.mark.parametrize("value", ["x" * 64, "-v", "v-", "a b", "a,b", "(", "v\n"])
def test_label_values_the_api_server_rejects_are_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        LabelSelector.model_validate({"matchLabels": {"k": value}})
    with pytest.raises(ValidationError):
        LabelSelector.model_validate(
            {"matchExpressions": [{"key": "k", "operator": "In", "values": [value]}]}
        )


def test_at_most_sixteen_consumers() -> None:
    assert MAX_CONSUMERS == 16
    many = [{"kind": "Deployment", "name": f"web-{i}"} for i in range(MAX_CONSUMERS + 1)]
    assert len(spec_with(*many[:MAX_CONSUMERS]).consumers) == MAX_CONSUMERS
    with pytest.raises(ValidationError, match="at most 16"):
        spec_with(*many)


# ---- LabelSelector.to_query -----------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "query"),
    [
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, "tier in (web,api)"),
        ({"key": "tier", "operator": "NotIn", "values": ["batch"]}, "tier notin (batch)"),
        ({"key": "example.com/tier", "operator": "Exists"}, "example.com/tier"),
        ({"key": "example.com/tier", "operator": "DoesNotExist"}, "!example.com/tier"),
    ],
)
def test_requirement_to_query(requirement: dict[str, Any], query: str) -> None:
    assert SelectorRequirement.model_validate(requirement).to_query() == query
    selector = LabelSelector.model_validate({"matchExpressions": [requirement]})
    assert selector.to_query() == query


def test_selector_to_query_joins_labels_then_expressions() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "c", "operator": "In", "values": ["x"]},
                {"key": "d", "operator": "DoesNotExist"},
            ],
        }
    )
    assert selector.to_query() == "a=1,b=2,c in (x),!d"


def test_match_labels_to_query() -> None:
    selector = LabelSelector.model_validate({"matchLabels": {"app.kubernetes.io/name": "web"}})
    assert selector.to_query() == "app.kubernetes.io/name=web"


# ---- the CRDs -------------------------------------------------------------------------


def consumer_node(crd: dict[str, Any]) -> dict[str, Any]:
    [version] = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    node: dict[str, Any] = spec["properties"]["consumers"]
    return node


def crds() -> list[tuple[str, dict[str, Any]]]:
    # The credential kinds (the identity provider kinds have no consumers).
    built = [(f"built {c['spec']['names']['kind']}", c) for c in build_crds()[:2]]
    files = [(f"crds/{f}", yaml.safe_load((CRDS_DIR / f).read_text())) for f in FILES]
    return built + files


@pytest.mark.parametrize(("where", "crd"), crds(), ids=[w for w, _ in crds()])
def test_crd_carries_the_consumer_rules(where: str, crd: dict[str, Any]) -> None:
    consumers = consumer_node(crd)
    assert consumers["type"] == "array"
    assert consumers["maxItems"] == MAX_CONSUMERS
    item = consumers["items"]
    assert item["required"] == ["kind"]
    assert item["properties"]["kind"]["enum"] == ["Deployment", "StatefulSet", "DaemonSet"]

    [xor] = item["x-kubernetes-validations"]
    assert xor["rule"] == NAME_XOR_SELECTOR
    assert "consumers.name" in xor["message"]
    assert "consumers.selector" in xor["message"]

    selector = item["properties"]["selector"]
    [not_empty, label_prefixes] = selector["x-kubernetes-validations"]
    assert not_empty["rule"] == SELECTOR_NOT_EMPTY
    assert not_empty["message"].startswith("consumers.selector must have matchLabels")
    assert label_prefixes["rule"] == (
        "!has(self.matchLabels) || self.matchLabels.all(k, k.matches('^([^/]{1,253}/)?[^/]*$'))"
    )
    assert label_prefixes["fieldPath"] == ".matchLabels"
    assert label_prefixes["message"].startswith("selector.matchLabels: every key's prefix")

    expression = selector["properties"]["matchExpressions"]["items"]
    [values, key_prefix] = expression["x-kubernetes-validations"]
    assert values["rule"] == VALUES_RULE
    assert values["fieldPath"] == ".values"
    assert values["message"].startswith("matchExpressions.values must be non-empty")
    assert key_prefix["rule"] == "self.key.matches('^([^/]{1,253}/)?[^/]*$')"
    assert key_prefix["fieldPath"] == ".key"
    assert key_prefix["message"].startswith("matchExpressions.key: a label key's prefix")
    assert expression["properties"]["operator"]["enum"] == ["In", "NotIn", "Exists", "DoesNotExist"]


def test_crd_files_match_the_models() -> None:
    built = {c["spec"]["names"]["kind"]: consumer_node(c) for c in build_crds()[:2]}
    for file in FILES:
        crd = yaml.safe_load((CRDS_DIR / file).read_text())
        assert consumer_node(crd) == built[crd["spec"]["names"]["kind"]]
