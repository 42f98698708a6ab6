r"""Rendering of `secretTemplate.data`: map key -> Jinja2 template over the issued credential.

Templates are written by tenants and rendered over secrets, inside a shared operator. So:

- A template reaches nothing but its context: no attributes, calls, globals, files, includes
  or environment (a subclass of Jinja's SandboxedEnvironment, see `template_sandbox`).
- A template cannot burn unbounded CPU or memory: constructs that repeat or nest work (loops,
  macros, call/filter/set blocks, includes) and container literals are rejected when parsing;
  operators and filters pay for their work from a per-key budget; every value is capped; the
  output is streamed and cut off at MAX_TEMPLATE_OUTPUT_BYTES.
- No error message carries a context value: messages are written in our own words from the
  template's source, and any context value that still occurs in one is replaced by "<redacted>".

No oracle: whether a template renders, and the message when it does not, never depend on the
value of a secret variable (the names in `secret_names`; the caller decides which). Otherwise a
tenant who may edit the resource but not read the Secret could learn the value a bit per edit,
e.g. with `{% if clientSecret[0] == 'a' %}{{ 1/0 }}{% endif %}`. Two rules give this:

- Secret-flow check, at compile time: a secret variable may only be output, be an operand of
  `~`, or be the subject of one filter of SECRET_TRANSFORMS (alone or in a `~` join), whose
  result may again be output or joined. It is never tested, compared, indexed, sliced, measured,
  assigned, passed as an argument or given to another filter. So every branch taken and every
  value other than output text is the same whatever the secret.
- Placeholder render: the outcome is decided by a render with each secret replaced by
  `placeholder(n)`, n `"` characters, n the longest value the variable can have. Take a real
  value of at most n ASCII characters, without control characters other than tab, newline and
  carriage return (as generated values and PEM text are). Its render takes the same branches,
  and each chunk of secret material is at most as long: `~` adds lengths; `upper`, `lower` and
  `string` keep the length of ASCII text; `b64encode` grows with the byte length; `urlencode`,
  `urlquote` (`%22`) and `tojson` (`\"`) expand no such character more than `"`. Every limit
  (value cap, work budget, output per key and in total) is a bound on such lengths, so when the
  placeholder render passes them, the real one does too, and nothing else in it can fail. Should
  it fail anyway (placeholders too short), the problem is RENDERING_FAILED, which says nothing
  about what failed.
"""

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Template, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError

from credsmith.issuing.template_extras import ExtraMisuse, display_name, resolve_extras
from credsmith.issuing.template_sandbox import (
    COMPARE_FILTER,
    CONCAT_FILTER,
    FILTERS,
    MAX_WORK_UNITS,
    SLICE_FILTER,
    TESTS,
    Refused,
    SecretTemplateEnvironment,
    work_budget,
)

MAX_TEMPLATE_OUTPUT_BYTES = 64 * 1024
"""Rendered output of one key, in UTF-8 bytes."""
MAX_TOTAL_OUTPUT_BYTES = 256 * 1024
"""Rendered output of all keys together: a Secret holds at most 1 MiB."""
MAX_TEMPLATE_SOURCE_BYTES = 64 * 1024
"""Source of one template: bounds the cost of parsing it."""
MAX_TEMPLATE_NODES = 2000
"""Syntax nodes of one template (`{{ x }}` is two): bounds the cost of compiling it. A template
with a hundred substitutions in a page of text needs a few hundred."""

REDACTED = "<redacted>"

SECRET_TRANSFORMS = frozenset(
    {"b64encode", "lower", "string", "tojson", "upper", "urlencode", "urlquote"}
)
"""The filters a secret may pass through (once): each output's length is bounded by its input's
with `"` in place of every secret character (see the module docstring)."""
PLACEHOLDER_CHARACTER = '"'
RENDERING_FAILED = "rendering failed"
"""The problem reported when the real render fails although the placeholder render did not."""

