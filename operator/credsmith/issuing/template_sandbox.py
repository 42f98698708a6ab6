"""The Jinja2 environment behind `templates`: what a secret template may do, and at what cost.

Internal to `credsmith.issuing.templates`. The AST check there guarantees that no loop, macro,
call, attribute access or container literal reaches this environment, so every value here is
text, a number, a boolean, None or an undefined. On top of that this module makes every
operation that allocates or searches text pay for it from a per-key work budget, and caps
every value, so a template's cost is bounded by its size however it is written.

Errors are raised as `Refused`, whose message is always written here in our own words: never
a value, so it is safe to show in status.
"""

import base64
import binascii
import json
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import quote

from jinja2 import StrictUndefined, pass_context
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import SandboxedEnvironment
from jinja2.tests import TESTS as _JINJA_TESTS

MAX_VALUE_CHARS = 64 * 1024
"""The longest text any operator or filter may produce."""
MAX_WORK_UNITS = 1024 * 1024
"""Work allowed while rendering one key: characters produced or read by operators and filters,
and characters compared by substring searches (charged at their worst case, haystack x needle)."""
MAX_INT_BITS = 4096
"""The largest integer arithmetic may produce: plenty for templates, cheap to compute and print."""

CONCAT_FILTER = "credsmith:concat"
"""Stands in for the `~` operator (not interceptable in Jinja); the colon keeps it untypeable."""
COMPARE_FILTER = "credsmith:compare"
"""Stands in for comparisons, so that `in` (a substring search) is charged."""
SLICE_FILTER = "credsmith:slice"
"""Stands in for slicing, which Jinja compiles to a plain subscript that bypasses getitem."""


class Refused(Exception):
    """A template asked for something forbidden or too costly. The message holds no value."""


class _Budget:
    __slots__ = ("remaining",)

    def __init__(self) -> None:
        self.remaining = MAX_WORK_UNITS


_BUDGET: ContextVar[_Budget | None] = ContextVar("credsmith_template_budget", default=None)


@contextmanager
def work_budget() -> Iterator[None]:
    """A fresh budget of MAX_WORK_UNITS for the renders inside the block (one key)."""
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _spend(units: int, what: str) -> None:
    budget = _BUDGET.get()
    if budget is None:
        # Outside a render (e.g. Jinja trying to fold constants at compile time): refusing makes
        # Jinja evaluate at run time instead, where the work is paid for.
        raise Refused("evaluation outside a render")
    budget.remaining -= units
    if budget.remaining < 0:
        raise Refused(f"rendering needs more than {MAX_WORK_UNITS} units of work (at {what})")


def _produce(size: int, what: str) -> None:
    """Pay for a value of `size` characters before building it; refuse it if too long."""
    if size > MAX_VALUE_CHARS:
        raise Refused(f"{what} would produce more than {MAX_VALUE_CHARS} characters")
    _spend(size, what)


def _defined(value: Any) -> Any:
    """The value; an undefined raises, except Jinja's implicit else of an inline `if`,
    which is a plain Undefined that Jinja means to print as empty text."""
    if isinstance(value, StrictUndefined):
        str(value)  # raises UndefinedError naming the variable (SecurityError if forbidden)
    if isinstance(value, Undefined):
        return ""
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, what: str) -> str:
    """The text an operation works on: text, or a number or boolean printed as text."""
    value = _defined(value)
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, int | float):
        text = str(value)
    else:
        raise Refused(f"{what} works on text and numbers, not {type(value).__name__}")
    if len(text) > MAX_VALUE_CHARS:
        raise Refused(f"{what} input exceeds {MAX_VALUE_CHARS} characters")
    return text


@pass_context
def finalize(context: Context, value: Any) -> Any:
    """Allow only text and numbers as output: never a container's repr, never an undefined.

    `pass_context` also stops Jinja from evaluating output expressions at compile time.
    """
    value = _defined(value)
    if isinstance(value, str | int | float) or value is None:
        return value
    raise Refused(f"an expression yields {type(value).__name__}, not text")


# Operators ------------------------------------------------------------------------------------

_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "**": operator.pow,
}


def binop(op: str, left: Any, right: Any) -> Any:
    """Every binary operator: text repetition and joining are paid for, numbers are bounded."""
    left, right = _defined(left), _defined(right)
    if op == "+" and isinstance(left, str) and isinstance(right, str):
        _produce(len(left) + len(right), '"+"')
        return left + right
    if op == "*" and (isinstance(left, str) or isinstance(right, str)):
        text, count = (left, right) if isinstance(left, str) else (right, left)
        if not _is_int(count):
            raise Refused('"*" repeats text only an integer number of times')
        _produce(len(text) * max(count, 0), '"*"')
        return text * count
    if not all(isinstance(v, int | float) for v in (left, right)):
        raise Refused(f'"{op}" works on numbers (only "+" and "*" on text; join text with "~")')
    if _is_int(left) and _is_int(right):
        _check_int_operation(op, left, right)
    try:
        result = _ARITHMETIC[op](left, right)
    except OverflowError:
        raise Refused(f'"{op}" result is out of range') from None
    if _is_int(result) and result.bit_length() > MAX_INT_BITS:
        raise Refused(f'"{op}" result exceeds {MAX_INT_BITS} bits')
    return result


