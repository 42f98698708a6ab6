"""Secret templates: rendering, filters, and everything a hostile template might try."""

import base64
import json
import time
import tracemalloc
import urllib.parse

import jinja2
import jinja2.exceptions
import jinja2.nodes
import pytest

from credsmith.issuing import templates
from credsmith.issuing.template_sandbox import (
    MAX_VALUE_CHARS,
    MAX_WORK_UNITS,
    SecretTemplateEnvironment,
    work_budget,
)
from credsmith.issuing.templates import (
    MAX_TEMPLATE_NODES,
    MAX_TEMPLATE_OUTPUT_BYTES,
    MAX_TEMPLATE_SOURCE_BYTES,
    MAX_TOTAL_OUTPUT_BYTES,
    TemplateError,
    check_templates,
    render_templates,
)

CLIENT_ID = "3f1c9a52-8d7e-4b1a-9c3d-2e5f6a7b8c9d"
# A Printable-alphabet secret: quotes, backslash, slash, '@', ':', '%' and '{' all occur.
SECRET = "Zq8'\"\\x/@:%{}-Tp4r1nt4bl3-S3cr3t-v4lu3-0123"
CONTEXT = {"clientId": CLIENT_ID, "clientSecret": SECRET}


def render(source: str, context: dict[str, str] | None = None) -> str:
    return render_templates({"k": source}, CONTEXT if context is None else context)["k"]


def failure(source: str, key: str = "k") -> TemplateError:
    """Render and return the TemplateError, checking that it leaks nothing."""
    with pytest.raises(TemplateError) as info:
        render_templates({key: source}, CONTEXT)
    error = info.value
    assert error.key == key
    text = f"{error} {error!r} {error.problem} {error.args}"
    for value in CONTEXT.values():
        assert value not in text
        assert repr(value)[1:-1] not in text
    # Nothing chained that a logger could print with the traceback.
    assert error.__cause__ is None
    assert error.__context__ is None
    return error


# Rendering ------------------------------------------------------------------------------------


def test_design_example() -> None:
    result = render_templates({"url": "https://{{ clientId }}:{{ clientSecret }}@api"}, CONTEXT)
    assert result == {"url": f"https://{CLIENT_ID}:{SECRET}@api"}


def test_several_keys_and_plain_text() -> None:
    result = render_templates(
        {"id": "{{ clientId }}", "plain": "no variables", "empty": ""}, CONTEXT
    )
    assert result == {"id": CLIENT_ID, "plain": "no variables", "empty": ""}


def test_no_templates() -> None:
    assert render_templates({}, CONTEXT) == {}


def test_text_is_kept_verbatim_including_the_trailing_newline() -> None:
    source = "user: {{ clientId }}\n  password: '{{ clientSecret }}'\n"
    assert render(source) == f"user: {CLIENT_ID}\n  password: '{SECRET}'\n"


