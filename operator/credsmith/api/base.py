"""Building blocks shared by every API model: the wire base class, string types, CEL rules.

The models are read from live objects, so unknown fields are ignored rather than
rejected: the apiserver has already pruned and validated them, and a newer CRD may
carry fields this version does not know.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; both spellings are accepted on input."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON shape for the Kubernetes API: camelCase, unset optional fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# Regexes are written for RE2 (the apiserver's engine) and Rust regex (pydantic's):
# `\x..` escapes work in both, `\u....` does not in RE2; `$` is the end of the text
# in both (unlike Python's re, where it also matches before a final newline).
NO_CONTROL_CHARS = r"^[^\x00-\x1F\x7F]*$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# A label or annotation key: an optional DNS-subdomain prefix and "/", then a name.
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"

# The name of an object of the same namespace (a Secret).
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]


def rule(
    rule: str,
    message: str,
    *,
    field_path: str | None = None,
    message_expression: str | None = None,
) -> dict[str, str]:
    """One entry of `x-kubernetes-validations` (a CEL rule the apiserver enforces)."""
    entry = {"rule": rule, "message": message}
    if message_expression is not None:
        entry["messageExpression"] = message_expression
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: dict[str, str]) -> dict[str, Any]:
    """`json_schema_extra` that attaches CEL rules to the schema node of a field or model."""
    return {"x-kubernetes-validations": list(rules)}


def cel_string(value: str) -> str:
    """A CEL string literal; raw, so regex backslashes stay as they are."""
    if "'" in value or "\n" in value:
        raise ValueError(f"cannot quote {value!r} as a raw CEL string")
    return f"r'{value}'" if "\\" in value else f"'{value}'"