def _check_int_operation(op: str, left: int, right: int) -> None:
    """Refuse an integer power that could not be small, before computing it. (Every other
    integer operation on operands this small is cheap; its result is checked afterwards.)"""
    # |left| >= 2**(bit_length - 1), so the result has at least right * (bit_length - 1) bits.
    if op == "**" and right > 0 and right * (abs(left).bit_length() - 1) > MAX_INT_BITS:
        raise Refused(f'"{op}" result exceeds {MAX_INT_BITS} bits')


def getitem(obj: Any, argument: Any) -> Any:
    """Indexing and slicing of text only; a slice is paid for like any new value."""
    obj = _defined(obj)
    if not isinstance(obj, str):
        raise Refused(f"only text can be indexed or sliced, not {type(obj).__name__}")
    if isinstance(argument, slice):
        if not all(v is None or _is_int(v) for v in (argument.start, argument.stop, argument.step)):
            raise Refused("slice bounds must be integers")
        _produce(len(range(*argument.indices(len(obj)))), "slice")
        return obj[argument]
    if not _is_int(argument):
        raise Refused("text can be indexed by integers only")
    if not -len(obj) <= argument < len(obj):
        raise Refused("index out of range")
    return obj[argument]


def slice_text(value: Any, start: Any, stop: Any, step: Any) -> Any:
    """`value[start:stop:step]`, through `getitem` so that it is paid for."""
    return getitem(value, slice(start, stop, step))


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "lteq": operator.le,
    "gt": operator.gt,
    "gteq": operator.ge,
    "in": lambda a, b: operator.contains(b, a),
    "notin": lambda a, b: not operator.contains(b, a),
}


def compare(operands: tuple[Any, ...], *ops: str) -> bool:
    """A (chained) comparison; all operands are evaluated first, which is harmless without
    side effects. A substring search is charged len(haystack) * len(needle)."""
    operands = tuple(_defined(value) for value in operands)
    left = operands[0]
    for op, right in zip(ops, operands[1:], strict=True):
        if op in ("in", "notin"):
            if not (isinstance(left, str) and isinstance(right, str)):
                raise Refused('"in" works on text only')
            _spend(len(right) * max(len(left), 1), '"in"')
        if not _COMPARISONS[op](left, right):
            return False
        left = right
    return True


def concat(parts: tuple[Any, ...]) -> str:
    """The `~` operator: join the parts as text, paying for the result."""
    texts = [_text(part, '"~"') for part in parts]
    _produce(sum(len(text) for text in texts), '"~"')
    return "".join(texts)


# Filters --------------------------------------------------------------------------------------


def _text_filter(name: str, function: Callable[[str], str]) -> Callable[[Any], str]:
    """A filter from a text function whose work is linear: pay for input and output."""

    def apply(value: Any) -> str:
        text = _text(value, f'"{name}"')
        _spend(len(text), f'"{name}"')
        result = function(text)
        _produce(len(result), f'"{name}"')
        return result

    apply.__name__ = f"filter_{name}"
    return apply


def _replace(value: Any, old: Any, new: Any, count: Any = None) -> str:
    text = _text(value, '"replace"')
    old, new = _text(old, '"replace"'), _text(new, '"replace"')
    if count is not None and not _is_int(count):
        raise Refused('"replace" count must be an integer')
    limit = -1 if count is None else count
    # Pay for the search at its worst case, then for the exact size of the result, before
    # doing the work: text.replace itself could allocate far past the cap.
    _spend(len(text) * max(len(old), 1), '"replace"')
    found = len(text) + 1 if old == "" else text.count(old)
    if limit >= 0:
        found = min(found, limit)
    _produce(len(text) + found * (len(new) - len(old)), '"replace"')
    return text.replace(old, new, limit)


def _trim(value: Any, chars: Any = None) -> str:
    text = _text(value, '"trim"')
    strip = None if chars is None else _text(chars, '"trim"')
    # Each stripped character is looked up among `chars`: charged at that worst case.
    _spend(len(text) * max(len(strip or ""), 1), '"trim"')
    return text.strip(strip)


def _truncate(
    value: Any, length: Any = 255, killwords: Any = False, end: Any = "...", leeway: Any = 5
) -> str:
    """Jinja's `truncate`, with its argument checks made explicit."""
    text, suffix = _text(value, '"truncate"'), _text(end, '"truncate"')
    if not (_is_int(length) and _is_int(leeway)) or length < len(suffix) or leeway < 0:
        raise Refused('"truncate" needs an integer length of at least len(end) and leeway >= 0')
    _spend(len(text), '"truncate"')
    if len(text) <= length + leeway:
        return text
    kept = text[: length - len(suffix)]
    return (kept if killwords else kept.rsplit(" ", 1)[0]) + suffix


