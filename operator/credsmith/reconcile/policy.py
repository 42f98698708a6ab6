"""When a credential is issued, rotated, re-issued or loses its previous value. Pure.

Works on `Credential`s (trust.py): what the Secret holds once checked, and what it must hold
after this pass. A value changes only here: by a first issue, a re-issue of a lost or
untrusted value, or a rotation (period, request, parameters, client ID).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from credsmith.api.common import ROTATE_ANNOTATION, CredentialSpec
from credsmith.api.enums import CredentialType, HashAlgorithm, KeyAlgorithm
from credsmith.api.extra_secrets import ExtraSecret
from credsmith.api.status import Reason, parse_timestamp
from credsmith.issuing.client_id import new_client_id
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.hashing import hash_secret
from credsmith.issuing.htpasswd import htpasswd_hash
from credsmith.issuing.keypair import new_key_pair
from credsmith.issuing.random_secret import new_secret
from credsmith.reconcile.consumers import rotation_spread
from credsmith.reconcile.frozen import replace
from credsmith.reconcile.layout import LAYOUTS
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.pass_state import Pass, untrusted
from credsmith.reconcile.promises import pending_or, rotation_wait
from credsmith.reconcile.secret_state import BCRYPT, SecretState, VerifierHash
from credsmith.reconcile.snapshots import Event, SecretSnapshot
from credsmith.reconcile.trust import Credential, Untrusted, hash_is_trusted

# A rotation request annotation is remembered verbatim up to this size, else by digest.
MAX_REMEMBERED_REQUEST = 256
REQUESTED = f"requested with the {ROTATE_ANNOTATION} annotation"


@dataclass(frozen=True)
class Generators:
    """Sources of new values; tests swap them for deterministic ones."""

    client_id: Callable[[CredentialSpec], str]
    value: Callable[[CredentialSpec, CredentialType, KeyAlgorithm | None], str]
    client_uuid: Callable[[], str]
    extra: Callable[[ExtraSecret], str] = lambda extra: new_secret(
        extra.length, extra.alphabet, extra.prefix
    )


def _new_value(spec: CredentialSpec, type_: CredentialType, algorithm: KeyAlgorithm | None) -> str:
    if type_ is CredentialType.KEY_PAIR:
        return new_key_pair(algorithm or KeyAlgorithm.ED25519).private_key_pem
    return new_secret(
        spec.secret.length, spec.secret.alphabet, spec.secret.prefix, spec.secret.checksum
    )


DEFAULT_GENERATORS = Generators(
    client_id=lambda spec: (
        spec.client_id.value or new_client_id(spec.client_id.format, spec.client_id.prefix)
    ),
    value=_new_value,
    client_uuid=lambda: str(uuid.uuid4()),
)


@dataclass(frozen=True)
class Plan:
    """What one pass decided to do with the value, for the conditions and the Events."""

    reason: Reason | None  # ISSUED, REISSUED or ROTATED; None: the value stays
    why: str = ""  # for a rotation or a re-issue: the cause, never the value


def decide_value(p: Pass) -> Pass:
    """The stage: the value this pass leaves in the Secret: the one found, a rotation of it,
    or a new one (first issue, or a re-issue of a value lost or not believed)."""
    spec, valid = p.spec, p.valid
    request = remembered_request(p.resource.annotations.get(ROTATE_ANNOTATION))
    period = spec.rotation.period_duration
    # Scheduled rotations happen a little after their period, spread by UID.
    spread = rotation_spread(p.resource.uid, period) if period else timedelta(0)
    found = p.found
    if not isinstance(found, Credential):
        credential, plan = issue(
            p.owner,
            spec,
            valid.parameters,
            found,
            p.secret,
            p.resource.status,
            p.now,
            request,
            p.rules.has_client_uuid,
            p.generate,
        )
        events = [issue_event(found, valid.secret_name, credential.state.revision)]
        if found is not None and found.unauthenticated:  # what failed the belief rule
            events += untrusted(valid.secret_name, (found.problem,))
        return replace(
            p,
            request=request,
            spread=spread,
            credential_=credential,
            change=plan.reason,
            events=p.with_events(*events),
        )
    credential = found
    request = pending_or(request, credential.state, p.resource.status)
    if p.rules.has_client_uuid and credential.state.client_uuid is None:
        uuid_ = p.resource.status.get("id") or p.generate.client_uuid()
        credential = replace(credential, state=replace(credential.state, client_uuid=uuid_))
    p = replace(p, request=request, spread=spread, credential_=credential)
    if why := rotation_due(credential, spec, valid.parameters, request, p.now, spread):
        if waiting := rotation_wait(p, credential, why, requested=why == REQUESTED):
            return replace(p, waiting=waiting)
        new_value = p.generate.value(spec, valid.type, valid.parameters.algorithm)
        credential = rotate(credential, new_value, spec, valid.parameters, p.now, request)
        revision = credential.state.revision
        event = Event("Normal", "Rotated", f"Rotated to revision {revision}: {why}")
        return replace(
            p, credential_=credential, change=Reason.ROTATED, events=p.with_events(event)
        )
    return p


def issue_event(found: Untrusted | None, secret_name: str, revision: int) -> Event:
    if revision == 1:
        return Event("Normal", "Issued", f"Issued revision 1 into Secret {secret_name}")
    if found is None or found.lost:
        cause = "was deleted or lost its keys"
    else:
        cause = f"could not be trusted ({found.problem})"
    return Event(
        "Warning",
        "Reissued",
        f"Secret {secret_name} {cause}: issued a new credential (revision {revision})",
    )


def issue(
    owner: str,
    spec: CredentialSpec,
    parameters: GenerationParameters,
    found: Untrusted | None,
    secret: SecretSnapshot | None,
    status: Mapping[str, Any],
    now: datetime,
    request: str | None,
    with_client_uuid: bool,
    generate: Generators,
) -> tuple[Credential, Plan]:
    """A new credential: the first, or a re-issue after the Secret, its keys or its trust
    were lost. The client ID survives a re-issue: it names the client; only the secret was
    lost (status, written by us, is believed over the Secret for it)."""
    recorded = found.state if found is not None else None
    known_revision = max(_int(status.get("revision")), recorded.revision if recorded else 0)
    layout = LAYOUTS[parameters.type]
    client_id = (
        spec.client_id.value
        or _text(status.get("clientId"))
        or (secret.text(layout.client_id_key) if secret is not None else None)
        or generate.client_id(spec)
    )
    client_uuid = None
    if with_client_uuid:
        client_uuid = (
            _text(status.get("id"))
            or (recorded.client_uuid if recorded else None)
            or generate.client_uuid()
        )
    value = generate.value(spec, parameters.type, parameters.algorithm)
    issued_at = _time(status.get("issuedAt")) or (recorded.issued_at if recorded else now)
    state = SecretState(
        owner=owner,
        revision=known_revision + 1,
        issued_at=issued_at,
        rotated_at=now,
        parameters=parameters,
        rotate_request=request,
        client_uuid=client_uuid,
        fingerprint=fingerprint(value),
    )
    credential = Credential(client_id, value, state, previous=None)
    if known_revision == 0:
        return credential, Plan(Reason.ISSUED)
    return credential, Plan(Reason.REISSUED, found.problem if found else "")


def rotation_due(
    credential: Credential,
    spec: CredentialSpec,
    parameters: GenerationParameters,
    request: str | None,
    now: datetime,
    spread: timedelta = timedelta(0),
) -> str | None:
    """Why the credential must rotate now, or None. `spread`: a delay after the period
    (consumers.rotation_spread)."""
    state = credential.state
    if spec.client_id.value and spec.client_id.value != credential.client_id:
        # Adopted from an orphaned Secret of another client ID: the secret goes with it.
        return "clientId.value differs from the client ID in the Secret"
    if state.parameters != parameters:
        return "generation parameters changed"
    if request is not None and request != state.rotate_request:
        return REQUESTED
    period = spec.rotation.period_duration
    if period is not None and state.rotated_at + period + spread <= now:
        return f"rotation.period {spec.rotation.period} elapsed"
    return None


def rotate(
    credential: Credential,
    new_value: str,
    spec: CredentialSpec,
    parameters: GenerationParameters,
    now: datetime,
    request: str | None,
) -> Credential:
    overlap = spec.rotation.overlap_duration
    keep = overlap is not None and overlap > timedelta(0)
    state = replace(
        credential.state,
        revision=credential.state.revision + 1,
        rotated_at=now,
        parameters=parameters,
        rotate_request=request,
        fingerprint=fingerprint(new_value),
        previous_fingerprint=credential.state.fingerprint if keep else None,
        previous_expires_at=now + overlap if keep and overlap else None,
        previous_hash=credential.state.hash if keep else None,
        hash=None,
    )
    return Credential(
        client_id=spec.client_id.value or credential.client_id,
        value=new_value,
        state=state,
        previous=credential.value if keep else None,
    )


def expire_previous(credential: Credential, now: datetime) -> Credential:
    expires = credential.state.previous_expires_at
    if credential.previous is None or (expires is not None and expires > now):
        return credential
    state = replace(
        credential.state, previous_fingerprint=None, previous_expires_at=None, previous_hash=None
    )
    return replace(credential, previous=None, state=state)


def with_fingerprints(credential: Credential) -> Credential:
    """Fingerprints recorded for the values held (version 1 of the state had none)."""
    previous = credential.previous
    return replace(
        credential,
        state=replace(
            credential.state,
            fingerprint=fingerprint(credential.value),
            previous_fingerprint=fingerprint(previous) if previous is not None else None,
        ),
    )


def hash_verifiers(p: Pass) -> Pass:
    """The stage: the registry's and htpasswd file's hashes of the values held."""
    credential, warnings = with_verifier_hashes(
        p.credential,
        p.rules.verifier_hash(p.spec),
        p.checked,
        p.rules.htpasswd(p.spec) or p.registry_htpasswd,
    )
    events = untrusted(p.valid.secret_name, warnings)
    return replace(p, credential_=credential, events=p.with_events(*events))


def with_verifier_hashes(
    credential: Credential,
    algorithm: HashAlgorithm | None,
    found: Credential | None,
    htpasswd: bool = False,
) -> tuple[Credential, tuple[str, ...]]:
    """Hashes of the current and previous value for the registry. A hash found on the Secret
    is kept only if it is bound to (or, from version 1, verifies) its value; each is made once
    per value (Argon2id is costly, and a new salt would change the registry every pass)."""
    credential, warnings = _with_htpasswd(credential, found, htpasswd)
    if algorithm is None:
        cleared = replace(credential.state, hash=None, previous_hash=None)
        return replace(credential, state=cleared), warnings
    trusted: dict[str, VerifierHash] = {}
    if found is not None:
        for value, made in (
            (found.value, found.state.hash),
            (found.previous, found.state.previous_hash),
        ):
            if value is None or made is None:
                continue
            if hash_is_trusted(made, value, algorithm):
                trusted[value] = VerifierHash.made_from(value, algorithm, made.hash)
            elif made.algorithm == algorithm:
                warnings += ("a verifier hash did not match its value and was made anew",)

    def hashed(value: str) -> VerifierHash:
        return trusted.get(value) or VerifierHash.made_from(
            value, algorithm, hash_secret(value, algorithm)
        )

    previous = credential.previous
    state = replace(
        credential.state,
        hash=hashed(credential.value),
        previous_hash=hashed(previous) if previous is not None else None,
    )
    return replace(credential, state=state), warnings


def _with_htpasswd(
    credential: Credential, found: Credential | None, wanted: bool
) -> tuple[Credential, tuple[str, ...]]:
    """The bcrypt hash of the current value for an htpasswd registry: made once per value (a
    new salt each time would change the registry, and roll every gateway, on every pass)."""
    if not wanted:
        return replace(credential, state=replace(credential.state, htpasswd=None)), ()
    made = found.state.htpasswd if found is not None else None
    if made is not None and found is not None and found.value == credential.value:
        if hash_is_trusted(made, credential.value, BCRYPT):
            return replace(credential, state=replace(credential.state, htpasswd=made)), ()
        warning: tuple[str, ...] = ("an htpasswd hash did not match its value and was made anew",)
    else:
        warning = ()
    fresh = VerifierHash.made_from(credential.value, BCRYPT, htpasswd_hash(credential.value))
    return replace(credential, state=replace(credential.state, htpasswd=fresh)), warning


def remembered_request(value: str | None) -> str | None:
    if not value:
        return None
    return value if len(value) <= MAX_REMEMBERED_REQUEST else fingerprint(value)


def next_rotation(
    credential: Credential, spec: CredentialSpec, spread: timedelta = timedelta(0)
) -> datetime | None:
    period = spec.rotation.period_duration
    return credential.state.rotated_at + period + spread if period is not None else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
