"""Reconcile one credential: (resource, its Secret, the time) -> Decision. Pure.

The Secret is the source of truth (secret_state.py), but nothing read from it is believed
unchecked (trust.py). A pass is a pipeline of stages (STAGES), each in the module of its
concern, handing an immutable `Pass` (pass_state.py) to the next; a stage that must stop the
pass (an invalid spec, a conflict) returns its Decision instead. A crash between writing the
Secret and writing status costs nothing: the next pass reads the Secret back and reports it;
it never issues a second value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from credsmith.api.common import CredentialSpec
from credsmith.api.enums import CredentialType, HashAlgorithm, KeyAlgorithm
from credsmith.reconcile.claim import CONFLICT_RECHECK, CONFLICT_RECHECK_MAX, claim_secret
from credsmith.reconcile.consumers import ConsumersSeen, follow_consumers
from credsmith.reconcile.desired_secret import render, write_secret
from credsmith.reconcile.expiry import retire_previous
from credsmith.reconcile.extras import settle
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.pass_state import Pass, Stage, StageOrderError
from credsmith.reconcile.policy import DEFAULT_GENERATORS, Generators, decide_value, hash_verifiers
from credsmith.reconcile.readiness import conclude
from credsmith.reconcile.registration import ProviderSeen, register
from credsmith.reconcile.revision import bound_revision
from credsmith.reconcile.secret_state import is_ours
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot, SecretSnapshot
from credsmith.reconcile.state_mac import StateKey
from credsmith.reconcile.trust import Credential, read_and_check, read_checked
from credsmith.reconcile.validation import check_templates_stage, validate

__all__ = [
    "CONFLICT_RECHECK",
    "CONFLICT_RECHECK_MAX",
    "DEFAULT_GENERATORS",
    "STAGES",
    "Generators",
    "KindRules",
    "checked_credential",
    "reconcile",
    "run",
]


@dataclass(frozen=True)
class KindRules:
    """What differs between the kinds that issue credentials."""

    kind: str
    spec_model: type[CredentialSpec]
    credential_type: Callable[[Any], CredentialType]
    key_algorithm: Callable[[Any], KeyAlgorithm | None]
    # ApiClient: a stable UUID reported as status.id (and listed in the registry).
    has_client_uuid: bool = False
    # Status fields of the kind's own, from its spec (ApiClient: roleCount).
    extra_status: Callable[[Any], dict[str, Any]] = lambda spec: {}
    # ApiClient with a registry: the hash to keep of the secret, for the registry.
    verifier_hash: Callable[[Any], HashAlgorithm | None] = lambda spec: None
    # ApiClient with registry.formats Htpasswd: keep a bcrypt hash too.
    htpasswd: Callable[[Any], bool] = lambda spec: False


# In order; the last one always decides.
STAGES: tuple[Stage, ...] = (
    validate,  # validation.py: the spec
    claim_secret,  # claim.py: the Secret is ours and of the right type
    check_templates_stage,  # validation.py: templates that can render
    read_and_check,  # trust.py: the credential in the Secret, believed or not
    decide_value,  # policy.py: keep, rotate (or wait to), issue or re-issue
    bound_revision,  # revision.py: a revision that cannot advance stalls
    settle,  # extras.py: spec.extraSecrets
    follow_consumers,  # consumers.py: rollouts; the previous value held while they lag
    retire_previous,  # expiry.py: a previous value past its expiry goes
    hash_verifiers,  # policy.py: registry and htpasswd hashes
    render,  # desired_secret.py: the Secret's data, templates rendered
    register,  # registration.py: what an identity provider must hold (verifier first)
    write_secret,  # desired_secret.py: the manifest, if it differs
    conclude,  # readiness.py: status, Events, the next look
)


def reconcile(
    rules: KindRules,
    resource: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    duplicate_of: str | None = None,
    consumers: ConsumersSeen | None = None,
    *,
    state_key: StateKey,
    generate: Generators = DEFAULT_GENERATORS,
    registry_htpasswd: bool = False,
    provider: ProviderSeen | None = None,
) -> Decision:
    """`duplicate_of`: an earlier client of the same registry with the same client ID (the
    registry lists only that one; this one is Ready=False). `consumers`: what the runtime
    found of spec.consumers (None when there are none). `registry_htpasswd`: the registry
    holds Htpasswd (another client asked) and this client fits it: keep a bcrypt hash too.
    `state_key`: the operator's key that authenticates the state on its Secrets (trust.py).
    `provider`: what the runtime found for spec.identityProvider (None: it does not exist);
    a Decision with a `registration` goes through registration.apply_outcome before any
    write."""
    start = Pass(
        rules,
        resource,
        secret,
        now,
        generate,
        state_key,
        duplicate_of,
        registry_htpasswd=registry_htpasswd,
        seen=consumers,
        provider=provider,
    )
    return run(start, STAGES)


def run(state: Pass, stages: Sequence[Stage]) -> Decision:
    """Each stage in turn, until one returns a Decision."""
    for stage in stages:
        result = stage(state)
        if isinstance(result, Decision):
            return result
        state = result
    raise StageOrderError("no stage decided the pass")


def checked_credential(
    rules: KindRules,
    resource: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    *,
    state_key: StateKey,
) -> tuple[CredentialSpec, Credential] | None:
    """The resource's valid spec and the credential in its own Secret, if both can be
    believed (trust.py: its MAC verifies, or status vouches for it): what a registry, an
    htpasswd file or a JWK Set may publish."""
    owner = f"{resource.kind}/{resource.name}"
    if secret is None or not is_ours(secret.labels, secret.annotations, owner):
        return None
    try:
        spec = rules.spec_model.model_validate(resource.spec)
    except ValidationError:
        return None
    type_ = rules.credential_type(spec)
    parameters = GenerationParameters.of(spec, type_, rules.key_algorithm(spec))
    found = read_checked(secret, type_, parameters, resource, spec, now, state_key)
    return (spec, found) if isinstance(found, Credential) else None