def _default(value: Any, default_value: Any = "", boolean: Any = False) -> Any:
    if isinstance(value, Undefined) or (boolean and not value):
        return default_value
    return value


def _length(value: Any) -> int:
    return len(_text(value, '"length"'))


def _first(value: Any) -> str:
    text = _text(value, '"first"')
    if not text:
        raise Refused('"first" of empty text')
    return text[0]


def _last(value: Any) -> str:
    text = _text(value, '"last"')
    if not text:
        raise Refused('"last" of empty text')
    return text[-1]


def _string(value: Any) -> str:
    text = _text(value, '"string"')
    _produce(len(text), '"string"')
    return text


def _tojson(value: Any) -> str:
    """A JSON scalar: for secrets embedded in JSON documents (Printable has quotes and \\)."""
    value = _defined(value)
    if not (isinstance(value, str | int | float | bool) or value is None):
        raise Refused(f'"tojson" works on text and numbers, not {type(value).__name__}')
    if isinstance(value, str):
        _text(value, '"tojson"')
        _spend(len(value), '"tojson"')
    result = json.dumps(value, ensure_ascii=False)
    _produce(len(result), '"tojson"')
    return result


def _b64encode(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _b64decode(text: str) -> str:
    problem = None
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except binascii.Error:
        problem = '"b64decode": input is not valid base64'
    except UnicodeDecodeError:
        problem = '"b64decode": decoded bytes are not UTF-8 text'
    if problem is not None:
        raise Refused(problem)  # outside the except: no chained exception holding the bytes
    return decoded


FILTERS: dict[str, Callable[..., Any]] = {
    "lower": _text_filter("lower", str.lower),
    "upper": _text_filter("upper", str.upper),
    "capitalize": _text_filter("capitalize", str.capitalize),
    "title": _text_filter("title", str.title),
    "trim": _trim,
    "replace": _replace,
    "truncate": _truncate,
    "urlencode": _text_filter("urlencode", lambda s: quote(s, safe="/")),
    # Percent-encodes every reserved character: for a secret in URL userinfo or a query.
    "urlquote": _text_filter("urlquote", lambda s: quote(s, safe="")),
    "b64encode": _text_filter("b64encode", _b64encode),
    "b64decode": _text_filter("b64decode", _b64decode),
    "tojson": _tojson,
    "default": _default,
    "d": _default,
    "length": _length,
    "count": _length,
    "string": _string,
    "first": _first,
    "last": _last,
}
"""The filters a template may name: cheap, bounded, and pure."""

_JINJA_TEST_FUNCTIONS = cast(dict[str, Callable[..., Any]], _JINJA_TESTS)


# Jinja's odd/even/divisibleby compute `value % n` directly: on text that is printf-style
# formatting with a format of the template's choosing ('%999999999d' is odd -> 1 GB). These
# go through `binop`, which allows `%` on numbers only.
def _test_odd(value: Any) -> bool:
    return bool(binop("%", value, 2) == 1)


def _test_even(value: Any) -> bool:
    return bool(binop("%", value, 2) == 0)


def _test_divisibleby(value: Any, num: Any) -> bool:
    return bool(binop("%", value, num) == 0)


# Jinja's tests that only look at a scalar's type or compare scalars in linear time. Not `in`
# (an uncharged substring search), nor `lower`/`upper`/`callable`/`filter`/`test`/`escaped`.
TESTS: dict[str, Callable[..., Any]] = {
    **{
        name: _JINJA_TEST_FUNCTIONS[name]
        for name in (
            *("defined", "undefined", "none", "boolean", "false", "true"),
            *("integer", "float", "number", "string", "sameas"),
            *("eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<="),
            *("gt", "greaterthan", ">", "ge", ">="),
        )
    },
    "odd": _test_odd,
    "even": _test_even,
    "divisibleby": _test_divisibleby,
}


class SecretTemplateEnvironment(SandboxedEnvironment):
    """Jinja's sandbox, narrowed: no globals, no attributes, no calls, paid-for operators."""

    intercepted_binops = frozenset(_ARITHMETIC)

    def __init__(self) -> None:
        super().__init__(
            autoescape=False,
            undefined=StrictUndefined,
            finalize=finalize,
            # No compile-time constant folding: every evaluation happens during a render,
            # where it is paid for (folded constants would also be embedded in the code).
            optimized=False,
            keep_trailing_newline=True,
            auto_reload=False,
            cache_size=0,
        )
        self.globals.clear()  # no range, lipsum, dict, cycler, joiner, namespace
        self.filters = {
            **FILTERS,
            CONCAT_FILTER: concat,
            COMPARE_FILTER: compare,
            SLICE_FILTER: slice_text,
        }
        self.tests = dict(TESTS)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # No attribute is safe (the AST check already refuses `x.y`; this is the second wall).
        return self.unsafe_undefined(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        return binop(operator, left, right)
