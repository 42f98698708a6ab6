"""Turn a pydantic model's JSON Schema into a Kubernetes structural schema.

Structural (what apiextensions.k8s.io/v1 demands): every node has a type, no $ref,
no unions; Optional[X] is X not listed in `required`. Every string gets a maxLength
(enums: their longest value), so CEL cost estimation passes. Defaults are dropped, because
defaults are applied in code (a schema default would be written into the live object
and show as drift in GitOps tools). Anything else pydantic might emit that Kubernetes
does not accept fails loudly here rather than at `kubectl apply`.
"""

from typing import Any

from pydantic import BaseModel

from credsmith.api.base import cel_string, rule

# The JSON Schema keywords a CRD schema may carry (plus every x-kubernetes-* extension).
_ALLOWED = frozenset(
    {
        "type",
        "description",
        "properties",
        "required",
        "items",
        "additionalProperties",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
    }
)
_DROPPED = frozenset({"title", "default"})
_VALIDATIONS = "x-kubernetes-validations"


class SchemaError(ValueError):
    """The model's schema has something a Kubernetes structural schema cannot hold."""


def structural_schema(model: type[BaseModel], path: str) -> dict[str, Any]:
    """The structural schema of `model`; `path` (e.g. "spec") names it in messages."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs, path)


def _merge(target: dict[str, Any], site: dict[str, Any]) -> dict[str, Any]:
    """A referenced schema with the keys written at the reference: those win (a field's
    description beats its type's docstring), and CEL rules of both are kept."""
    merged = {**target, **site}
    rules = [*target.get(_VALIDATIONS, []), *site.get(_VALIDATIONS, [])]
    if rules:
        merged[_VALIDATIONS] = rules
    return merged


def _inline(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    """Resolve $ref and allOf-of-one, and collapse Optional[X] (anyOf X | null) to X."""
    while True:
        node = dict(node)
        if "$ref" in node:
            name = node.pop("$ref").removeprefix("#/$defs/")
            node = _merge(defs[name], node)
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = _merge(node.pop("allOf")[0], node)
        elif "anyOf" in node:
            branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
            if len(branches) != 1:
                raise SchemaError(f"{path}: only Optional[X] unions are structural")
            node = _merge(branches[0], node)
        else:
            return node


def _keys_rule(names: dict[str, Any], path: str) -> dict[str, str]:
    """Kubernetes schemas cannot constrain map keys (no propertyNames): a CEL rule does."""
    unknown = set(names) - {"type", "minLength", "maxLength", "pattern"}
    if unknown:
        raise SchemaError(f"{path}: cannot express key constraints {sorted(unknown)}")
    checks, words = [], []
    if "minLength" in names:
        checks.append(f"size(k) >= {names['minLength']}")
        words.append(f"at least {names['minLength']}")
    if "maxLength" in names:
        checks.append(f"size(k) <= {names['maxLength']}")
        words.append(f"at most {names['maxLength']}")
    message = f"{path}: every key must be " + " and ".join(words) + " characters long"
    if "pattern" in names:
        checks.append(f"k.matches({cel_string(names['pattern'])})")
        message += f" and match {names['pattern']}"
    return rule(f"self.all(k, {' && '.join(checks)})", message)


def _pattern_keys(node: dict[str, Any], path: str) -> dict[str, Any]:
    """pydantic writes dict[Pattern-key, V] as patternProperties {pattern: V}: make it
    additionalProperties V, and move the pattern to the key constraints."""
    if "patternProperties" not in node:
        return node
    node = dict(node)
    patterns = node.pop("patternProperties")
    if len(patterns) != 1 or "additionalProperties" in node:
        raise SchemaError(f"{path}: cannot express patternProperties")
    [(pattern, values)] = patterns.items()
    node["additionalProperties"] = values
    node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
    return node


def _convert(node: dict[str, Any], defs: dict[str, Any], path: str) -> dict[str, Any]:
    node = _pattern_keys(_inline(node, defs, path), path)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if not isinstance(value, dict):
                raise SchemaError(f"{path}: additionalProperties must be a schema")
            out[key] = _convert(value, defs, f"{path}.*")
        elif key == "propertyNames":
            out[_VALIDATIONS] = [*out.get(_VALIDATIONS, []), _keys_rule(value, path)]
        elif key == _VALIDATIONS:
            out[key] = [*value, *out.get(_VALIDATIONS, [])]
        elif key in _ALLOWED or key.startswith("x-kubernetes-"):
            out[key] = value
        else:
            raise SchemaError(f"{path}: {key!r} is not allowed in a CRD schema")
    if "enum" in out and out.get("type") == "string":
        # Bounded like every string, so the apiserver can estimate CEL rules' cost.
        out.setdefault("maxLength", max(len(v) for v in out["enum"]))
    if "type" not in out and not (
        out.get("x-kubernetes-int-or-string") or out.get("x-kubernetes-preserve-unknown-fields")
    ):
        raise SchemaError(f"{path}: every node needs a type")
    return out
