"""The codec of the state on a Secret: a round trip is exact, and any garbled annotation set
is either read faithfully or leads to a re-issue with a Warning: never a crash, never a
value changed or kept without a word."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credsmith.api.enums import CredentialType, HashAlgorithm, KeyAlgorithm, SecretAlphabet
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.secret_state import (
    PREFIX,
    STATE_VERSION,
    SecretState,
    VerifierHash,
    annotations_of,
    read_state,
)

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

moments = st.integers(0, 10**8).map(lambda s: T0 + timedelta(seconds=s))
fingerprints = st.text("0123456789abcdef", min_size=16, max_size=16).map(lambda h: f"sha256:{h}")
parameters = st.one_of(
    st.builds(
        GenerationParameters,
        type=st.sampled_from([t for t in CredentialType if t is not CredentialType.KEY_PAIR]),
        length=st.integers(32, 256),
        alphabet=st.sampled_from(SecretAlphabet),
        prefix=st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_]{1,32}", fullmatch=True)),
        checksum=st.booleans(),
    ),
    st.builds(
        GenerationParameters,
        type=st.just(CredentialType.KEY_PAIR),
        algorithm=st.sampled_from(KeyAlgorithm),
    ),
)
hashes = st.builds(
    VerifierHash.made_from,
    value=st.text(min_size=1, max_size=40),
    algorithm=st.sampled_from(HashAlgorithm),
    hash_=st.text(min_size=1, max_size=80),
)


@st.composite
def states(draw: st.DrawFn) -> SecretState:
    has_previous = draw(st.booleans())
    return SecretState(
        owner=draw(st.sampled_from(["ServiceAccountCredential/a", "ApiClient/b-c"])),
        revision=draw(st.integers(1, 2**31 - 1)),
        issued_at=draw(moments),
        rotated_at=draw(moments),
        parameters=draw(parameters),
        rotate_request=draw(st.one_of(st.none(), st.text(max_size=40))),
        client_uuid=draw(st.one_of(st.none(), st.uuids().map(str))),
        fingerprint=draw(fingerprints),
        previous_fingerprint=draw(fingerprints) if has_previous else None,
        previous_expires_at=draw(moments) if has_previous else None,
        hash=draw(st.one_of(st.none(), hashes)),
        previous_hash=draw(st.one_of(st.none(), hashes)) if has_previous else None,
        template_labels=tuple(draw(st.lists(st.text(min_size=1, max_size=10), max_size=3))),
        template_annotations=tuple(draw(st.lists(st.text(min_size=1, max_size=10), max_size=3))),
    )


@given(states())
@settings(max_examples=300)
def test_round_trip_is_exact(state: SecretState) -> None:
    notes = annotations_of(state)
    assert all(key.startswith(PREFIX) for key in notes)
    assert notes[STATE_VERSION] == "2"
    assert read_state(notes, T0).state == state


def test_parameters_added_later_with_a_default_change_nothing() -> None:
    """Explicit data, not a digest: a field a later version adds, unknown here, is ignored;
    a field absent from an older record reads as its default."""
    params = GenerationParameters(CredentialType.CLIENT_SECRET, 48, SecretAlphabet.HEX)
    with_more = params.to_wire()[:-1] + ',"futureField":"x"}'
    assert GenerationParameters.from_wire(with_more) == params
    assert "checksum" not in params.to_wire()  # False is the default: not written


# ---- garbled annotation sets, through the whole reconciler ------------------------------

garble = st.one_of(
    st.just(None),  # removed
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "99999999999", "2026-13-01T00:00:00Z", "{}", "null"]),
    # What str.isdigit() takes and int() refuses; the ends of datetime's range, which
    # arithmetic or a change of time zone takes past; nesting past the JSON reader's stack.
    st.sampled_from(["²", "①", "9" * 4301, "0001-01-01T00:00:00+14:00"]),
    st.sampled_from(["9999-12-31T23:59:59-14:00", "9999-12-31T23:59:59Z", "[" * 2000]),
)


@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "credsmith.io/state-version",
                "credsmith.io/revision",
                "credsmith.io/issued-at",
                "credsmith.io/rotated-at",
                "credsmith.io/parameters",
                "credsmith.io/fingerprint",
                "credsmith.io/previous-fingerprint",
                "credsmith.io/previous-expires-at",
                "credsmith.io/id",
                "credsmith.io/template-keys",
                "credsmith.io/secret-hash",
                "credsmith.io/secret-hash-binding",
                "credsmith.io/rotate-request",
                "credsmith.io/extra-secrets",
            ]
        ),
        garble,
        min_size=1,
        max_size=4,
    )
)
@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_garbled_state_is_read_faithfully_or_reissued_with_a_warning(world, changes) -> None:
    w = world(
        {"displayName": "R", "registry": {"name": "reg"}, "rotation": {"overlap": "1h"}},
        rules=__import__("credsmith.reconcile.kinds", fromlist=["API_CLIENT"]).API_CLIENT,
    )
    w.converge()
    w.request_rotation("r1")
    w.step()  # a previous value, a previous hash: every annotation in play
    value, revision = w.data()["client_secret"], w.status["revision"]
    before = copy.deepcopy(w.secret["metadata"]["annotations"])

    def change(secret: dict) -> None:
        notes = secret["metadata"]["annotations"]
        for key, garbage in changes.items():
            if garbage is None:
                notes.pop(key, None)
            else:
                notes[key] = garbage

    w.edit_secret(change)
    decision = w.step()
    warnings = [e for e in decision.events if e.type == "Warning"]
    if w.data()["client_secret"] == value:
        # Kept: the same revision, and the bookkeeping (restored, or garbled in a way that
        # still says the same) reads as what it said.
        assert w.status["revision"] == revision
        after = w.secret["metadata"]["annotations"]
        # Or the request it had acted on was erased: a rotation is due again, and waits
        # for the previous value's promise (Reconciling, RotationWaiting).
        waits = (w.condition("Reconciling") or {}).get("reason") == "RotationWaiting"
        erased = waits and "credsmith.io/rotate-request" in changes
        assert read_state(after, T0).state == read_state(before, T0).state or warnings or erased
    else:
        # Replaced, and said so: re-issued (Warning), or rotated because the rotation
        # request it had acted on was erased (a Normal Event naming the request).
        assert w.status["revision"] == revision + 1
        reasons = {e.reason for e in decision.events}
        assert reasons & {"Reissued", "Rotated"}
        assert reasons <= {"Reissued", "Rotated", "Untrusted"}  # a forged hash, as well
        assert "Reissued" in reasons or "credsmith.io/rotate-request" in changes
    w.converge()