def test_no_autoescaping() -> None:
    assert render("{{ v }}", {"v": "<a href='x'>&amp;</a>"}) == "<a href='x'>&amp;</a>"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ v|lower }}", "ab-cd"),
        ("{{ v|upper }}", "AB-CD"),
        ("{{ v|capitalize }}", "Ab-cd"),
        ("{{ 'hello world'|title }}", "Hello World"),
        ("{{ '  pad  '|trim }}", "pad"),
        ("{{ 'xxpadxx'|trim('x') }}", "pad"),
        ("{{ v|replace('-', '_') }}", "aB_cD"),
        ("{{ 'aaa'|replace('a', 'b', 2) }}", "bba"),
        ("{{ 'ab'|replace('', '-') }}", "-a-b-"),
        ("{{ 'hello big world'|truncate(12) }}", "hello big world"),
        ("{{ 'hello big wide world'|truncate(12) }}", "hello..."),
        ("{{ 'hello big wide world'|truncate(12, true) }}", "hello big..."),
        ("{{ 'hello big wide world'|truncate(12, true, '!', 0) }}", "hello big w!"),
        ("{{ 'a b/c'|urlencode }}", "a%20b/c"),
        ("{{ 'a b/c@d:e'|urlquote }}", "a%20b%2Fc%40d%3Ae"),
        ("{{ 'user:pass'|b64encode }}", "dXNlcjpwYXNz"),
        ("{{ 'dXNlcjpwYXNz'|b64decode }}", "user:pass"),
        ("{{ '\u00e9'|b64encode|b64decode }}", "\u00e9"),
        ("{{ missing|default('fallback') }}", "fallback"),
        ("{{ missing|d(v) }}", "aB-cD"),
        ("{{ ''|default('x', true) }}", "x"),
        ("{{ v|default('x') }}", "aB-cD"),
        ("{{ v|length }}", "5"),
        ("{{ v|count }}", "5"),
        ("{{ 42|string ~ '!' }}", "42!"),
        ("{{ v|first }}{{ v|last }}", "aD"),
        ("{{ v|tojson }}", '"aB-cD"'),
        ("{{ 7|tojson }}", "7"),
        ("{{ none|tojson }}", "null"),
    ],
)
def test_filters(source: str, expected: str) -> None:
    assert render(source, {"v": "aB-cD"}) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ a ~ '-' ~ b }}", "x-y"),
        ("{{ a ~ 1 ~ none ~ true }}", "x1NoneTrue"),
        ("{{ a + b }}", "xy"),
        ("{{ a * 3 }}{{ 2 * b }}", "xxxyy"),
        ("{{ 1 + 2 * 3 - 4 / 2 }}", "5.0"),
        ("{{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ -2 ** 2 }} {{ 2 ** -1 }}", "3 1 1024 4 0.5"),
        ("{% if a == 'x' %}yes{% else %}no{% endif %}", "yes"),
        ("{% if a != 'x' %}yes{% elif b in 'xyz' %}elif{% endif %}", "elif"),
        ("{{ 1 < 2 < 3 }} {{ 3 < 2 < 1 }} {{ a not in 'abc' }}", "True False True"),
        ("{{ 'yes' if a else 'no' }}", "yes"),
        ("{{ 'yes' if not a }}", ""),
        ("{{ a and b }} {{ '' or b }}", "y y"),
        ("{% set c = a ~ b %}{{ c }}{{ c|upper }}", "xyXY"),
        ("{{ s[0] }}{{ s[-1] }}{{ s[1:3] }}{{ s[::-1] }}", "aebcedcba"),
        ("{{ a is defined }} {{ zzz is defined }} {{ zzz is undefined }}", "True False True"),
        (
            "{{ 4 is even }} {{ 9 is divisibleby 3 }} {{ a is string }} {{ 1 is number }}",
            "True True True True",
        ),
        ("{{ a is eq 'x' }} {{ 2 is gt 1 }} {{ a is sameas a }}", "True True True"),
        ("{# a comment #}{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"),
        ("  {%- if true -%}  x  {%- endif -%}  ", "x"),
    ],
)
def test_expressions_and_statements(source: str, expected: str) -> None:
    assert render(source, {"a": "x", "b": "y", "s": "abcde"}) == expected


def test_secret_survives_filters_for_urls_and_json() -> None:
    url = render("https://{{ clientId|urlquote }}:{{ clientSecret|urlquote }}@api")
    userinfo = urllib.parse.urlsplit(url).netloc.rsplit("@", 1)[0]
    assert urllib.parse.unquote(userinfo.split(":", 1)[1]) == SECRET
    assert json.loads(render('{"secret": {{ clientSecret|tojson }}}')) == {"secret": SECRET}
    assert base64.b64decode(render("{{ clientSecret|b64encode }}")).decode() == SECRET
    assert render("{{ clientSecret|b64encode|b64decode }}") == SECRET


def test_check_templates_accepts_good_templates_without_rendering() -> None:
    # Each would fail at render time (unknown variable, division by zero, bad base64), but
    # parsing succeeds and nothing is evaluated at check time.
    check_templates({"a": "{{ nobody }}", "b": "{{ 1 // 0 }}", "c": "{{ '!'|b64decode }}"})
    check_templates({})


def test_check_templates_reports_the_first_bad_key() -> None:
    with pytest.raises(TemplateError) as info:
        check_templates({"z": "{% for x in y %}{% endfor %}", "b": "ok", "c": "{{ x|center }}"})
    assert info.value.key == "c"
    assert str(info.value).startswith('secretTemplate.data["c"]: ')


# Error messages ---------------------------------------------------------------------------------


