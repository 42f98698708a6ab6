"""What is checked before anything read from a credential's Secret is believed.

A Secret can be edited by anyone with write access to Secrets of the namespace, who may not
be allowed to read it. So a value must have the shape its recorded parameters give, match
its recorded fingerprint, and agree with what status (written by us, on another object)
says of the same revision; a verifier hash must be bound to the value it claims to verify.
A credential that fails is reported as Untrusted with what was wrong (never the value), and
the caller re-issues it.

The belief rule (design.md, behaviour 13). A state is believed when its MAC
(`credsmith.io/state-mac`, secret_state.py) verifies under the operator's key for this
resource's kind, namespace, name and Secret; or, without a valid MAC (the key was lost and
made anew, or the Secret was written before the MAC existed: 0.1.0, or version 2 without
it), when every fingerprint, the revision, the client ID and id, the timestamps, the previous
value's expiry and the rotation request agree with status, which only the operator writes.
A Secret that is neither, found while status records nothing, is someone else's posing as
ours (`posing_as_ours`): a SecretConflict, never adopted. Without a valid MAC nothing of the
state is believed for what comes next either (not its revision: `Untrusted.state` is None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from credsmith.api.common import CredentialSpec
from credsmith.api.enums import CredentialType
from credsmith.api.status import format_timestamp, parse_timestamp
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.hashing import verify_secret
from credsmith.issuing.keypair import key_algorithm_of, key_pair_from_private_pem
from credsmith.issuing.random_secret import shape_problem
from credsmith.reconcile.consumers import bounded_expiry
from credsmith.reconcile.frozen import replace
from credsmith.reconcile.layout import LAYOUTS, PUBLIC_KEYS, public_parts
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.pass_state import Pass, untrusted
from credsmith.reconcile.secret_state import (
    ISSUED_AT,
    REVISION,
    ROTATED_AT,
    STATE_MAC,
    SecretState,
    StateScope,
    VerifierHash,
    is_sealed,
    read_state,
)
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from credsmith.reconcile.state_mac import StateKey
from credsmith_verify.hashes import CostClass, cost_class

# The costs of the hashes credsmith 0.1.0 wrote, the only hashes without a binding there are.
# Any other unbound string is not verified: one planted with a verifier's largest costs
# (PBKDF2 10^7 iterations, Argon2id 1 GiB x 64 passes) would cost the operator seconds to
# minutes of CPU and a GiB of memory per string, the registry's on its event loop.
_VERSION_1_COSTS: frozenset[CostClass] = frozenset(
    {
        ("sha256", 0, 0, 0, 32),
        ("pbkdf2-sha256", 600_000, 0, 0, 32),
        ("argon2id", 2, 19_456, 1, 32),
    }
)


@dataclass(frozen=True)
class Credential:
    """The credential in our Secret, checked."""

    client_id: str
    value: str
    # Parameters resolved (None: version 1 recorded others than the spec's, so it rotates).
    state: SecretState
    previous: str | None
    # Things found wrong that cost no re-issue (e.g. a previous value that was edited and is
    # dropped): each becomes a Warning.
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Untrusted:
    """The Secret no longer holds a credential we can vouch for: issue a new one."""

    problem: str
    lost: bool = False  # deleted keys, rather than a value that fails its checks
    # The state recorded, if it could be read and its MAC verifies (a revision planted by
    # someone else must not be what the next one follows).
    state: SecretState | None = None
    # The state failed the belief rule (no valid MAC, and status disagrees): besides the
    # re-issue, a Warning Untrusted names what failed.
    unauthenticated: bool = False


def scope_of(resource: ResourceSnapshot, secret_name: str) -> StateScope:
    return StateScope(resource.kind, resource.namespace, resource.name, secret_name)


def posing_as_ours(
    secret: SecretSnapshot, status: Mapping[str, Any], state_key: StateKey, scope: StateScope
) -> bool:
    """Whether a Secret labelled and annotated as ours was made by no operator holding the
    key, while status records no credential: created before its owner (or between a delete
    and a re-create) by someone else. It is a conflict, as a foreign Secret is."""
    return not _has_record(status) and not is_sealed(secret.annotations, state_key, scope)


def read_and_check(p: Pass) -> Pass:
    """The stage: the credential in our Secret, checked (Untrusted or None: it is issued)."""
    valid = p.valid
    found = read_checked(
        p.secret, valid.type, valid.parameters, p.resource, p.spec, p.now, p.state_key
    )
    warnings = found.warnings if isinstance(found, Credential) else ()
    return replace(p, found=found, events=p.with_events(*untrusted(valid.secret_name, warnings)))


def read_checked(
    secret: SecretSnapshot | None,
    type_: CredentialType,
    parameters: GenerationParameters,
    resource: ResourceSnapshot,
    spec: CredentialSpec,
    now: datetime,
    state_key: StateKey,
) -> Credential | Untrusted | None:
    """The credential in the Secret, checked (its state authenticated by the MAC, or vouched
    for by status); its previous value's expiry bounded too (the registry and JWK Set publish
    the previous value as long as the Secret says)."""
    if secret is None:
        return None
    found = read_credential(
        secret,
        type_,
        parameters,
        resource.status,
        now,
        state_key=state_key,
        scope=scope_of(resource, secret.name),
    )
    if not isinstance(found, Credential) or found.previous is None:
        return found
    state, problem = bounded_expiry(found.state, spec.rotation.overlap_duration)
    if problem is None:
        return found
    return replace(found, state=state, warnings=(*found.warnings, problem))


def read_credential(
    secret: SecretSnapshot,
    type_: CredentialType,
    expected: GenerationParameters,
    status: Mapping[str, Any],
    now: datetime,
    *,
    state_key: StateKey,
    scope: StateScope,
) -> Credential | Untrusted:
    """Read and check the credential in `secret`, whose owner is already known to be us."""
    layout = LAYOUTS[type_]
    client_id, value = secret.text(layout.client_id_key), secret.text(layout.value_key)
    read = read_state(secret.annotations, now)
    authentic = read.state is not None and is_sealed(secret.annotations, state_key, scope)
    if not client_id or not value:
        lost = f"it lost its {layout.value_key} or {layout.client_id_key} key"
        return Untrusted(lost, lost=True, state=read.state if authentic else None)
    if read.state is None:
        return Untrusted(read.problem or "its bookkeeping is unreadable")
    state = _resolved(read.state, expected, value, status)
    problem = _value_problem(secret, type_, value, state.parameters) or _fingerprint_problem(
        state, value, layout.value_key
    )
    if problem is None and authentic:
        problem = _status_problem(state, client_id, value, status)
    elif problem is None and (problem := _anchor_problem(state, client_id, value, status, now)):
        return Untrusted(problem, unauthenticated=True)
    if problem is not None:
        return Untrusted(problem, state=state if authentic else None)
    previous, warnings = _previous(secret, type_, state)
    if previous is None and state.previous_expires_at is not None:
        state = replace(
            state, previous_fingerprint=None, previous_expires_at=None, previous_hash=None
        )
    return Credential(client_id, value, state, previous, warnings)


def hash_is_trusted(made: VerifierHash, value: str, algorithm: str) -> bool:
    """Whether `made` is a hash of `value` with `algorithm`: by its binding, or for one
    written by version 1 of the state (no binding) by verifying it, once per process."""
    if made.algorithm != algorithm:
        return False
    if made.binding is not None:
        return made.is_bound_to(value)
    return cost_class(made.hash) in _VERSION_1_COSTS and _verifies(value, made.hash)


@lru_cache(maxsize=4096)
def _verifies(value: str, made: str) -> bool:
    """Cached: a slow hash (PBKDF2, Argon2id) is verified once per process, not per pass."""
    return verify_secret(value, made)


def _resolved(
    state: SecretState, expected: GenerationParameters, value: str, status: Mapping[str, Any]
) -> SecretState:
    """Fill in what version 1 left implicit: parameters from the digest, a removed
    revision from status when status describes this very value."""
    if state.parameters is None and state.legacy_digest in ("", expected.legacy_digest()):
        state = replace(state, parameters=expected)
    if state.assumed and status.get("fingerprint") == fingerprint(value):
        revision = status.get("revision")
        if REVISION in state.assumed and isinstance(revision, int) and revision > 0:
            state = replace(state, revision=revision)
        issued, rotated = (
            _status_time(status.get("issuedAt")),
            _status_time(status.get("rotatedAt")),
        )
        if ISSUED_AT in state.assumed and issued is not None:
            state = replace(state, issued_at=issued)
        if ROTATED_AT in state.assumed and rotated is not None:
            state = replace(state, rotated_at=rotated)
    return state


def _status_time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _value_problem(
    secret: SecretSnapshot,
    type_: CredentialType,
    value: str,
    parameters: GenerationParameters | None,
) -> str | None:
    key = LAYOUTS[type_].value_key
    if type_ is CredentialType.KEY_PAIR:
        return _key_pair_problem(secret, value, parameters)
    if parameters is None:
        return None  # recorded with other parameters: it rotates anyway
    if parameters.type is not type_ or parameters.length is None or parameters.alphabet is None:
        return f"its recorded parameters are not those of a {type_.value} credential"
    problem = shape_problem(
        value, parameters.length, parameters.alphabet, parameters.prefix, parameters.checksum
    )
    return None if problem is None else f"{key} does not have the recorded shape: {problem}"


def _key_pair_problem(
    secret: SecretSnapshot, value: str, parameters: GenerationParameters | None
) -> str | None:
    try:
        pair = key_pair_from_private_pem(value)
    except ValueError:
        return "private_key.pem is not a private key credsmith can read"
    if pair.private_key_pem != value:
        return "private_key.pem is not in the form credsmith writes (PKCS#8 PEM)"
    if parameters is not None and parameters.algorithm is not key_algorithm_of(value):
        return f"private_key.pem is not a {parameters.algorithm} key as recorded"
    derived = public_parts(pair)
    for key in PUBLIC_KEYS:
        # Absent: restored from the private key. Present and different: someone put
        # another key beside ours.
        if key in secret.data and secret.text(key) != derived[key]:
            return f"{key} does not match the private key"
    return None


def _fingerprint_problem(state: SecretState, value: str, key: str) -> str | None:
    if state.fingerprint is not None and state.fingerprint != fingerprint(value):
        return f"{key} does not match its recorded fingerprint"
    return None


def _has_record(status: Mapping[str, Any]) -> bool:
    revision, known = status.get("revision"), status.get("fingerprint")
    return isinstance(revision, int) and revision >= 1 and isinstance(known, str)


def _anchor_problem(
    state: SecretState, client_id: str, value: str, status: Mapping[str, Any], now: datetime
) -> str | None:
    """For a state without a valid MAC: what of it disagrees with status (the second anchor),
    named, never the values. Everything status records of the credential must agree; the one
    thing status cannot vouch for is a previous value's own fingerprint (status holds only
    its expiry, which bounds it: see docs/threat-model.md)."""
    unsealed = f"its state has no valid {STATE_MAC}"
    if not _has_record(status):
        return f"{unsealed} and status records no credential to check it against"
    extras = {extra.key: extra.fingerprint for extra in state.extras}
    listed = status.get("extraSecrets") or []
    recorded = {e.get("key"): e.get("fingerprint") for e in listed if isinstance(e, Mapping)}
    checks = (
        ("revision", state.revision == status.get("revision")),
        ("fingerprint", status.get("fingerprint") == fingerprint(value)),
        ("client ID", status.get("clientId") == client_id),
        ("id", state.client_uuid in (None, status.get("id"))),
        ("issued-at", status.get("issuedAt") == format_timestamp(state.issued_at)),
        ("rotated-at", status.get("rotatedAt") == format_timestamp(state.rotated_at)),
        ("previous-expires-at", _same_expiry(state, status.get("previousExpiresAt"), now)),
        ("rotate-request", state.rotate_request == status.get("lastRotateRequest")),
        ("extra-secrets", extras == recorded),
    )
    differ = [name for name, agrees in checks if not agrees]
    if not differ:
        return None
    return f"{unsealed} and its {', '.join(differ)} disagree with status"


def _same_expiry(state: SecretState, promised: Any, now: datetime) -> bool:
    if state.previous_expires_at is None:
        # Retired: status may still show the expiry until its next write.
        expired = _status_time(promised)
        return promised is None or (expired is not None and expired <= now)
    return bool(promised == format_timestamp(state.previous_expires_at))


def _status_problem(
    state: SecretState, client_id: str, value: str, status: Mapping[str, Any]
) -> str | None:
    """Status is written by us on the resource, which Secret editors may not be able to
    change: it must agree with the Secret about the revision it describes. The Secret may be
    one revision ahead (a crash between writing the Secret and writing status)."""
    revision, known = status.get("revision"), status.get("fingerprint")
    if not isinstance(revision, int) or revision < 1 or not isinstance(known, str):
        return None  # no status yet (or lost): nothing to compare with
    if state.revision == revision:
        if known != fingerprint(value):
            return f"the value differs from the one status records for revision {revision}"
        if status.get("clientId") not in (None, client_id):
            return f"the client ID differs from the one status records for revision {revision}"
        return None
    if state.revision == revision + 1:
        return None
    return f"its revision {state.revision} does not follow revision {revision} in status"


def _previous(
    secret: SecretSnapshot, type_: CredentialType, state: SecretState
) -> tuple[str | None, tuple[str, ...]]:
    layout = LAYOUTS[type_]
    key = layout.previous_key(layout.value_key)
    if state.previous_expires_at is None:
        if key in secret.data:  # its expiry was removed: it cannot stay valid
            return None, (f"{key} had no recorded expiry and was removed",)
        return None, ()
    previous = secret.text(key)
    if previous is None:
        return None, ()
    if state.previous_fingerprint is not None and state.previous_fingerprint != fingerprint(
        previous
    ):
        return None, (f"{key} did not match its recorded fingerprint and was removed",)
    if type_ is CredentialType.KEY_PAIR:
        try:
            key_pair_from_private_pem(previous)
        except ValueError:
            return None, (f"{key} was not a private key and was removed",)
    return previous, ()
