"""Secret templates are no oracle on the secret (issue 11, finding 8): whether a template
renders, and the message when it does not, are the same for every secret value."""

import base64
import json
import string
import urllib.parse
from collections.abc import Mapping

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from credsmith.api.alphabets import ALPHABETS
from credsmith.api.enums import SecretAlphabet
from credsmith.issuing.template_sandbox import FILTERS, MAX_WORK_UNITS, work_budget
from credsmith.issuing.templates import (
    MAX_TEMPLATE_OUTPUT_BYTES,
    MAX_TOTAL_OUTPUT_BYTES,
    RENDERING_FAILED,
    SECRET_TRANSFORMS,
    TemplateError,
    check_templates,
    placeholder,
    render_templates,
)

SECRET_NAMES = frozenset({"clientSecret", "clientSecretPrevious", "apiKey", "privateKeyPem"})
CLIENT_ID = "3f1c9a52-8d7e-4b1a-9c3d-2e5f6a7b8c9d"
SECRET = "Zq8'\"\\x/@:%{}-Tp4r1nt4bl3+S3cr3t"
CONTEXT = {"clientId": CLIENT_ID, "clientSecret": SECRET}

ORACLE = "{% if clientSecret[0] == 'a' %}{{ 1/0 }}{% endif %}"


def misuse(name: str, line: int = 1) -> str:
    return (
        f'line {line}: secret variable "{name}" may only be output, joined with ~, or passed '
        "once through one of b64encode, lower, string, tojson, upper, urlencode, urlquote; "
        "it cannot be tested, compared, indexed, sliced, measured or assigned"
    )


# The secret-flow check ------------------------------------------------------------------------

REFUSED = [
    ORACLE,
    "{% if clientSecret %}x{% endif %}",
    "{% if clientId %}{% elif clientSecret %}{% endif %}",
    "{{ clientSecret[0] }}",
    "{{ clientSecret[1:] }}",
    "{{ clientId[clientSecret:] }}",
    "{{ clientId[clientSecret] }}",
    "{{ clientSecret|length }}",
    "{{ clientSecret|first }}",
    "{{ clientSecret == 'x' }}",
    "{{ 'a' in clientSecret }}",
    "{{ clientSecret is string }}",
    "{{ clientSecret is defined }}",
    "{% set s = clientSecret %}",
    "{% set s = clientId ~ clientSecret %}{{ s }}",
    "{{ 'x'|replace('a', clientSecret) }}",
    "{{ clientId|b64encode(clientSecret) }}",
    "{{ clientId|truncate(length=clientSecret) }}",
    "{{ clientSecret|urlquote|b64encode }}",
    "{{ (clientSecret|upper ~ 'x')|b64encode }}",
    "{{ clientSecret + 'x' }}",
    "{{ clientSecret * 2 }}",
    "{{ -clientSecret }}",
    "{{ 'x' if clientSecret else 'y' }}",
    "{{ clientSecret and 'x' }}",
    "{{ clientSecret or 'x' }}",
    "{{ not clientSecret }}",
    "{{ clientSecret|default('x') }}",
    "{{ clientSecret|b64decode }}",
    "{{ clientSecret|replace('a', 'b') }}",
    "{{ clientSecret|trim }}",
    "{{ clientSecret|truncate(20) }}",
    "{{ clientSecret|capitalize }}",
]


@pytest.mark.parametrize("source", REFUSED)
def test_secret_material_may_not_be_inspected(source: str) -> None:
    with pytest.raises(TemplateError) as info:
        check_templates({"k": source}, SECRET_NAMES)
    assert info.value.problem == misuse("clientSecret")
    # Rendering refuses it the same way, before anything is evaluated, and quotes no value.
    with pytest.raises(TemplateError) as rendered:
        render_templates({"k": source}, CONTEXT, SECRET_NAMES)
    assert rendered.value.problem == misuse("clientSecret")
    assert SECRET not in str(rendered.value)
    # Refused because the variable is secret: the same use of a public one is checked as ever.
    check_templates({"k": source.replace("clientSecret", "clientId")}, SECRET_NAMES)
    check_templates({"k": source}, SECRET_NAMES - {"clientSecret"})


def test_the_misuse_is_located_and_named() -> None:
    source = "line one\n{{ clientId }}\n{{ apiKey|upper }}\n{{ privateKeyPem|length }}"
    with pytest.raises(TemplateError) as info:
        check_templates({"tls": source}, SECRET_NAMES)
    assert str(info.value) == 'secretTemplate.data["tls"]: ' + misuse("privateKeyPem", line=4)