def test_unknown_variable_is_named() -> None:
    with pytest.raises(TemplateError) as info:
        render_templates({"url": "https://{{ clientId }}:{{ clientSecrett }}@api"}, CONTEXT)
    assert str(info.value) == 'secretTemplate.data["url"]: unknown variable "clientSecrett"'
    assert info.value.problem == 'unknown variable "clientSecrett"'


def test_unknown_variable_inside_a_filter_and_an_operator() -> None:
    assert failure("{{ nope|upper }}").problem == 'unknown variable "nope"'
    assert failure("{{ 'a' ~ nope }}").problem == 'unknown variable "nope"'
    assert failure("{{ 1 + nope }}").problem == 'unknown variable "nope"'
    assert failure("{% if nope == 1 %}{% endif %}").problem == 'unknown variable "nope"'


def test_an_unknown_variable_shaped_like_an_extra_secret_is_named_as_written() -> None:
    # Extra secrets' keys become variables "extra__" + the key with "_xx" hex escapes; a
    # name of that shape with no hex after a "_" was written as it is, not made by us.
    assert failure("{{ extra___zz }}").problem == 'unknown variable "extra___zz"'
    assert failure("{{ extra___4 }}").problem == 'unknown variable "extra___4"'


def test_syntax_error_has_the_line_number() -> None:
    error = failure("line one\nline two {{ clientId }\n")
    assert error.problem.startswith("line 2: ")
    assert str(error).startswith('secretTemplate.data["k"]: line 2: ')


def test_unknown_filter_lists_the_allowed_ones() -> None:
    error = failure("{{ clientId|center(999999999) }}")
    assert 'unknown filter "center"' in error.problem
    assert "b64encode" in error.problem


def test_output_limit_message() -> None:
    error = failure("{{ 'x' * 60000 }}{{ 'x' * 60000 }}", key="big")
    assert str(error) == 'secretTemplate.data["big"]: output exceeds 65536 bytes'


def test_scrub_replaces_values_and_their_escaped_forms() -> None:
    message = f"bad {SECRET!r} and {json.dumps(SECRET)} and {SECRET} near {CLIENT_ID}"
    scrubbed = templates._scrub(message, CONTEXT.values())
    assert SECRET not in scrubbed
    assert repr(SECRET)[1:-1] not in scrubbed
    assert json.dumps(SECRET)[1:-1] not in scrubbed
    assert CLIENT_ID not in scrubbed
    assert scrubbed.count(templates.REDACTED) == 4
    assert templates._scrub("nothing to hide", CONTEXT.values()) == "nothing to hide"
    assert templates._scrub("x", ["", "x"]) == templates.REDACTED


