"""The reference pages under docs/ are complete against the code.

Every list is derived from the code, so a new condition reason, Event reason, metric or
template variable fails here until its row is written (and a removed one until its row goes):
- condition reasons: the `Reason` enum of api/status.py;
- Event reasons: found by reading operator/ with `ast` (see `event_reasons`);
- metrics: every Counter/Gauge/Histogram/Summary (or *MetricFamily) name in operator/,
  checked against docs/metrics.md once that page exists;
- template variables: what reconcile/layout.py puts in a template's context, and filters.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from credsmith.api.enums import CredentialType
from credsmith.api.status import ConditionType, Reason
from credsmith.issuing.template_extras import extra_variable
from credsmith.issuing.template_sandbox import FILTERS
from credsmith.issuing.templates import SECRET_TRANSFORMS, TemplateError, check_templates
from credsmith.reconcile.layout import LAYOUTS, PUBLIC_KEYS, SECRET_VARIABLES, template_context

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "operator" / "credsmith"
DOCS = ROOT / "docs"


def table_names(page: Path) -> set[str]:
    """The `backticked` names in the first column of every Markdown table of a page."""
    names = set()
    for line in page.read_text().splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            first = line.split("|")[1]
            names.update(re.findall(r"`([^`]+)`", first))
    return names


# ---- conditions -------------------------------------------------------------------------


def test_every_reason_is_in_the_conditions_table() -> None:
    documented = table_names(DOCS / "conditions.md")
    reasons = {reason.value for reason in Reason}
    assert sorted(reasons - documented) == [], "add a row to docs/conditions.md"
    stale = _camel_case_words(documented) - reasons - _CONDITION_TYPES
    assert sorted(stale) == [], "a row for a reason the code no longer has"


_CONDITION_TYPES = {condition_type.value for condition_type in ConditionType}


def _camel_case_words(names: set[str]) -> set[str]:
    return {name for name in names if re.fullmatch(r"[A-Z][A-Za-z]+", name)}


# ---- Events -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Function:
    module: Path
    node: ast.FunctionDef | ast.AsyncFunctionDef
    params: tuple[str, ...]  # positional parameters, without self/cls
    method: bool


class Code:
    """The operator's modules, parsed, with just enough name resolution to follow a reason
    from where an Event is built back to the constants it is made of."""

    def __init__(self, package: Path) -> None:
        self.package = package
        self.trees = {path: ast.parse(path.read_text()) for path in sorted(package.rglob("*.py"))}
        self.functions: dict[str, list[Function]] = {}
        self.enclosing: dict[int, Function] = {}  # id(node) -> the function it is in
        # Per module: imported module aliases and imported names -> the module they are from.
        self.modules: dict[Path, dict[str, Path]] = {}
        self.names: dict[Path, dict[str, Path]] = {}
        self._calls: list[tuple[Path, ast.Call]] | None = None
        for path, tree in self.trees.items():
            self._index(path, tree, None, in_class=False)
            self._imports(path, tree)

    def _index(
        self, path: Path, node: ast.AST, function: Function | None, *, in_class: bool
    ) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                params = [a.arg for a in (*child.args.posonlyargs, *child.args.args)]
                method = in_class and bool(params) and params[0] in ("self", "cls")
                inner = Function(path, child, tuple(params[1:] if method else params), method)
                self.functions.setdefault(child.name, []).append(inner)
            if inner is not None:
                self.enclosing[id(child)] = inner
            self._index(path, child, inner, in_class=isinstance(child, ast.ClassDef))

    def _module_path(self, dotted: str) -> Path:
        base = self.package.parent / dotted.replace(".", "/")
        return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")

    def _imports(self, path: Path, tree: ast.Module) -> None:
        modules, names = self.modules.setdefault(path, {}), self.names.setdefault(path, {})
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    submodule = self._module_path(f"{node.module}.{alias.name}")
                    if submodule.exists():
                        modules[alias.asname or alias.name] = submodule
                    else:
                        names[alias.asname or alias.name] = self._module_path(node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    modules[alias.asname or alias.name] = self._module_path(alias.name)

    def calls(self) -> list[tuple[Path, ast.Call]]:
        if self._calls is None:
            self._calls = [
                (path, node)
                for path, tree in self.trees.items()
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
            ]
        return self._calls

    def callers(self, target: Function) -> Iterator[tuple[Path, ast.Call]]:
        """Calls that may reach `target`: `name(...)` in its module or where it is imported,
        `module.name(...)`, and for a method `anything.name(...)` (also callables held in
        attributes, e.g. a bound method handed to another object)."""
        name = target.node.name
        for path, call in self.calls():
            func = call.func
            if isinstance(func, ast.Name) and func.id == name:
                if target.module in (path, self.names[path].get(name)):
                    yield path, call
            elif isinstance(func, ast.Attribute) and func.attr == name:
                owner = func.value
                module = self.modules[path].get(owner.id) if isinstance(owner, ast.Name) else None
                if module == target.module or (module is None and target.method):
                    yield path, call


def _argument(call: ast.Call, index: int, keyword: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return call.args[index] if index < len(call.args) else None


def _refusal_reasons(code: Code) -> set[str]:
    """The reasons of refusals built as permanent: only those are posted as Events."""
    reasons = set()
    for _, call in code.calls():
        if isinstance(call.func, ast.Name) and call.func.id == "Refusal":
            permanent = _argument(call, 2, "permanent")
            if isinstance(permanent, ast.Constant) and permanent.value is True:
                reasons |= _reason_constants(call.args[0])
    return reasons


def _reason_constants(node: ast.expr) -> set[str]:
    """`Reason.X` or `Reason.X.value` -> {X's value}; else empty."""
    if isinstance(node, ast.Attribute) and node.attr == "value":
        node = node.value
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Reason"
    ):
        return {Reason[node.attr].value}
    return set()