__all__ = [
    "MAX_TEMPLATE_NODES",
    "MAX_TEMPLATE_OUTPUT_BYTES",
    "MAX_TEMPLATE_SOURCE_BYTES",
    "MAX_TOTAL_OUTPUT_BYTES",
    "MAX_WORK_UNITS",
    "RENDERING_FAILED",
    "SECRET_TRANSFORMS",
    "TemplateError",
    "check_templates",
    "placeholder",
    "render_templates",
]


class TemplateError(Exception):
    """A template of `secretTemplate.data` does not parse, is not allowed, or fails to render.

    The message names the key and the problem, e.g.
    `secretTemplate.data["url"]: unknown variable "clientSecrett"`; it never holds a value.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"secretTemplate.data[{json.dumps(key)}]: {problem}")


def check_templates(templates: Mapping[str, str], secret_names: Collection[str] = ()) -> None:
    """Parse and check every template without rendering; raise TemplateError for the first
    bad one (in key order), so the operator can refuse a spec before issuing anything.

    `secret_names` are the variables whose values must not influence the outcome: they are
    held to the secret-flow rule (see the module docstring).
    """
    secrets = frozenset(secret_names)
    for key in sorted(templates):
        problem = None
        try:
            _compile(templates[key], secrets)
        except _Problem as exc:
            problem = exc.problem
        if problem is not None:
            raise TemplateError(key, problem)


def placeholder(length: int) -> str:
    """The public stand-in for a secret of at most `length` characters: `length` times `"`,
    which every filter of SECRET_TRANSFORMS expands at least as much as any character a secret
    may hold (see the module docstring)."""
    if length < 0:
        raise ValueError("a placeholder length cannot be negative")
    return PLACEHOLDER_CHARACTER * length


def render_templates(
    templates: Mapping[str, str],
    context: Mapping[str, str],
    secret_names: Collection[str] = (),
    placeholders: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Render every template over `context` (e.g. clientId, clientSecret).

    Raises TemplateError for the first key (in key order) that fails, exceeds
    MAX_TEMPLATE_OUTPUT_BYTES, or takes the total past MAX_TOTAL_OUTPUT_BYTES.

    The outcome is decided over public values only: each name of `secret_names` present in
    `context` is first replaced by its entry in `placeholders` (a `placeholder()` as long as the
    longest value the variable can have); without `placeholders`, by `placeholder(len(value))`.
    Only then are the real values rendered (see the module docstring).
    """
    secrets = frozenset(secret_names)
    stand_ins = _stand_ins(context, secrets, placeholders)
    public = {name: stand_ins.get(name, value) for name, value in context.items()}
    rendered, failure = _render_keys(templates, public, secrets)
    if failure is not None:
        key, problem = failure
        # Scrubbed of public values only: whether a secret occurs in a message must not
        # change it (and the render never saw one).
        public_values = [value for name, value in context.items() if name not in stand_ins]
        raise TemplateError(key, _scrub(problem, public_values))
    if not stand_ins:
        return rendered
    rendered, failure = _render_keys(templates, context, secrets)
    if failure is not None:
        # Cannot happen with long enough placeholders. Neither the key nor the problem says
        # what failed: both could depend on the value.
        raise TemplateError(min(templates), RENDERING_FAILED)
    return rendered


def _stand_ins(
    context: Mapping[str, str], secrets: frozenset[str], placeholders: Mapping[str, str] | None
) -> dict[str, str]:
    """The placeholder of every secret variable in the context."""
    stand_ins: dict[str, str] = {}
    for name in sorted(secrets.intersection(context)):
        if placeholders is None:
            stand_ins[name] = placeholder(len(context[name]))
        elif isinstance(placeholders.get(name), str):
            stand_ins[name] = placeholders[name]
        else:
            # A caller's bug; guessing from the value would make the outcome depend on it.
            raise ValueError(f"no placeholder for secret variable {name!r}")
    return stand_ins


def _render_keys(
    templates: Mapping[str, str], context: Mapping[str, str], secrets: frozenset[str]
) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Render every key in order; the outputs, or also the first failure as (key, problem)."""
    rendered: dict[str, str] = {}
    total = 0
    for key in sorted(templates):
        try:
            output = _render(templates[key], context, secrets, MAX_TOTAL_OUTPUT_BYTES - total)
        except _Problem as exc:
            # Returned, not raised from here: no chained exception (which might quote a value)
            # travels with the error into logs.
            return rendered, (key, exc.problem)
        rendered[key] = output
        total += len(output.encode("utf-8"))
    return rendered, None


class _Problem(Exception):
    """Internal: a template failed; `problem` is safe to show (before scrubbing)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


