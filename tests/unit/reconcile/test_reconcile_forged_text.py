"""Text read back that no writer of ours would write, at the edges Python's parsers leave
open: digits that str.isdigit() takes and int() refuses, instants at datetime's ends that
overflow in a change of time zone, JSON nested past the reader's stack. Each is malformed
(a re-issue with a Warning, as for any other garbled state), never another exception in the
pass. The property test in test_reconcile_secret_state.py draws these among others; here
each is checked every run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from credsmith.api.status import parse_timestamp
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.secret_state import annotations_of, read_state

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DEEP = "[" * 2000 + "]" * 2000
SPEC = {"serviceAccount": "a", "extraSecrets": [{"key": "cookie", "length": 32}]}


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "3000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2026-12-07 10:00:00",
    ],
)
def test_an_instant_outside_the_years_we_write_is_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not an"):
        parse_timestamp(text)


def test_an_instant_is_read_in_utc() -> None:
    moment = parse_timestamp("2026-12-07T12:00:00+02:00")
    assert moment == datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
    assert moment.utcoffset() is not None
    assert moment.tzinfo is UTC


def a_state(world: Any) -> dict[str, str]:
    w = world(SPEC)
    w.converge()
    notes: dict[str, str] = w.secret["metadata"]["annotations"]
    return dict(notes)


@pytest.mark.parametrize("revision", ["²", "①", "9" * 4301, "0", "-1"])
def test_a_revision_that_is_not_ascii_digits_is_malformed(world: Any, revision: str) -> None:
    notes = {**a_state(world), "credsmith.io/revision": revision}
    read = read_state(notes, T0)
    assert read.state is None
    assert read.problem == "annotation credsmith.io/revision is missing or malformed"


@pytest.mark.parametrize("revision", ["²", "9" * 4301])
def test_a_version_1_revision_that_is_not_ascii_digits_is_assumed(revision: str) -> None:
    notes = {
        "credsmith.io/owner": "ServiceAccountCredential/billing",
        "credsmith.io/revision": revision,
        "credsmith.io/rotated-at": "2026-11-30T12:00:00Z",
    }
    read = read_state(notes, T0)
    assert read.state is not None
    assert read.state.revision == 1
    assert "credsmith.io/revision" in read.state.assumed


@pytest.mark.parametrize(
    "key", ["credsmith.io/extra-secrets", "credsmith.io/template-keys", "credsmith.io/parameters"]
)
def test_json_nested_past_the_stack_is_malformed(world: Any, key: str) -> None:
    notes = {**a_state(world), key: DEEP}
    read = read_state(notes, T0)
    assert read.state is None
    assert read.problem == f"annotation {key} is missing or malformed"


@pytest.mark.parametrize(
    "keys",
    ['{"labels": 5}', '{"annotations": null}', '{"labels": true}', '{"labels": "ab"}', "[1]"],
)
def test_template_keys_not_of_our_shape_are_malformed(world: Any, keys: str) -> None:
    notes = {**a_state(world), "credsmith.io/template-keys": keys}
    read = read_state(notes, T0)
    assert read.state is None
    assert read.problem == "annotation credsmith.io/template-keys is missing or malformed"


def test_parameters_nested_past_the_stack_are_not_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        GenerationParameters.from_wire(DEEP)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("credsmith.io/issued-at", "9999-12-31T10:00:00-14:00"),
        ("credsmith.io/rotated-at", "0001-01-01T00:00:00+14:00"),
        ("credsmith.io/revision", "²"),
        ("credsmith.io/extra-secrets", DEEP),
        ("credsmith.io/template-keys", '{"labels": 5}'),
    ],
)
def test_a_forged_annotation_is_reissued_with_a_warning(world: Any, key: str, text: str) -> None:
    w = world(SPEC)
    w.converge()
    value, revision = w.data()["client_secret"], w.status["revision"]

    def forge(secret: dict[str, Any]) -> None:
        secret["metadata"]["annotations"][key] = text

    w.edit_secret(forge)
    decision = w.step()
    assert w.data()["client_secret"] != value
    assert w.status["revision"] == revision + 1
    assert "Warning" in {event.type for event in decision.events}
    reissued = read_state(w.secret["metadata"]["annotations"], T0).state
    assert reissued is not None
    assert annotations_of(reissued)