# Reasons built at run time that name resolution cannot follow: the expression's source, in
# the module that builds it, and what it can be. A new dynamic reason fails the test below
# until it is described here.
def _unpublished_reasons(code: Code) -> set[str]:
    """The reasons a document that cannot be published gives its members (published.py):
    a conflict of its kind, a permanent refusal, or a reason of its own."""
    reasons = set()
    for _, call in code.calls():
        if isinstance(call.func, ast.Name) and call.func.id == "Unpublished" and call.args:
            source = ast.unparse(call.args[0])
            if source.startswith("_CONFLICT["):
                reasons |= {Reason.REGISTRY_CONFLICT.value, Reason.JWKS_CONFLICT.value}
            elif source == "refusal.reason":
                reasons |= _refusal_reasons(code)
            else:
                reasons |= _reason_constants(call.args[0])
    return reasons


def _provider_failures(code: Code) -> set[str]:
    """A failed provider call (reconcile/registration.py): its ProviderError's reason."""
    del code
    from credsmith.providers.base import ProviderReason

    return {reason.value for reason in ProviderReason}


_DYNAMIC = {
    "refusal.reason.value": _refusal_reasons,
    "failure.value": _provider_failures,
    "first.reason": _unpublished_reasons,
    # The events of a Decision, posted as they were built (every Event(...) is counted).
    "event.reason": lambda code: set(),
}


class UnknownReason(Exception):
    pass


def _resolve(code: Code, path: Path, node: ast.expr, seen: frozenset[int]) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if reasons := _reason_constants(node):
        return reasons
    source = ast.unparse(node)
    if source in _DYNAMIC:
        return _DYNAMIC[source](code)
    # A parameter (or its `.value`) of the enclosing function: whatever its callers pass.
    name = node.value if isinstance(node, ast.Attribute) and node.attr == "value" else node
    function = code.enclosing.get(id(node))
    if isinstance(name, ast.Name) and function is not None and name.id in function.params:
        if id(function.node) in seen:
            return set()
        index = function.params.index(name.id)
        found: set[str] = set()
        for caller_path, call in code.callers(function):
            argument = _argument(call, index, name.id)
            if argument is not None:
                found |= _resolve(code, caller_path, argument, seen | {id(function.node)})
        return found
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    raise UnknownReason(f"{where}:{node.lineno}: {source}")


# Where Events are made: the dataclass reconcilers return, and the runtime's Event post.
_SINKS = {"Event": (1, "reason"), "post_event": (2, "reason")}


def event_reasons(code: Code) -> set[str]:
    reasons: set[str] = set()
    for path, call in code.calls():
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if name not in _SINKS:
            continue
        index, keyword = _SINKS[name]
        argument = _argument(call, index, keyword)
        if argument is not None:
            reasons |= _resolve(code, path, argument, frozenset())
    return reasons


