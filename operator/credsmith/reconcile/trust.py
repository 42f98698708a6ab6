"""What is checked before anything read from a credential's Secret is believed.

A Secret can be edited by anyone with write access to Secrets of the namespace, who may not
be allowed to read it. So a value must have the shape its recorded parameters give, match
its recorded fingerprint, and agree with what status (written by us, on another object)
says of the same revision; a verifier hash must be bound to the value it claims to verify.
A credential that fails is reported as Untrusted with what was wrong (never the value), and
the caller re-issues it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from credsmith.api.enums import CredentialType
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.hashing import verify_secret
from credsmith.issuing.keypair import key_algorithm_of, key_pair_from_private_pem
from credsmith.issuing.random_secret import shape_problem
from credsmith.reconcile.layout import LAYOUTS, PUBLIC_KEYS, public_parts
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.secret_state import REVISION, SecretState, VerifierHash, read_state
from credsmith.reconcile.snapshots import SecretSnapshot
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
    state: SecretState | None = None  # the revision recorded, if it could be read


def read_credential(
    secret: SecretSnapshot,
    type_: CredentialType,
    expected: GenerationParameters,
    status: Mapping[str, Any],
    now: datetime,
) -> Credential | Untrusted:
    """Read and check the credential in `secret`, whose owner is already known to be us."""
    layout = LAYOUTS[type_]
    client_id, value = secret.text(layout.client_id_key), secret.text(layout.value_key)
    read = read_state(secret.annotations, now)
    if not client_id or not value:
        lost = f"it lost its {layout.value_key} or {layout.client_id_key} key"
        return Untrusted(lost, lost=True, state=read.state)
    if read.state is None:
        return Untrusted(read.problem or "its bookkeeping is unreadable")
    state = _resolved(read.state, expected, value, status)
    problem = (
        _value_problem(secret, type_, value, state.parameters)
        or _fingerprint_problem(state, value, layout.value_key)
        or _status_problem(state, client_id, value, status)
    )
    if problem is not None:
        return Untrusted(problem, state=state)
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
    if REVISION in state.assumed and status.get("fingerprint") == fingerprint(value):
        revision = status.get("revision")
        if isinstance(revision, int) and revision > 0:
            state = replace(state, revision=revision)
    return state


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