@dataclass(frozen=True)
class _Compiled:
    template: Template
    names: frozenset[str]
    """Every variable name the source mentions: the only names an error may quote."""


_ENVIRONMENT = SecretTemplateEnvironment()


def _render(
    source: str, context: Mapping[str, str], secrets: frozenset[str], total_left: int
) -> str:
    compiled = _compile(source, secrets)
    chunks: list[str] = []
    size = 0
    # Streamed: rendering stops at the first chunk past a limit.
    with work_budget():
        try:
            for chunk in compiled.template.generate(dict(context)):
                size += len(chunk.encode("utf-8"))
                if size > MAX_TEMPLATE_OUTPUT_BYTES:
                    raise _Problem(f"output exceeds {MAX_TEMPLATE_OUTPUT_BYTES} bytes")
                if size > total_left:
                    raise _Problem(f"output of all keys exceeds {MAX_TOTAL_OUTPUT_BYTES} bytes")
                chunks.append(chunk)
        except _Problem:
            raise
        except Exception as exc:  # every failure of a tenant's template is reported, not raised
            raise _Problem(_describe(exc, compiled.names)) from None
    return "".join(chunks)


def _compile(source: str, secrets: frozenset[str]) -> _Compiled:
    if not isinstance(source, str):
        raise _Problem("template must be a string")
    return _compile_text(source, secrets)


@lru_cache(maxsize=256)
def _compile_text(source: str, secrets: frozenset[str]) -> _Compiled:
    """Parse, check, rewrite and compile one template; cached, as specs rarely change."""
    if len(source.encode("utf-8")) > MAX_TEMPLATE_SOURCE_BYTES:
        raise _Problem(f"template exceeds {MAX_TEMPLATE_SOURCE_BYTES} bytes")
    try:
        tree = _ENVIRONMENT.parse(source)
        resolve_extras(tree)  # extra.<key> -> a variable of its own, before any check
        # On the tree as parsed: the rewrite below hides `~` and comparisons in filter calls.
        _check_secret_flow(tree, secrets)
        names = _check_and_rewrite(tree)
        template = _ENVIRONMENT.from_string(tree)
    except _Problem:
        raise
    except ExtraMisuse as exc:
        raise _Problem(str(exc)) from None
    except TemplateSyntaxError as exc:
        raise _Problem(f"line {exc.lineno}: {exc.message}") from None
    except (RecursionError, SyntaxError):  # Python's limits on nesting, while parsing or compiling
        raise _Problem("template is nested too deeply") from None
    except Exception as exc:  # e.g. an integer literal too long to convert
        raise _Problem(f"template does not compile ({type(exc).__name__})") from None
    return _Compiled(template, names)


# The AST check ---------------------------------------------------------------------------------

_ALLOWED_NODES: frozenset[type[nodes.Node]] = frozenset(
    {
        *(nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name),
        *(nodes.Filter, nodes.Test, nodes.Keyword, nodes.If, nodes.CondExpr, nodes.Assign),
        *(nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Compare, nodes.Operand),
        *(nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow),
        *(nodes.Concat, nodes.Getitem),  # a Slice is rewritten together with its Getitem
    }
)
_REFUSALS: dict[type[nodes.Node], str] = {
    nodes.For: '"for" loops are not allowed',
    nodes.Macro: "macros are not allowed",
    nodes.CallBlock: '"call" blocks are not allowed',
    nodes.Call: "function and method calls are not allowed; use filters, e.g. {{ x|upper }}",
    nodes.FilterBlock: '"filter" blocks are not allowed',
    nodes.AssignBlock: '"set" blocks are not allowed; use {% set x = ... %}',
    nodes.With: '"with" blocks are not allowed',
    nodes.Block: '"block" is not allowed',
    nodes.Extends: '"extends" is not allowed',
    nodes.Include: '"include" is not allowed',
    nodes.Import: '"import" is not allowed',
    nodes.FromImport: '"import" is not allowed',
    nodes.List: "list literals are not allowed",
    nodes.Tuple: "tuples are not allowed",
    nodes.Dict: "dict literals are not allowed",
    nodes.Scope: '"autoescape" blocks are not allowed',
    nodes.ScopedEvalContextModifier: '"autoescape" blocks are not allowed',
    nodes.EvalContextModifier: '"autoescape" is not allowed',
    nodes.NSRef: "namespace assignments are not allowed",
}