def test_the_first_misuse_in_the_source_is_reported() -> None:
    source = "{{ apiKey|length }}{% if clientSecret %}{% endif %}"
    with pytest.raises(TemplateError) as info:
        check_templates({"k": source}, SECRET_NAMES)
    assert info.value.problem == misuse("apiKey")


def test_structural_refusals_come_before_the_flow_rule() -> None:
    """A construct refused for everyone keeps its own message."""
    with pytest.raises(TemplateError) as info:
        check_templates({"k": "{% for c in clientSecret %}{% endfor %}"}, SECRET_NAMES)
    assert info.value.problem == 'line 1: "for" loops are not allowed'
    with pytest.raises(TemplateError, match="attribute access"):
        check_templates({"k": "{{ clientSecret.upper }}"}, SECRET_NAMES)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "https://{{ clientId }}:{{ clientSecret|urlquote }}@api",
            f"https://{CLIENT_ID}:Zq8%27%22%5Cx%2F%40%3A%25%7B%7D-Tp4r1nt4bl3%2BS3cr3t@api",
        ),
        ("{{ (clientId ~ ':' ~ clientSecret)|b64encode }}", b64(f"{CLIENT_ID}:{SECRET}")),
        ("{{ clientSecret|tojson }}", json.dumps(SECRET)),
        ("{{ clientSecret }}", SECRET),
        ("{{ clientSecret|upper }}{{ clientSecret|lower }}", SECRET.upper() + SECRET.lower()),
        ("{{ clientSecret|string ~ '!' }}", SECRET + "!"),
        ("{{ clientSecret|urlencode }}", urllib.parse.quote(SECRET, safe="/")),
        ("{{ 'Basic ' ~ ('u:' ~ clientSecret)|b64encode }}", "Basic " + b64("u:" + SECRET)),
        ("{{ clientSecret ~ clientSecret|upper }}", SECRET + SECRET.upper()),
        ("{{ (clientSecret if clientId else 'none')|upper }}", SECRET.upper()),
        ("{{ clientSecret if clientId == 'x' }}", ""),
        (
            "{% if clientId|length > 3 and clientId[0] != 'x' %}{{ clientSecret }}{% endif %}",
            SECRET,
        ),
        (
            "{% set u = clientId|upper %}{{ u ~ ':' ~ clientSecret }}",
            f"{CLIENT_ID.upper()}:{SECRET}",
        ),
    ],
)
def test_secret_material_may_be_output_joined_and_transformed(source: str, expected: str) -> None:
    check_templates({"k": source}, SECRET_NAMES)
    assert render_templates({"k": source}, CONTEXT, SECRET_NAMES) == {"k": expected}


def test_the_compile_cache_is_per_set_of_secret_names() -> None:
    templates = {"k": "{{ clientSecret|length }}"}
    check_templates(templates)
    with pytest.raises(TemplateError):
        check_templates(templates, SECRET_NAMES)
    check_templates(templates, ["apiKey"])
    assert render_templates(templates, CONTEXT) == {"k": str(len(SECRET))}
    with pytest.raises(TemplateError):
        render_templates(templates, CONTEXT, ["clientSecret"])


# Why `"` is the placeholder character -------------------------------------------------------

# Every character a secret value may hold: printable ASCII (every alphabet, PEM text) and the
# whitespace of PEM text.
SECRET_CHARACTERS = "".join(chr(c) for c in range(0x20, 0x7F)) + "\t\n\r"


def test_generated_values_stay_within_the_characters_the_argument_covers() -> None:
    for alphabet in SecretAlphabet:
        assert set(ALPHABETS[alphabet]) <= set(SECRET_CHARACTERS)


@pytest.mark.parametrize("name", sorted(SECRET_TRANSFORMS))
def test_no_character_expands_more_than_the_placeholder(name: str) -> None:
    transform = FILTERS[name]
    with work_budget():
        widest = len(transform(placeholder(1)))
        for character in SECRET_CHARACTERS:
            assert len(transform(character)) <= widest, repr(character)
        # Lengths add up: no transform looks at a character's neighbours.
        assert len(transform(SECRET_CHARACTERS)) <= len(
            transform(placeholder(len(SECRET_CHARACTERS)))
        )


