"""spec.extraSecrets: extra random values beside the credential, checked and settled. Pure.

Each is generated on first issue and kept; all of them rotate with the credential (the same
revision; during an overlap each previous value stays under `<key>_previous` and retires
with the credential's). Adding a key issues just that value, removing one removes it,
changing one's settings regenerates just it. A value that fails its recorded shape or
fingerprint is replaced, with a Warning naming the key (never the value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from credsmith.api.extra_secrets import ExtraSecret, previous_key
from credsmith.api.status import Reason
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.random_secret import shape_problem
from credsmith.reconcile.frozen import replace
from credsmith.reconcile.pass_state import Pass, untrusted
from credsmith.reconcile.secret_state import ExtraState, SecretState
from credsmith.reconcile.snapshots import Event, SecretSnapshot


@dataclass(frozen=True)
class Extras:
    """The extra values a Secret holds (or is to hold), by key."""

    current: Mapping[str, str] = field(default_factory=dict, repr=False)
    previous: Mapping[str, str] = field(default_factory=dict, repr=False)
    # Keys whose value failed its checks (-> what was wrong): replaced on this pass.
    untrusted: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def settle(p: Pass) -> Pass:
    """The stage: the extra values found (if the credential was believed) settled against
    spec.extraSecrets and the change this pass makes to the credential."""
    checked = p.checked
    found = read_extras(p.secret, checked.state) if checked and p.secret else Extras()
    extras, events = settle_extras(
        p.spec.extra_secrets,
        found,
        checked.state.extras if checked else (),
        p.change,
        p.credential.previous is not None,
        p.generate.extra,
    )
    warnings = untrusted(p.valid.secret_name, found.warnings)
    return replace(p, extras_=extras, events=p.with_events(*warnings, *events))


def read_extras(secret: SecretSnapshot, state: SecretState) -> Extras:
    current: dict[str, str] = {}
    previous: dict[str, str] = {}
    untrusted: dict[str, str] = {}
    warnings: list[str] = []
    for extra in state.extras:
        value = secret.text(extra.key)
        if value is None:
            untrusted[extra.key] = "was removed"
            continue
        if shape := shape_problem(value, extra.length, extra.alphabet, extra.prefix):
            untrusted[extra.key] = f"does not have the recorded shape: {shape}"
            continue
        if fingerprint(value) != extra.fingerprint:
            untrusted[extra.key] = "does not match its recorded fingerprint"
            continue
        current[extra.key] = value
        old = secret.text(previous_key(extra.key))
        if state.previous_expires_at is None or extra.previous_fingerprint is None or old is None:
            continue
        if fingerprint(old) == extra.previous_fingerprint:
            previous[extra.key] = old
        else:
            warnings.append(
                f"{previous_key(extra.key)} did not match its recorded fingerprint and was removed"
            )
    return Extras(current, previous, untrusted, tuple(warnings))


def settle_extras(
    wanted: Sequence[ExtraSecret],
    found: Extras,
    recorded: Sequence[ExtraState],
    change: Reason | None,
    keep_previous: bool,
    make: Callable[[ExtraSecret], str],
) -> tuple[Extras, list[Event]]:
    """The extras to hold after this pass, and the Events saying what changed.

    `change`: ISSUED/REISSUED (a new credential: all new), ROTATED (all new, the current
    ones kept as previous when `keep_previous`), or None (only what must change)."""
    by_key = {extra.key: extra for extra in recorded}
    current: dict[str, str] = {}
    previous: dict[str, str] = {}
    events: list[Event] = []
    for extra in wanted:
        key = extra.key
        if change is not None:
            current[key] = make(extra)
            if change is Reason.ROTATED and keep_previous and key in found.current:
                previous[key] = found.current[key]
            continue
        kept = found.current.get(key)
        state = by_key.get(key)
        if kept is not None and state is not None and _same_settings(extra, state):
            current[key] = kept
            if key in found.previous:
                previous[key] = found.previous[key]
            continue
        current[key] = make(extra)
        if key in found.untrusted:
            events.append(
                Event(
                    "Warning", "Reissued", f"Extra secret {key} {found.untrusted[key]}: issued anew"
                )
            )
        elif state is None:
            events.append(Event("Normal", "ExtraSecretIssued", f"Issued extra secret {key}"))
        else:
            events.append(
                Event(
                    "Normal",
                    "ExtraSecretRegenerated",
                    f"Regenerated extra secret {key}: its settings changed",
                )
            )
    return Extras(current, previous), events


def extra_states(wanted: Sequence[ExtraSecret], extras: Extras) -> tuple[ExtraState, ...]:
    """What to record of the extras held."""
    states = []
    for extra in sorted(wanted, key=lambda e: e.key):
        value = extras.current[extra.key]
        old = extras.previous.get(extra.key)
        states.append(
            ExtraState(
                key=extra.key,
                length=extra.length,
                alphabet=extra.alphabet,
                prefix=extra.prefix,
                fingerprint=fingerprint(value),
                previous_fingerprint=fingerprint(old) if old is not None else None,
            )
        )
    return tuple(states)


def extras_data(extras: Extras) -> dict[str, str]:
    data = dict(extras.current)
    data.update({previous_key(key): value for key, value in extras.previous.items()})
    return data


def extras_status(states: Sequence[ExtraState]) -> list[dict[str, str]]:
    return [{"key": s.key, "fingerprint": s.fingerprint} for s in states]


def _same_settings(wanted: ExtraSecret, recorded: ExtraState) -> bool:
    return (wanted.length, wanted.alphabet, wanted.prefix) == (
        recorded.length,
        recorded.alphabet,
        recorded.prefix,
    )


def expired(extras: Extras) -> Extras:
    return Extras(extras.current, {}, extras.untrusted, extras.warnings)