def _check_and_rewrite(tree: nodes.Template) -> frozenset[str]:
    """Refuse every construct outside the allowlist, and replace `~`, comparisons and slices by
    the sandbox's paid-for versions. Iterative, so a deep tree cannot exhaust the stack here.

    Returns the variable names used, the only names an error message may quote.
    """
    names: set[str] = set()
    internal: dict[int, nodes.Node] = {}  # the nodes this function created, by id
    stack: list[nodes.Node] = [tree]
    count = 0
    while stack:
        node = stack.pop()
        if id(node) not in internal:
            count += 1
            if count > MAX_TEMPLATE_NODES:
                raise _Problem(f"template has more than {MAX_TEMPLATE_NODES} syntax nodes")
            _check_node(node, names)
        for field in node.fields:
            value = getattr(node, field)
            if isinstance(value, nodes.Node):
                replacement = _paid_for(value, internal)
                setattr(node, field, replacement)
                stack.append(replacement)
            elif isinstance(value, list):
                value[:] = [
                    _paid_for(item, internal) if isinstance(item, nodes.Node) else item
                    for item in value
                ]
                stack.extend(item for item in value if isinstance(item, nodes.Node))
    return frozenset(names)


def _check_node(node: nodes.Node, names: set[str]) -> None:
    line = f"line {node.lineno}: " if node.lineno else ""
    kind = type(node)
    if isinstance(node, nodes.Getattr):
        raise _Problem(
            f'{line}attribute access (".{node.attr}") is not allowed; '
            "use filters, e.g. {{ x|upper }}"
        )
    if kind not in _ALLOWED_NODES:
        raise _Problem(line + _REFUSALS.get(kind, f"{kind.__name__} is not allowed"))
    if isinstance(node, nodes.Name):
        if node.name == "self":
            raise _Problem(f'{line}"self" is not available')
        names.add(node.name)
    elif isinstance(node, nodes.Filter | nodes.Test):
        allowed = FILTERS if isinstance(node, nodes.Filter) else TESTS
        what = "filter" if isinstance(node, nodes.Filter) else "test"
        if node.name not in allowed:
            raise _Problem(
                f'{line}unknown {what} "{node.name}" (allowed: {", ".join(sorted(allowed))})'
            )
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Problem(f"{line}*args and **kwargs are not allowed in a {what}")


def _paid_for(node: nodes.Node, internal: dict[int, nodes.Node]) -> nodes.Node:
    """The node itself, or for `~`, comparisons and slices a call of the sandbox's version.

    Nodes created here are recorded in `internal` (which also keeps them alive, so their ids
    stay unique): they are exempt from the user-facing checks and the node count.
    """
    lineno = node.lineno
    created: list[nodes.Node] = []
    subject: nodes.Expr
    args: list[nodes.Expr] = []
    if isinstance(node, nodes.Concat):
        name, subject = CONCAT_FILTER, nodes.Tuple(node.nodes, "load", lineno=lineno)
        created.append(subject)
    elif isinstance(node, nodes.Compare):
        operands = [node.expr, *(operand.expr for operand in node.ops)]
        name, subject = COMPARE_FILTER, nodes.Tuple(operands, "load", lineno=lineno)
        args = [nodes.Const(operand.op, lineno=lineno) for operand in node.ops]
        created += [subject, *args]
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Slice):
        name, subject = SLICE_FILTER, node.node
        for bound in (node.arg.start, node.arg.stop, node.arg.step):
            if bound is None:
                bound = nodes.Const(None, lineno=lineno)
                created.append(bound)
            args.append(bound)
    else:
        return node
    call = nodes.Filter(subject, name, args, [], None, None, lineno=lineno)
    created.append(call)
    internal.update((id(item), item) for item in created)
    return call