def test_the_placeholder_character_matters() -> None:
    """Against a wrong choice: a letter expands less than `"`, and a control character other
    than tab, newline or carriage return more (which is why such values are excluded)."""
    with work_budget():
        assert len(FILTERS["urlquote"]("a")) < len(FILTERS["urlquote"]('"'))
        assert len(FILTERS["tojson"]("a")) < len(FILTERS["tojson"]('"'))
        assert len(FILTERS["tojson"]("\x01")) > len(FILTERS["tojson"]('"'))


def test_placeholder() -> None:
    assert placeholder(3) == '"""'
    assert placeholder(0) == ""
    with pytest.raises(ValueError, match="negative"):
        placeholder(-1)


# The outcome is the placeholder's -----------------------------------------------------------

LENGTH = 40
"""The secret's length under its (imagined) generation parameters."""
PLACEHOLDERS = {"clientSecret": placeholder(LENGTH), "clientSecretPrevious": placeholder(LENGTH)}
EVERY_TRANSFORM = (
    "{{ clientSecret }}|{{ clientSecret|b64encode }}|{{ clientSecret|urlencode }}|"
    "{{ clientSecret|urlquote }}|{{ clientSecret|tojson }}|{{ clientSecret|upper }}|"
    "{{ clientSecret|lower }}|{{ clientSecret|string }}|"
    "{{ (clientId ~ ':' ~ clientSecret)|b64encode }}|{{ clientSecretPrevious|urlquote }}"
)
# Padding before a secret filtered with urlquote (3 characters each), tojson (2, and quotes)
# or b64encode, that takes the placeholder's output exactly to MAX_TEMPLATE_OUTPUT_BYTES.
URLQUOTE_PAD = MAX_TEMPLATE_OUTPUT_BYTES - 3 * LENGTH
TOJSON_PAD = MAX_TEMPLATE_OUTPUT_BYTES - (2 * LENGTH + 2)
B64_PAD = MAX_TEMPLATE_OUTPUT_BYTES - 4 * -(-LENGTH // 3)
# Work: 60000 for `a` and for each `(a ~ '')|length` (the `~` writes it), then the pad, then 4
# per character of the secret for urlquote (reads 1, writes 3).
BUDGET_PAD = MAX_WORK_UNITS - 60000 - 16 * 60000 - 4 * LENGTH
WORK = "{% set a = 'x' * 60000 %}" + "{{ (a ~ '')|length }}" * 16


def padded(pad: int, secret: str) -> str:
    return f"{{{{ 'x' * {pad} }}}}{secret}"


def over_total(pad: int) -> dict[str, str]:
    four = {f"k{i}": "{{ 'x' * 60000 }}" for i in range(4)}
    return {**four, "k4": padded(pad, "{{ clientSecret|urlquote }}")}


TOTAL_PAD = MAX_TOTAL_OUTPUT_BYTES - 4 * 60000 - 3 * LENGTH

OUTPUT_LIMIT = f'secretTemplate.data["k"]: output exceeds {MAX_TEMPLATE_OUTPUT_BYTES} bytes'
WORK_LIMIT = (
    f'secretTemplate.data["k"]: rendering needs more than {MAX_WORK_UNITS} units of work '
    '(at "urlquote")'
)
CASES: dict[str, tuple[dict[str, str], str]] = {
    "url": ({"url": "https://{{ clientId }}:{{ clientSecret|urlquote }}@api"}, "ok"),
    "every transform": ({"k": EVERY_TRANSFORM}, "ok"),
    "json": ({"k": '{"id": {{ clientId|tojson }}, "secret": {{ clientSecret|tojson }}}'}, "ok"),
    "public branches": (
        {"k": "{% if clientId[0] == '3' %}{{ clientSecret if clientId else 'no' }}{% endif %}"},
        "ok",
    ),
    "public failure": (
        {"k": "{{ clientSecret|b64encode }}{{ 1 // 0 }}"},
        'secretTemplate.data["k"]: division by zero',
    ),
    "urlquote at the limit": ({"k": padded(URLQUOTE_PAD, "{{ clientSecret|urlquote }}")}, "ok"),
    "urlquote past the limit": (
        {"k": padded(URLQUOTE_PAD + 1, "{{ clientSecret|urlquote }}")},
        OUTPUT_LIMIT,
    ),
    "urlencode past the limit": (
        {"k": padded(URLQUOTE_PAD + 1, "{{ clientSecret|urlencode }}")},
        OUTPUT_LIMIT,
    ),
    "tojson at the limit": ({"k": padded(TOJSON_PAD, "{{ clientSecret|tojson }}")}, "ok"),
    "tojson past the limit": (
        {"k": padded(TOJSON_PAD + 1, "{{ clientSecret|tojson }}")},
        OUTPUT_LIMIT,
    ),
    "b64encode at the limit": ({"k": padded(B64_PAD, "{{ clientSecret|b64encode }}")}, "ok"),
    "b64encode past the limit": (
        {"k": padded(B64_PAD + 1, "{{ clientSecret|b64encode }}")},
        OUTPUT_LIMIT,
    ),
    "raw past the limit": (
        {"k": padded(MAX_TEMPLATE_OUTPUT_BYTES - LENGTH + 1, "{{ clientSecret }}")},
        OUTPUT_LIMIT,
    ),
    "total at the limit": (over_total(TOTAL_PAD), "ok"),
    "total past the limit": (
        over_total(TOTAL_PAD + 1),
        f'secretTemplate.data["k4"]: output of all keys exceeds {MAX_TOTAL_OUTPUT_BYTES} bytes',
    ),
    "work at the budget": (
        {"k": WORK + f"{{% set b = 'x' * {BUDGET_PAD} %}}{{{{ clientSecret|urlquote }}}}"},
        "ok",
    ),
    "work past the budget": (
        {"k": WORK + f"{{% set b = 'x' * {BUDGET_PAD + 1} %}}{{{{ clientSecret|urlquote }}}}"},
        WORK_LIMIT,
    ),
}


def outcome(
    templates: Mapping[str, str],
    secret: str,
    previous: str = "",
    placeholders: Mapping[str, str] | None = PLACEHOLDERS,
    secret_names: frozenset[str] = SECRET_NAMES,
) -> str:
    """ "ok", or the TemplateError as the status would show it."""
    context = {"clientId": CLIENT_ID, "clientSecret": secret, "clientSecretPrevious": previous}
    try:
        render_templates(templates, context, secret_names, placeholders)
    except TemplateError as exc:
        return str(exc)
    return "ok"


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_placeholder_outcome_is_the_expected_one(case: str) -> None:
    """The cases are what their names say: rendered with the placeholder as the value (so
    no secret at all), each at or just past its limit."""
    templates, expected = CASES[case]
    assert (
        outcome(templates, placeholder(LENGTH), placeholder(LENGTH), None, frozenset()) == expected
    )


# Past a limit only through escaping: not the raw or base64-encoded secret, whose lengths
# depend only on the value's length.
ESCAPING_PAST_A_LIMIT = [
    name for name in sorted(CASES) if "past" in name and not name.startswith(("raw", "b64"))
]


@pytest.mark.parametrize("case", ESCAPING_PAST_A_LIMIT)
def test_without_placeholders_a_plain_value_would_pass_the_limit(case: str) -> None:
    """What the placeholder render prevents: rendered plainly, a value with nothing to escape
    passes where the placeholder does not. (So the property below can fail.)"""
    templates, _ = CASES[case]
    assert outcome(templates, "a" * LENGTH, secret_names=frozenset()) == "ok"


secret_characters = st.sampled_from(ALPHABETS[SecretAlphabet.PRINTABLE]) | st.sampled_from('"\\%+/')
secrets = st.text(secret_characters, min_size=LENGTH, max_size=LENGTH)
shorter = st.text(secret_characters, max_size=LENGTH)


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=25, deadline=None)
@given(values=st.lists(secrets, min_size=3, max_size=3), previous=shorter)
@example(values=["a" * LENGTH, '"' * LENGTH, "%" * LENGTH], previous="")
@example(values=[string.ascii_letters[:LENGTH], "\\" * LENGTH, "+/" * (LENGTH // 2)], previous="x")
def test_the_outcome_is_the_same_for_every_value(
    case: str, values: list[str], previous: str
) -> None:
    templates, expected = CASES[case]
    outcomes = {outcome(templates, value, previous) for value in values}
    assert outcomes == {expected}


@settings(max_examples=25, deadline=None)
@given(value=secrets, previous=shorter)
@example(value="a" * LENGTH, previous="")
def test_the_oracle_is_refused_for_every_value(value: str, previous: str) -> None:
    assert outcome({"k": ORACLE}, value, previous) == (
        'secretTemplate.data["k"]: ' + misuse("clientSecret")
    )


def test_without_secret_names_the_oracle_works() -> None:
    """The attack the check stops: one bit of the value per edit."""
    plain = frozenset[str]()
    assert outcome({"k": ORACLE}, "a" + "b" * (LENGTH - 1), secret_names=plain) != "ok"
    assert outcome({"k": ORACLE}, "b" * LENGTH, secret_names=plain) == "ok"


# Messages and the caller's contract ---------------------------------------------------------


def test_messages_are_not_scrubbed_of_secret_values() -> None:
    """A secret that happens to occur in a message would otherwise change it."""
    templates = {"k": "{{ clientSecret }}{{ 1 // 0 }}"}
    assert outcome(templates, "division" + "x" * (LENGTH - 8)) == (
        'secretTemplate.data["k"]: division by zero'
    )
    assert outcome(templates, "zero", placeholders=None) == (
        'secretTemplate.data["k"]: division by zero'
    )


def test_public_values_are_still_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    from credsmith.issuing import templates

    monkeypatch.setattr(templates, "_describe", lambda exc, names: f"oops {CLIENT_ID}")
    error = outcome({"k": "{{ clientSecret }}{{ 1 // 0 }}"}, "s" * LENGTH)
    assert error == f'secretTemplate.data["k"]: oops {templates.REDACTED}'


def test_a_real_render_that_fails_says_nothing_about_why() -> None:
    """Only with a placeholder shorter than the value (the caller's bug): the key is the
    first one and the problem is fixed, whichever key failed."""
    pad = MAX_TEMPLATE_OUTPUT_BYTES - LENGTH
    fits_the_placeholder = {"a": "{{ clientId }}", "z": padded(pad, "{{ clientSecret }}")}
    assert outcome(fits_the_placeholder, "s" * LENGTH) == "ok"
    short = {"clientSecret": placeholder(LENGTH - 1)}
    with pytest.raises(TemplateError) as info:
        render_templates(
            fits_the_placeholder,
            {**CONTEXT, "clientSecret": "s" * (LENGTH + 1)},
            SECRET_NAMES,
            short,
        )
    assert (info.value.key, info.value.problem) == ("a", RENDERING_FAILED)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_without_placeholders_the_value_length_decides() -> None:
    """Fine for tests; the operator passes placeholders of the longest possible value."""
    templates = {"k": padded(MAX_TEMPLATE_OUTPUT_BYTES - 3 * LENGTH, "{{ clientSecret|urlquote }}")}
    assert outcome(templates, "a" * LENGTH, placeholders=None) == "ok"
    assert outcome(templates, "a" * (LENGTH + 1), placeholders=None) == OUTPUT_LIMIT


def test_every_secret_in_the_context_needs_a_placeholder() -> None:
    with pytest.raises(ValueError, match="clientSecretPrevious"):
        outcome({"k": "{{ clientId }}"}, "s" * LENGTH, placeholders={"clientSecret": "x"})


def test_an_absent_secret_variable_is_undefined() -> None:
    """apiKey is a secret name but not in the context: undefined, reported as today."""
    assert outcome({"k": "{{ apiKey|b64encode }}"}, "s" * LENGTH) == (
        'secretTemplate.data["k"]: unknown variable "apiKey"'
    )


def test_real_values_are_rendered() -> None:
    previous = "p" * 10
    context = {"clientId": CLIENT_ID, "clientSecret": SECRET, "clientSecretPrevious": previous}
    rendered = render_templates(
        {"a": "{{ clientSecret }}", "b": "{{ clientSecretPrevious|upper }}"},
        context,
        SECRET_NAMES,
        PLACEHOLDERS,
    )
    assert rendered == {"a": SECRET, "b": previous.upper()}


TOKENS = st.sampled_from(
    ["{{", "}}", "{%", "%}", " ", "clientId", "clientSecret", "clientSecretPrevious", "|",
     "upper", "urlquote", "b64encode", "tojson", "length", "first", "replace", "default", "(",
     ")", "'a'", "'\"'", "~", "[", "]", "0", ":", "1", "if", "else", "elif", "endif", "set",
     "s", "=", "==", "in", "is", "string", "not", "and", "+", "*", "//", "99999", ","]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    source=st.lists(TOKENS, max_size=24).map("".join),
    values=st.lists(secrets, min_size=2, max_size=2),
)
def test_any_template_has_one_outcome_for_every_value(source: str, values: list[str]) -> None:
    """Whatever a template is (mostly nonsense here), its outcome is the placeholder's."""
    expected = outcome({"k": source}, placeholder(LENGTH), placeholder(LENGTH))
    for value in values:
        assert outcome({"k": source}, value, value[: LENGTH // 2]) == expected