@pytest.fixture(scope="module")
def code() -> Code:
    return Code(PACKAGE)


def test_event_reasons_are_found_in_the_code(code: Code) -> None:
    """The reader finds the reasons made each way: a literal, a Reason member, a parameter
    (not_ready's reason, from its callers' callers), a refusal, an unpublished document."""
    found = event_reasons(code)
    assert {"Issued", "Untrusted", "RollingOut", "ConsumersLagging"} <= found
    assert {"InvalidSpec", "InvalidTemplate", "SecretConflict", "DuplicateClientId"} <= found
    assert {"SecretWriteDenied", "QuotaExceeded", "SecretImmutable", "SecretInvalid"} <= found
    assert {"RegistryConflict", "JwksConflict", "RevisionExhausted"} <= found
    assert not {"Throttled", "ApiServerUnavailable", "WriteConflict", "TransientError"} & found


def test_every_event_reason_is_in_the_events_table(code: Code) -> None:
    documented = table_names(DOCS / "events.md")
    emitted = event_reasons(code)
    assert sorted(emitted - documented) == [], "add a row to docs/events.md"
    assert sorted(_camel_case_words(documented) - emitted) == [], "a row of nothing emitted"


def test_an_unknown_way_of_making_a_reason_fails(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "def post(reason_of):\n    Event('Warning', reason_of(), 'message')\n"
    )
    with pytest.raises(UnknownReason, match=re.escape("m.py:2: reason_of()")):
        event_reasons(Code(tmp_path))


# ---- metrics ----------------------------------------------------------------------------

_METRIC_TYPES = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def metric_names(code: Code) -> set[str]:
    names = set()
    for _, call in code.calls():
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if (name in _METRIC_TYPES or name.endswith("MetricFamily")) and call.args:
            first = call.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names.add(first.value)
    return names


def test_metric_names_are_found_in_the_code(code: Code) -> None:
    assert {"credsmith_issued_total", "credsmith_reconcile_duration_seconds"} <= metric_names(code)


def test_every_metric_is_in_the_metrics_page(code: Code) -> None:
    page = DOCS / "metrics.md"
    if not page.exists():
        pytest.skip("docs/metrics.md is not written yet")
    text = page.read_text()
    assert sorted(n for n in metric_names(code) if f"`{n}`" not in text) == []


# ---- templates --------------------------------------------------------------------------


def template_variables() -> set[str]:
    """Every name a secret template can use, as the docs write them."""
    names = set()
    for type_ in CredentialType:
        layout = LAYOUTS[type_]
        data = {layout.client_id_key: "id", layout.value_key: "value"}
        if type_ is CredentialType.KEY_PAIR:
            data |= dict.fromkeys(PUBLIC_KEYS, "public")
        names |= set(template_context(type_, data))
    return names | {"extra.<key>", "extra.<key>_previous"}


def test_every_template_variable_and_filter_is_in_the_templates_page() -> None:
    text = (DOCS / "templates.md").read_text()
    variables = template_variables()
    assert {"clientSecret", "privateKeyPem", "keyIdPrevious"} <= variables
    assert sorted(v for v in variables if f"`{v}`" not in text) == []
    assert sorted(f for f in FILTERS if f"`{f}`" not in text) == []
    transforms = text.split("passed through **one** of these filters")[1].split("\n\n")[0]
    assert sorted(f for f in SECRET_TRANSFORMS if f"`{f}`" not in transforms) == []


def test_the_templates_page_marks_every_secret_variable() -> None:
    rows = [line for line in (DOCS / "templates.md").read_text().splitlines() if "|" in line]
    secret_rows = " ".join(row for row in rows if row.rstrip(" |").endswith("yes"))
    assert sorted(v for v in SECRET_VARIABLES if f"`{v}`" not in secret_rows) == []


def test_the_templates_page_examples_are_accepted() -> None:
    """Every `secretTemplate` in the page's YAML blocks passes the operator's own check."""
    text = (DOCS / "templates.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    checked = 0
    secrets = SECRET_VARIABLES | {extra_variable("webhook_signing_key")}
    for block in blocks:
        document = yaml.safe_load(block)
        template = (document.get("spec") or document).get("secretTemplate")
        try:
            check_templates(template["data"], secrets)
        except TemplateError as exc:
            raise AssertionError(f"docs/templates.md example refused: {exc}") from None
        checked += len(template["data"])
    assert checked >= 5