# The secret-flow check ---------------------------------------------------------------------------

# How much secret material an expression may hold, decided by where it stands.
_PUBLIC = 0
"""None: it is tested, compared, indexed, measured, assigned, an argument, or the like."""
_TRANSFORMABLE = 1
"""Raw secrets, joined with `~`: the subject of one filter of SECRET_TRANSFORMS."""
_OUTPUT = 2
"""Also the result of that filter, joined with `~`: output as it is."""

# Node types the flow check follows; any other is refused by `_check_node` anyway.
_FLOW_NODES = _ALLOWED_NODES | {nodes.Slice}


def _check_secret_flow(tree: nodes.Template, secrets: frozenset[str]) -> None:
    """Refuse every use of a secret variable other than those of the secret-flow rule (module
    docstring). Iterative, in source order, so the first misuse is the one reported."""
    if not secrets:
        return
    stack: list[tuple[nodes.Node, int]] = [(tree, _PUBLIC)]
    while stack:
        node, allowed = stack.pop()
        if isinstance(node, nodes.Name) and node.name in secrets and allowed == _PUBLIC:
            raise _Problem(_misuse(node))
        if type(node) not in _FLOW_NODES:
            continue
        inherit = _inheriting(node, allowed)
        children = [(child, inherit.get(id(child), _PUBLIC)) for child in node.iter_child_nodes()]
        stack.extend(reversed(children))


def _inheriting(node: nodes.Node, allowed: int) -> dict[int, int]:
    """The children of `node` (by id) that may hold secret material, and how much; every
    other child may hold none."""
    if isinstance(node, nodes.Output):
        return {id(child): _OUTPUT for child in node.nodes}
    if isinstance(node, nodes.Concat):
        return {id(child): allowed for child in node.nodes}
    if isinstance(node, nodes.CondExpr):  # the branches, not the test
        return {id(child): allowed for child in (node.expr1, node.expr2) if child is not None}
    if (
        isinstance(node, nodes.Filter)
        and node.name in SECRET_TRANSFORMS
        and allowed == _OUTPUT  # not over another filter's result: a chain breaks the bound
        and node.node is not None
    ):
        return {id(node.node): _TRANSFORMABLE}
    return {}


def _misuse(name: nodes.Name) -> str:
    line = f"line {name.lineno}: " if name.lineno else ""
    return (
        f'{line}secret variable "{display_name(name.name)}" may only be output, '
        f"joined with ~, or passed once through one of {', '.join(sorted(SECRET_TRANSFORMS))}; "
        "it cannot be tested, compared, indexed, sliced, measured or assigned"
    )


# Error messages -----------------------------------------------------------------------------

_UNDEFINED_NAME = re.compile(r"'([A-Za-z_][A-Za-z0-9_]*)' is undefined")


def _describe(exc: Exception, names: frozenset[str]) -> str:
    """Our own words for a render failure; only names from the source are ever quoted."""
    if isinstance(exc, Refused):
        return str(exc)
    if isinstance(exc, UndefinedError):
        message = exc.message or ""
        match = _UNDEFINED_NAME.fullmatch(message)
        if match is not None and match[1] in names:
            return f'unknown variable "{display_name(match[1])}"'
        return "undefined value"
    if isinstance(exc, SecurityError):
        return "forbidden by the sandbox"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, TypeError):
        return "wrong type of operand or filter argument, or wrong number of filter arguments"
    if isinstance(exc, RecursionError):
        return "template is nested too deeply"
    return f"rendering failed ({type(exc).__name__})"


def _scrub(message: str, values: Iterable[str]) -> str:
    """Last line of defence: replace every context value (and its escaped forms) occurring in
    the message by REDACTED, longest first, in one pass."""
    forms: set[str] = set()
    for value in values:
        if isinstance(value, str) and value:
            forms.update({value, repr(value)[1:-1], json.dumps(value)[1:-1]})
    forms.discard("")
    if not forms:
        return message
    pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, REDACTED, message)
