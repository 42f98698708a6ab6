"""allowedNamespaces of a ClusterIdentityProvider: a metav1.LabelSelector over the
namespace's labels, with Kubernetes' meaning (apimachinery labels.Requirement.Matches)."""

import pytest

from credsmith.api.identity_provider import NamespaceSelector
from credsmith.reconcile.scoping import describe, selects


def selector(**fields):
    return NamespaceSelector.model_validate(fields)


def test_absent_selects_no_namespace():
    assert not selects(None, {})
    assert not selects(None, {"team": "billing"})


def test_empty_selects_every_namespace():
    assert selects(selector(), {})
    assert selects(selector(), {"team": "billing"})
    assert selects(selector(matchLabels={}, matchExpressions=[]), {"x": "y"})


def test_match_labels_all_must_hold():
    chosen = selector(matchLabels={"team": "billing", "env": "prod"})
    assert selects(chosen, {"team": "billing", "env": "prod", "other": "x"})
    assert not selects(chosen, {"team": "billing"})
    assert not selects(chosen, {"team": "billing", "env": "dev"})


CASES = {
    # operator, values, labels -> selected
    "in-match": ("In", ["prod", "staging"], {"env": "prod"}, True),
    "in-other-value": ("In", ["prod"], {"env": "dev"}, False),
    "in-missing": ("In", ["prod"], {}, False),
    "notin-match": ("NotIn", ["prod"], {"env": "prod"}, False),
    "notin-other-value": ("NotIn", ["prod"], {"env": "dev"}, True),
    "notin-missing": ("NotIn", ["prod"], {}, True),  # as Kubernetes: absent is not in
    "exists-present": ("Exists", [], {"env": ""}, True),
    "exists-missing": ("Exists", [], {"team": "x"}, False),
    "doesnotexist-present": ("DoesNotExist", [], {"env": "prod"}, False),
    "doesnotexist-missing": ("DoesNotExist", [], {}, True),
}


@pytest.mark.parametrize(("operator", "values", "labels", "selected"), CASES.values(), ids=CASES)
def test_match_expressions(operator, values, labels, selected):
    requirement = {"key": "env", "operator": operator}
    if values:
        requirement["values"] = values
    assert selects(selector(matchExpressions=[requirement]), labels) is selected


def test_labels_and_expressions_together():
    chosen = selector(
        matchLabels={"team": "billing"},
        matchExpressions=[{"key": "env", "operator": "NotIn", "values": ["prod"]}],
    )
    assert selects(chosen, {"team": "billing", "env": "dev"})
    assert not selects(chosen, {"team": "billing", "env": "prod"})
    assert not selects(chosen, {"env": "dev"})


def test_describe_says_what_a_namespace_needs():
    assert describe(None) == "no allowedNamespaces (no namespace is allowed)"
    assert describe(selector()) == "allowedNamespaces {} (every namespace)"
    assert (
        describe(
            selector(
                matchLabels={"team": "a"}, matchExpressions=[{"key": "x", "operator": "Exists"}]
            )
        )
        == "allowedNamespaces team=a,x"
    )
