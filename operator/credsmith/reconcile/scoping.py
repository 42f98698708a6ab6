"""Which credentials may name which identity provider. Pure.

An IdentityProvider serves only credentials of its own namespace (the runtime looks one up in
the credential's namespace, so another namespace's cannot be named at all). A
ClusterIdentityProvider serves the namespaces its allowedNamespaces selects, by their labels,
with a metav1.LabelSelector's meaning: absent selects no namespace (a cluster provider is
closed until its owner opens it), `{}` selects every namespace, otherwise every matchLabels
entry and every matchExpressions requirement must hold.
"""

from __future__ import annotations

from collections.abc import Mapping

from credsmith.api.consumers import SelectorRequirement
from credsmith.api.identity_provider import NamespaceSelector


def selects(selector: NamespaceSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether `selector` selects a namespace with these labels."""
    if selector is None:
        return False
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    return all(requirement_holds(r, labels) for r in selector.match_expressions)


def requirement_holds(requirement: SelectorRequirement, labels: Mapping[str, str]) -> bool:
    """One matchExpressions entry, as apimachinery's labels.Requirement.Matches."""
    present = requirement.key in labels
    match requirement.operator:
        case "In":
            return present and labels[requirement.key] in requirement.values
        case "NotIn":
            # A namespace without the label is not in the excluded set: NotIn holds.
            return not present or labels[requirement.key] not in requirement.values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case _:  # the schema and the model allow no other operator
            return False


def describe(selector: NamespaceSelector | None) -> str:
    """The selector for a message: what a namespace needs to be allowed."""
    if selector is None:
        return "no allowedNamespaces (no namespace is allowed)"
    parts = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    parts += [r.to_query() for r in selector.match_expressions]
    return "allowedNamespaces " + (",".join(parts) if parts else "{} (every namespace)")