def test_a_leaking_message_is_scrubbed_before_it_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence works end to end: even if some failure's description quoted
    a value, the raised TemplateError would not."""
    monkeypatch.setattr(templates, "_describe", lambda exc, names: f"oops {SECRET}")
    with pytest.raises(TemplateError) as info:
        render_templates({"k": "{{ 1 // 0 }}"}, CONTEXT)
    assert SECRET not in str(info.value)
    assert templates.REDACTED in str(info.value)


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "source",
    [
        "{{ clientSecret[clientSecret] }}",
        "{{ clientSecret['x'] }}",
        "{{ clientSecret[999] }}",
        "{{ clientSecret + 1 }}",
        "{{ clientSecret - 1 }}",
        "{{ clientSecret * clientSecret }}",
        "{{ clientSecret % clientSecret }}",
        "{{ clientSecret < 1 }}",
        "{{ clientSecret in 1 }}",
        "{{ 1 in clientSecret }}",
        "{{ clientSecret|b64decode }}",
        "{{ clientSecret|truncate(clientSecret) }}",
        "{{ clientSecret|replace(clientSecret) }}",
        "{{ clientSecret|replace('a', 'b', clientSecret) }}",
        "{{ clientSecret|trim(1, 2) }}",
        "{{ clientSecret is divisibleby clientSecret }}",
        "{{ clientSecret ~ (clientSecret * 100000) }}",
        "{{ clientSecret|int }}",
        "{{ clientSecret.upper() }}",
        "{{ clientSecret // 0 }}",
    ],
)
def test_failures_on_secret_values_never_quote_them(source: str) -> None:
    failure(source)


# Escapes ------------------------------------------------------------------------------------------


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "source",
    [
        "{{ clientId.__class__ }}",
        "{{ clientId.__class__.__mro__ }}",
        "{{ clientId.__class__.__mro__[1].__subclasses__() }}",
        "{{ ''.__class__ }}",
        "{{ ''['__class__'] }}",
        "{{ clientId['__class__'] }}",
        "{{ clientId['format'] }}",
        "{{ clientId.format('{0.__class__}') }}",
        "{{ clientId|attr('__class__') }}",
        "{{ self }}",
        "{{ self.__init__.__globals__ }}",
        "{{ self._TemplateReference__context }}",
        "{{ config }}",
        "{{ config.items() }}",
        "{{ request }}",
        "{{ environment }}",
        "{{ context }}",
        "{{ lipsum }}",
        "{{ lipsum.__globals__ }}",
        "{{ range }}",
        "{{ range(10) }}",
        "{{ cycler }}",
        "{{ joiner }}",
        "{{ namespace() }}",
        "{{ dict(a=1) }}",
        "{{ __builtins__ }}",
        "{{ clientId|map('upper') }}",
        "{{ clientId|format(clientSecret) }}",
        "{{ clientId|join(',') }}",
        "{{ clientId|indent(999999999) }}",
        "{{ clientId|wordwrap(1) }}",
        "{{ clientId|tojson|safe }}",
        "{{ clientId is callable }}",
        "{{ clientId is in 'x' }}",
        "{{ clientId is lower }}",
        "{{ clientId|replace(*'ab') }}",
        "{{ clientId|replace(**x) }}",
        "{% include 'x' %}",
        "{% import 'os' as os %}",
        "{% from 'os' import path %}",
        "{% extends 'base' %}",
        "{% block b %}{% endblock %}",
        "{% macro m() %}x{% endmacro %}",
        "{% call m() %}x{% endcall %}",
        "{% filter upper %}x{% endfilter %}",
        "{% set x %}y{% endset %}",
        "{% with a = 1 %}{{ a }}{% endwith %}",
        "{% for c in clientId %}{{ c }}{% endfor %}",
        "{% autoescape true %}x{% endautoescape %}",
        "{% set ns.x = 1 %}",
        "{% set a, b = 'xy' %}",
        "{% do clientId %}",
        "{% debug %}",
        "{{ [clientSecret] }}",
        "{{ {'a': clientSecret} }}",
        "{{ (clientSecret, 1) }}",
        "{{ clientSecret, 1 }}",
        "{{ (-8) ** 0.5 }}",
    ],
)
def test_escape_attempts_are_refused(source: str) -> None:
    failure(source)


def test_attribute_access_is_refused_with_a_clear_message() -> None:
    error = failure("{{ clientId.__class__.__mro__ }}")
    assert "attribute access" in error.problem
    assert '".__mro__"' in error.problem or '".__class__"' in error.problem


def test_self_and_config_messages() -> None:
    assert failure("{{ self }}").problem == 'line 1: "self" is not available'
    assert failure("{{ config }}").problem == 'unknown variable "config"'
    assert failure("{% for x in y %}{% endfor %}").problem == 'line 1: "for" loops are not allowed'
    assert '"include" is not allowed' in failure("{% include 'x' %}").problem
    assert (
        '"autoescape" blocks are not allowed'
        in failure("{% autoescape 1 %}{% endautoescape %}").problem
    )


def test_number_tests_refuse_text() -> None:
    assert render("{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }}") == "True True True"
    assert render("{{ 3.0 is divisibleby 1.5 }}") == "True"
    assert failure("{{ 'x' is odd }}").problem.startswith('"%" works on numbers')


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ clientSecret[999] }}", "index out of range"),
        ("{{ clientSecret['x'] }}", "text can be indexed by integers only"),
        ("{{ clientSecret[1:'x'] }}", "slice bounds must be integers"),
        ("{{ 1 // 0 }}", "division by zero"),
        ("{{ 9.0 ** 9999999 }}", '"**" result is out of range'),
        ("{{ 2 ** 4097 }}", '"**" result exceeds 4096 bits'),
        ("{{ 2 ** 4096 }}", '"**" result exceeds 4096 bits'),  # caught after computing
        ("{{ (2 ** 4000) * (2 ** 4000) }}", '"*" result exceeds 4096 bits'),
        ("{{ (2 ** 4095) + (2 ** 4095) }}", '"+" result exceeds 4096 bits'),
        (
            "{{ clientSecret < 1 }}",
            "wrong type of operand or filter argument, or wrong number of filter arguments",
        ),
        ("{{ 'dXNl!cjpwYXNz'|b64decode }}", '"b64decode": input is not valid base64'),
        ("{{ '/w=='|b64decode }}", '"b64decode": decoded bytes are not UTF-8 text'),
        ("{{ ''|first }}", '"first" of empty text'),
        ("{{ ''|last }}", '"last" of empty text'),
        (
            "{{ 'abc'|truncate(2) }}",
            '"truncate" needs an integer length of at least len(end) and leeway >= 0',
        ),
        ("{{ [1]|length }}", "line 1: list literals are not allowed"),
        # Parses, but exceeds Python's 100 levels of indentation when compiled.
        ("{% if true %}" * 120 + "{% endif %}" * 120, "template is nested too deeply"),
        # Exceeds the recursion limit of Jinja's parser.
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "template is nested too deeply"),
    ],
)
def test_problem_messages(source: str, problem: str) -> None:
    assert failure(source).problem == problem


@pytest.mark.parametrize(
    ("exception", "problem"),
    [
        (jinja2.exceptions.UndefinedError(f"'{SECRET}' is undefined"), "undefined value"),
        (jinja2.exceptions.UndefinedError("'clientSecrett' is undefined"), "undefined value"),
        (jinja2.exceptions.SecurityError(f"access to {SECRET}"), "forbidden by the sandbox"),
        (RecursionError(SECRET), "template is nested too deeply"),
        (ValueError(SECRET), "rendering failed (ValueError)"),
        (KeyError(SECRET), "rendering failed (KeyError)"),
    ],
)
def test_describe_never_repeats_an_exception_message(exception: Exception, problem: str) -> None:
    """Only variable names that occur in the source may be quoted (here: none do)."""
    assert templates._describe(exception, frozenset({"clientId"})) == problem


def test_budget_charges_filters_for_input_and_output() -> None:
    """`upper` on 60000 characters costs 120000 units: reading them and writing them."""
    build = "{% set a = 'x' * 60000 %}"  # 60000 units
    fits = (MAX_WORK_UNITS - 60000) // 120000
    assert render(build + "{{ a|upper|length }}" * fits) == "60000" * fits
    assert "units of work" in failure(build + "{{ a|upper|length }}" * (fits + 1)).problem


@pytest.mark.parametrize("name", ["range", "lipsum", "dict", "cycler", "joiner", "namespace"])
def test_globals_are_empty(name: str) -> None:
    assert render(f"{{{{ {name} is defined }}}}") == "False"


def test_sandbox_alone_refuses_attributes_and_calls() -> None:
    """Defence in depth: compiled without the AST check, the environment still refuses."""
    env = SecretTemplateEnvironment()
    with work_budget():
        for source in ("{{ x.__class__ }}", "{{ x.upper() }}", "{{ x.format }}"):
            with pytest.raises(jinja2.exceptions.SecurityError):
                env.from_string(source).render(x="abc")


# Explosions ---------------------------------------------------------------------------------------


@pytest.mark.timeout(60)  # a hang; the CPU time is bounded in the test
@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 100000000 }}",
        "{{ 100000000 * 'a' }}",
        "{{ clientSecret * 100000000 }}",
        "{{ 9 ** 9999999 }}",
        "{{ 2 ** 4097 }}",
        "{{ (2 ** 4000) * (2 ** 4000) }}",
        "{{ 9.0 ** 9999999 }}",
        "{{ (10 ** 1000) / 3 }}",
        "{{ '%999999999s' % clientId }}",
        "{{ clientId|center(999999999) }}",
        "{{ clientId|replace('-', clientSecret * 1000) }}",
        "{{ ('x' * 4000)|replace('x', 'y' * 8000) }}",
        "{{ ('x' * 4000) ~ ('y' * 8000) ~ ('z' * 60000) }}",
        "{{ 'x'|replace('', 'y' * 60000)|replace('y', 'yy') }}",
        "{{ clientSecret" + "|replace('S', 'SSSSSSSSSS')|replace('-', '----------')" * 6 + " }}",
        "{{ clientSecret" + "|b64encode" * 40 + " }}",
        "{{ clientSecret" + "|replace('%', '%%')|urlquote" * 20 + " }}",
        "{% set a = clientSecret %}" + "{% set a = a ~ a %}" * 40 + "{{ a|length }}",
        "{% set a = clientSecret %}" + "{% set a = a + a %}" * 40 + "{{ a|length }}",
        "{{ clientSecret|truncate(9999999999, false, 'x' * 99999) }}",
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "{% if true %}" * 300 + "x" + "{% endif %}" * 300,
        "{{ " + "9" * 5000 + " }}",
        "{{ clientId }}" * MAX_TEMPLATE_NODES,
        "x" * (MAX_TEMPLATE_SOURCE_BYTES + 1),
        "{{ 'x' * 60000 }}" * 2,
        "{{ '\u00e9' * 40000 }}",
        "{{ ('x' * 60000)|trim('y' * 59999 ~ 'x') }}",
        "{{ '%999999999d' is odd }}",
        "{{ '%999999999d' is even }}",
        "{{ '%999999999d' is divisibleby 3 }}",
        "{{ 3 is divisibleby '%999999999d' }}",
    ],
    ids=lambda source: source[:60],
)
def test_explosions_are_refused_quickly_and_small(source: str) -> None:
    """Refused within 5 s of CPU, and without ever holding much memory. CPU time, not
    wall time: under pytest-xdist six workers share two cores and wall time stretches
    threefold; the wall-clock timeout only catches a hang."""
    started = time.process_time()
    tracemalloc.start()
    try:
        failure(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.process_time() - started < 5
    assert peak < 16 * 1024 * 1024


BIG = "{% set a = 'x' * 60000 %}{% set b = 'x' * 59999 ~ 'y' %}"


@pytest.mark.timeout(5)
@pytest.mark.parametrize(
    "unit",
    ["{{ a == b }}", "{{ a < b }}", "{{ a|length }}", "{% if a %}{% endif %}", "{{ a is eq b }}"],
)
def test_uncharged_operations_stay_cheap_at_the_node_cap(unit: str) -> None:
    """Operations the budget does not charge are O(1) or a memcmp: repeated up to the node
    cap on the largest values, they still finish well within the timeout."""
    one, two = count_nodes(BIG + unit), count_nodes(BIG + unit * 2)
    per_unit, fixed = two - one, 2 * one - two
    source = BIG + unit * ((MAX_TEMPLATE_NODES - fixed) // per_unit)
    assert MAX_TEMPLATE_NODES - per_unit < count_nodes(source) <= MAX_TEMPLATE_NODES
    render(source)


@pytest.mark.timeout(5)
def test_work_budget_stops_repeated_big_work() -> None:
    """Each step is small enough, but together they exceed the work budget."""
    build = "{% set a = 'x' * 60000 %}"
    steps = MAX_WORK_UNITS // 60000 + 1
    error = failure(build + "{{ (a ~ '')|length }}" * steps)
    assert "units of work" in error.problem
    # One step fewer than needed to exhaust the budget renders.
    assert render(build + "{{ (a ~ '')|length }}" * (steps - 2)) == "60000" * (steps - 2)


def test_concat_is_capped() -> None:
    """48 * 2**11 characters: past the value cap, so `~` refuses (`==` itself needs no cap)."""
    doublings = "{% set a = clientSecret %}" + "{% set a = a ~ a %}" * 11
    assert render(doublings[: -len("{% set a = a ~ a %}")] + "{{ a == '' }}") == "False"
    assert '"~" would produce more' in failure(doublings + "{{ a == '' }}").problem


@pytest.mark.timeout(5)
def test_slices_are_paid_for() -> None:
    build = "{% set a = 'x' * 60000 %}"
    steps = MAX_WORK_UNITS // 60000 + 1
    source = build + "".join(f"{{% set b{i} = a[{i}:] %}}" for i in range(steps))
    assert "units of work" in failure(source).problem


@pytest.mark.timeout(5)
def test_substring_search_is_charged_at_its_worst_case() -> None:
    """`in` costs len(haystack) * len(needle): here 60000 * 21 > MAX_WORK_UNITS."""
    source = "{% set h = 'a' * 60000 %}{% set n = 'a' * 20 ~ 'b' %}{{ n in h }}"
    assert "units of work" in failure(source).problem
    assert render("{% set h = 'a' * 1000 %}{{ 'ab' in h }}") == "False"


@pytest.mark.parametrize(
    ("source", "operation"),
    [
        ("{{ ('x' * 1000)|replace('x', 'y' * 1000) }}", '"replace"'),
        ("{{ 'x'|replace('', 'y' * 40000) }}", '"replace"'),
        ("{{ ('x' * 40000) ~ ('y' * 40000) }}", '"~"'),
        ("{{ ('x' * 40000) + ('y' * 40000) }}", '"+"'),
        ("{{ ('x' * 40000)|b64encode|b64encode }}", '"b64encode"'),
        ("{{ ('\u00e9' * 30000)|urlquote }}", '"urlquote"'),
        ("{{ ('x' * 60000)[:] ~ 'x' * 6000 }}", '"~"'),
    ],
)
def test_value_cap_is_checked_before_the_work(source: str, operation: str) -> None:
    assert (
        failure(source).problem
        == f"{operation} would produce more than {MAX_VALUE_CHARS} characters"
    )


def test_filter_input_cap() -> None:
    context = {"big": "x" * (MAX_VALUE_CHARS + 1)}
    with pytest.raises(TemplateError, match='"upper" input exceeds'):
        render_templates({"k": "{{ big|upper }}"}, context)


@pytest.mark.timeout(5)
def test_value_cap() -> None:
    assert render(f"{{{{ ('x' * {MAX_VALUE_CHARS})|length }}}}") == str(MAX_VALUE_CHARS)
    error = failure(f"{{{{ ('x' * {MAX_VALUE_CHARS + 1})|length }}}}")
    assert error.problem == f'"*" would produce more than {MAX_VALUE_CHARS} characters'


@pytest.mark.timeout(5)
def test_output_cap_is_exact_and_counts_bytes() -> None:
    exact = f"{{{{ 'x' * {MAX_TEMPLATE_OUTPUT_BYTES - 1} }}}}y"
    assert len(render(exact)) == MAX_TEMPLATE_OUTPUT_BYTES
    failure(exact + "z")
    # 2-byte characters: half as many fit.
    assert len(render(f"{{{{ '\u00e9' * {MAX_TEMPLATE_OUTPUT_BYTES // 2} }}}}")) == 32768
    failure(f"{{{{ '\u00e9' * {MAX_TEMPLATE_OUTPUT_BYTES // 2} }}}}x")


@pytest.mark.timeout(5)
def test_huge_literal_output() -> None:
    assert render("x" * MAX_TEMPLATE_SOURCE_BYTES) == "x" * MAX_TEMPLATE_SOURCE_BYTES
    error = failure("x" * (MAX_TEMPLATE_SOURCE_BYTES + 1))
    assert error.problem == f"template exceeds {MAX_TEMPLATE_SOURCE_BYTES} bytes"


@pytest.mark.timeout(5)
def test_total_output_cap_across_keys() -> None:
    per_key = "{{ 'x' * 60000 }}"
    four = {f"k{i}": per_key for i in range(4)}
    assert sum(map(len, render_templates(four, CONTEXT).values())) == 240000
    five = {f"k{i}": per_key for i in range(5)}
    with pytest.raises(TemplateError) as info:
        render_templates(five, CONTEXT)
    assert info.value.key == "k4"
    assert info.value.problem == f"output of all keys exceeds {MAX_TOTAL_OUTPUT_BYTES} bytes"


def count_nodes(source: str) -> int:
    tree = jinja2.Environment(autoescape=True).parse(source)
    return 1 + sum(1 for _ in tree.find_all(jinja2.nodes.Node))


def test_node_cap_is_exact() -> None:
    fits = "{{ clientId }}" * (MAX_TEMPLATE_NODES - 2)
    assert count_nodes(fits) == MAX_TEMPLATE_NODES  # Template, Output, and one Name each
    check_templates({"k": fits})
    with pytest.raises(TemplateError, match="syntax nodes"):
        check_templates({"k": fits + "{{ clientId }}"})
