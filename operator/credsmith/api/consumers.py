"""spec.consumers and status.consumers: the workloads rolled out on every new value.

A consumer is one workload by name, or the workloads a label selector picks, in the
resource's namespace. The operator rolls each one (a pod-template annotation, as `kubectl
rollout restart` does) once per revision, and keeps the previous value a little longer while
one has not finished (at most twice rotation.overlap after the rotation).
"""

from typing import Annotated, Self

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from credsmith.api.base import (
    LABEL_VALUE,
    QUALIFIED_NAME,
    ObjectName,
    WireModel,
    rule,
    validations,
)
from credsmith.api.enums import WorkloadKind

MAX_CONSUMERS = 16
# status.consumers lists at most this many workloads (a selector may pick more: the rest are
# rolled all the same and counted in the ConsumersRolledOut condition's message).
MAX_CONSUMER_STATUSES = 64
# status.consumers[].message: the API server's messages are cut to this length.
MAX_CONSUMER_MESSAGE = 1024

# A label key as the API server checks one in a selector: QUALIFIED_NAME's shape, and a
# prefix (before "/") of at most 253 characters, which that pattern cannot bound (RE2 has no
# lookahead): PREFIX_LENGTH does, in Python and in CEL. Without it the CRD admits a key whose
# list request the API server answers with 400.
MAX_PREFIX = 253
PREFIX_LENGTH = f"^([^/]{{1,{MAX_PREFIX}}}/)?[^/]*$"
_PREFIX_MESSAGE = (
    f"a label key's prefix (before '/') must be a DNS subdomain of at most {MAX_PREFIX} characters"
)


def _prefix_length(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    if slash and len(prefix) > MAX_PREFIX:
        raise ValueError(_PREFIX_MESSAGE)
    return key


SelectorKey = Annotated[
    str,
    Field(min_length=1, max_length=MAX_PREFIX + 1 + 63, pattern=QUALIFIED_NAME),
    AfterValidator(_prefix_length),
]
SelectorValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]

_SET_OPERATORS = ("In", "NotIn")
_EXISTENCE_OPERATORS = ("Exists", "DoesNotExist")
_VALUES_RULE = (
    "matchExpressions.values must be non-empty for In and NotIn, and empty for Exists "
    "and DoesNotExist"
)


class SelectorRequirement(WireModel):
    """One matchExpressions entry of a metav1.LabelSelector."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "self.operator in ['In', 'NotIn'] ? "
                "(has(self.values) && size(self.values) > 0) : "
                "(!has(self.values) || size(self.values) == 0)",
                _VALUES_RULE,
                field_path=".values",
            ),
            rule(
                f"self.key.matches('{PREFIX_LENGTH}')",
                f"matchExpressions.key: {_PREFIX_MESSAGE}",
                field_path=".key",
            ),
        )
    )

    key: SelectorKey = Field(description="The label key.")
    operator: Annotated[
        str, Field(json_schema_extra={"enum": [*_SET_OPERATORS, *_EXISTENCE_OPERATORS]})
    ] = Field(description="In, NotIn, Exists or DoesNotExist.")
    values: list[SelectorValue] = Field(
        default_factory=list, max_length=32, description="The values, for In and NotIn."
    )

    @model_validator(mode="after")
    def _operator_and_values(self) -> Self:
        if self.operator not in (*_SET_OPERATORS, *_EXISTENCE_OPERATORS):
            raise ValueError("operator must be one of In, NotIn, Exists, DoesNotExist")
        if (self.operator in _SET_OPERATORS) != bool(self.values):
            raise ValueError(_VALUES_RULE)
        return self

    def to_query(self) -> str:
        """The requirement in the API server's labelSelector syntax."""
        match self.operator:
            case "In":
                return f"{self.key} in ({','.join(self.values)})"
            case "NotIn":
                return f"{self.key} notin ({','.join(self.values)})"
            case "Exists":
                return self.key
            case _:
                return f"!{self.key}"


_SELECTOR_NOT_EMPTY = (
    "consumers.selector must have matchLabels or matchExpressions: an empty selector would "
    "pick every workload of the namespace"
)


class LabelSelector(WireModel):
    """A metav1.LabelSelector; it must select something (an empty one is refused)."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule(
                "(has(self.matchLabels) && size(self.matchLabels) > 0) || "
                "(has(self.matchExpressions) && size(self.matchExpressions) > 0)",
                _SELECTOR_NOT_EMPTY,
            ),
            rule(
                f"!has(self.matchLabels) || self.matchLabels.all(k, k.matches('{PREFIX_LENGTH}'))",
                f"selector.matchLabels: every key's prefix (before '/') must be a DNS "
                f"subdomain of at most {MAX_PREFIX} characters",
                field_path=".matchLabels",
            ),
        )
    )

    match_labels: dict[SelectorKey, SelectorValue] = Field(
        default_factory=dict, max_length=16, description="Labels the workload must have."
    )
    match_expressions: list[SelectorRequirement] = Field(
        default_factory=list, max_length=16, description="Requirements on the workload's labels."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not self.match_labels and not self.match_expressions:
            raise ValueError(_SELECTOR_NOT_EMPTY)
        return self

    def to_query(self) -> str:
        """The selector in the API server's labelSelector syntax (for a list request)."""
        parts = [f"{key}={value}" for key, value in sorted(self.match_labels.items())]
        parts += [requirement.to_query() for requirement in self.match_expressions]
        return ",".join(parts)


_NAME_XOR_SELECTOR = (
    "a consumer sets exactly one of consumers.name (one workload) and consumers.selector "
    "(the workloads with its labels)"
)


class Consumer(WireModel):
    """A workload that reads the credential: rolled out on every new value."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            rule("has(self.name) != has(self.selector)", _NAME_XOR_SELECTOR)
        )
    )

    kind: WorkloadKind = Field(description="Deployment, StatefulSet or DaemonSet (apps/v1).")
    name: ObjectName | None = Field(None, description="The workload's name, in this namespace.")
    selector: LabelSelector | None = Field(
        None, description="Or: every workload of this kind in this namespace with these labels."
    )

    @model_validator(mode="after")
    def _name_xor_selector(self) -> Self:
        if (self.name is None) == (self.selector is None):
            raise ValueError(_NAME_XOR_SELECTOR)
        return self


class ConsumerStatus(WireModel):
    """One workload found among the consumers, and how far it has followed the credential;
    or a consumer entry that could not be read (then `message` says why)."""

    kind: WorkloadKind = Field(description="Deployment, StatefulSet or DaemonSet.")
    name: ObjectName | None = Field(
        None, description="The workload's name (absent for a selector that could not be read)."
    )
    selector: Annotated[str, Field(max_length=MAX_CONSUMER_MESSAGE)] | None = Field(
        None,
        description="A selector that could not be read, in labelSelector syntax (cut if long).",
    )
    revision: Annotated[int, Field(ge=0)] = Field(
        description=(
            "The credential revision the workload was last rolled to (or found running: a "
            "workload created after the value was issued is recorded without a restart)."
        )
    )
    rolled_out: bool = Field(description="Whether the workload's rollout to it has completed.")
    message: Annotated[str, Field(max_length=MAX_CONSUMER_MESSAGE)] | None = Field(
        None,
        description=(
            "Why it was not rolled or read: it does not use the credential's Secret, it was "
            "not found, or the API server's answer (refused, a selector it rejects)."
        ),
    )
