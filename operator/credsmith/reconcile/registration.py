"""spec.identityProvider: what the provider must hold for a credential, and what its answer
means for the pass. Pure.

Verifier first: the provider accepts a new value before the Secret holds it. The `register`
stage (before write_secret) says what the provider must hold after this pass (the value the
Secret is about to hold, the previous one while it is promised, the public keys of a KeyPair)
as `Decision.registration`. The runtime makes the provider hold it (client.ensure) before it
writes the Secret, then calls `apply_outcome` with the answer: success fills in `Registered`;
a failure drops a Secret write that would change the credential's value, so the Secret keeps
a value the provider still accepts, and the pass is retried with backoff.

A credential that names no provider never meets this module (readiness.conclude drops what
an earlier spec.identityProvider left in status).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from credsmith.api.enums import CredentialType
from credsmith.api.identity_provider import ClusterIdentityProviderSpec, IdentityProviderSpec
from credsmith.api.provider_ref import IdentityProviderRef, ProviderKind
from credsmith.api.status import (
    Condition,
    ConditionType,
    Reason,
    find_condition,
)
from credsmith.issuing.keypair import key_pair_from_private_pem
from credsmith.providers.base import DesiredClient, Marker, Owner, ProviderError
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.readiness import conditions_of, stop, with_condition
from credsmith.reconcile.scoping import describe, selects
from credsmith.reconcile.snapshots import Decision, Event, ResourceSnapshot
from credsmith.reconcile.trust import Credential

# The OAuth2 client authentication each credential type registers.
AUTH_METHODS = {
    CredentialType.CLIENT_SECRET: "client_secret_basic",
    CredentialType.KEY_PAIR: "private_key_jwt",
}
CLIENT_CREATED = "client"  # what ensure() reports for a client it had to create


@dataclass(frozen=True)
class ProviderSeen:
    """What the runtime found for a credential's spec.identityProvider."""

    kind: ProviderKind
    name: str
    namespace: str  # "" for a ClusterIdentityProvider
    uid: str
    spec: IdentityProviderSpec | ClusterIdentityProviderSpec
    # The provider's own Ready, and its reason (URLNotAllowed: the operator must not call it).
    ready: bool
    ready_reason: str = ""
    # The labels of the credential's namespace (a ClusterIdentityProvider's allowedNamespaces).
    namespace_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> ProviderRef:
        return ProviderRef(self.kind, self.namespace, self.name, self.uid)


@dataclass(frozen=True)
class ProviderRef:
    kind: ProviderKind
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.value} {where}{self.name}"


@dataclass(frozen=True)
class Registration:
    """What the provider must hold after this pass (Decision.registration). `desired` holds
    the secret values (repr=False in DesiredClient): never log it, nor keep it in memory
    past the call."""

    provider: ProviderRef
    desired: DesiredClient
    # The Secret is about to hold another value than it does: if the provider does not take
    # it, that write must not happen (verifier first).
    changes_value: bool
    # What apply_outcome needs to write status: the resource as read, and the pass's time.
    resource: ResourceSnapshot = field(repr=False)
    now: datetime
    # A ClientSecret with rotation.overlap: the previous value stays valid beside the new one
    # only where the provider holds two secrets.
    overlap: bool = False
    # What the provider must hold for the value the Secret holds now (same client ID), when
    # `changes_value`: should the Secret write be refused after the provider took the new
    # value, the runtime puts this back, so that the value consumers read keeps working.
    held: DesiredClient | None = None


@dataclass(frozen=True)
class RegistrationOutcome:
    """The provider's answer to ensure(): what it put back, or why it failed."""

    drifted: tuple[str, ...] = ()
    error: ProviderError | None = None
    holds_two_secrets: bool = True

    @classmethod
    def unchanged(cls, holds_two_secrets: bool) -> RegistrationOutcome:
        """ensure() was not called (the provider holds what it held after the last call
        of this process, and its resync is not due): as good as a call that found no drift."""
        return cls((), None, holds_two_secrets)


def register(p: Pass) -> Pass | Decision:
    """The stage: with spec.identityProvider, the client the provider must hold; a provider
    that is missing or does not serve this namespace stops the pass, the Secret untouched."""
    wanted: IdentityProviderRef | None = p.spec.identity_provider
    if wanted is None:
        return p
    provider = p.provider
    if provider is None:
        where = ""
        if wanted.kind is ProviderKind.IDENTITY_PROVIDER:
            where = f" in namespace {p.resource.namespace}"
        message = f"{wanted.kind.value} {wanted.name}{where} not found"
        return refuse(p, Reason.PROVIDER_NOT_FOUND, message)
    if not serves(provider, p.resource.namespace):
        allowed = getattr(provider.spec, "allowed_namespaces", None)
        because = (
            f"its {describe(allowed)} does not select it"
            if provider.kind is ProviderKind.CLUSTER_IDENTITY_PROVIDER
            else "it serves its own namespace only"
        )
        return refuse(
            p,
            Reason.PROVIDER_NOT_ALLOWED,
            f"{provider.ref} does not allow namespace {p.resource.namespace}: {because}",
        )
    if provider.ready_reason == Reason.URL_NOT_ALLOWED.value:
        return refuse(
            p,
            Reason.URL_NOT_ALLOWED,
            f"{provider.ref}: its URL is not in the operator's allow-list "
            "(--identity-provider-url-allow)",
        )
    credential, checked = p.credential, p.checked
    desired = _desired_client(p, provider, credential)
    changes_value = checked is None or (checked.client_id, checked.value) != (
        credential.client_id,
        credential.value,
    )
    held = None
    if changes_value and checked is not None and checked.client_id == credential.client_id:
        held = _desired_client(p, provider, checked)
    overlap = p.valid.type is CredentialType.CLIENT_SECRET and bool(
        p.spec.rotation.overlap_duration
    )
    registration = Registration(
        provider.ref, desired, changes_value, p.resource, p.now, overlap=overlap, held=held
    )
    return replace(p, registration=registration)


def _desired_client(p: Pass, provider: ProviderSeen, credential: Credential) -> DesiredClient:
    """What the provider must hold for `credential` (the pass's, or the Secret's as found)."""
    type_, client = p.valid.type, p.spec.identity_provider
    assert client is not None
    owner = Owner(p.resource.kind, p.resource.namespace, p.resource.name, p.resource.uid)
    common: dict[str, Any] = {
        "client_id": credential.client_id,
        "marker": Marker(provider.uid, owner, credential.state.revision),
        "auth_method": AUTH_METHODS[type_],
        "grant_types": tuple(client.client.grant_types),
        "scope": tuple(client.client.scope),
        "audience": tuple(client.client.audience),
    }
    if type_ is CredentialType.KEY_PAIR:
        values = (credential.value, credential.previous)
        jwks = tuple(key_pair_from_private_pem(v).public_jwk for v in values if v is not None)
        return DesiredClient(**common, jwks=jwks)
    return DesiredClient(
        **common,
        secret=credential.value,
        previous_secret=credential.previous,
        previous_expires_at=(
            credential.state.previous_expires_at if credential.previous is not None else None
        ),
    )


def serves(provider: ProviderSeen, namespace: str) -> bool:
    """Whether a credential of `namespace` may name the provider: an IdentityProvider of its
    own namespace (the runtime finds no other), or a ClusterIdentityProvider whose
    allowedNamespaces selects the namespace's labels (absent: none)."""
    if provider.kind is ProviderKind.IDENTITY_PROVIDER:
        return provider.namespace == namespace
    allowed = getattr(provider.spec, "allowed_namespaces", None)
    return selects(allowed, provider.namespace_labels)


def refuse(p: Pass, reason: Reason, message: str) -> Decision:
    """The pass stops (Ready=False, Stalled=True: a person must create or open the provider),
    Registered=False; the Secret stays as it is but for an expired previous value."""
    decision = stop(p, reason, message)
    status = _with_registered(p.resource, decision.status, p.now, False, reason, message)
    status["identityProvider"] = _registration_status(p.resource.status, registered=False)
    return replace(decision, status=status)


def apply_outcome(decision: Decision, outcome: RegistrationOutcome) -> Decision:
    """The pass's Decision after the provider's answer. The runtime calls it for every
    Decision with a registration, after ensure() (or with RegistrationOutcome.unchanged
    when it did not call it), before it writes anything."""
    registration = decision.registration
    if registration is None:
        return decision
    if outcome.error is not None:
        return _failed(decision, registration, outcome.error)
    resource, now, desired = registration.resource, registration.now, registration.desired
    if registration.overlap and not outcome.holds_two_secrets:
        reason = Reason.OVERLAP_UNSUPPORTED
        message = (
            f"{registration.provider} holds one client secret: at a rotation the previous "
            "value stops working at the provider at once, although the Secret keeps it for "
            "rotation.overlap"
        )
    else:
        reason = Reason.REGISTERED
        message = (
            f"{registration.provider} holds client {desired.client_id} at revision "
            f"{desired.marker.revision}"
        )
    status = _with_registered(resource, decision.status, now, True, reason, message)
    status["conditions"] = [c for c in status["conditions"] if not _is_ours_reconciling(c)]
    status["identityProvider"] = {
        "registered": True,
        "clientId": desired.client_id,
        "revision": desired.marker.revision,
    }
    events = decision.events
    drifted = _reported_drift(outcome.drifted, resource.status, desired.client_id)
    if drifted:
        events += (
            Event(
                "Warning",
                "ProviderDrift",
                f"{registration.provider}: client {desired.client_id} had drifted "
                f"({', '.join(drifted)}) and was put back",
            ),
        )
    return replace(decision, status=status, events=events)


def _failed(decision: Decision, registration: Registration, error: ProviderError) -> Decision:
    """Verifier first: a Secret write that would change the value is dropped, and status
    stays what the Secret holds; Registered=False, Ready=False, Reconciling=True while the
    runtime retries with backoff."""
    resource, now = registration.resource, registration.now
    failure, message = Reason(error.reason.value), error.message
    secret, create, events = decision.secret, decision.create, decision.events
    status: dict[str, Any] = dict(decision.status)
    if registration.changes_value:
        secret, create, events = None, False, ()
        # Status describes the Secret, which keeps what it held; the client ID is kept so
        # that the retry registers the same client (a first issue has no Secret to keep it).
        status = {**resource.status, "observedGeneration": resource.generation}
        status.setdefault("clientId", registration.desired.client_id)
        status["conditions"] = [c.to_wire() for c in conditions_of(resource)]
    stored = find_condition(conditions_of(resource), ConditionType.REGISTERED)
    status = _with_registered(resource, status, now, False, failure, message)
    conditions = [Condition.model_validate(c) for c in status["conditions"]]
    for type_ in (ConditionType.READY, ConditionType.RECONCILING):
        conditions = with_condition(
            conditions, resource, now, type_, type_ is ConditionType.RECONCILING, failure, message
        )
    conditions = [c for c in conditions if c.type != ConditionType.STALLED]
    status["conditions"] = [c.to_wire() for c in conditions]
    status["identityProvider"] = _registration_status(resource.status, registered=False)
    if stored is None or stored.reason != failure.value or stored.message != message:
        events += (Event("Warning", failure.value, f"{registration.provider}: {message}"),)
    return replace(
        decision,
        status=status,
        secret=secret,
        create=create,
        events=events,
        retry=True,
        rollouts=() if registration.changes_value else decision.rollouts,
        summary=f"{failure.value}: {message}",
    )


def _reported_drift(
    drifted: tuple[str, ...], stored: Mapping[str, Any], client_id: str
) -> tuple[str, ...]:
    """What differed, but for a first creation (a client missing before it was ever
    registered is no drift)."""
    if drifted != (CLIENT_CREATED,):
        return drifted
    before = stored.get("identityProvider") or {}
    was_registered = before.get("clientId") == client_id and before.get("revision") is not None
    return drifted if was_registered else ()


def _registration_status(stored: Mapping[str, Any], *, registered: bool) -> dict[str, Any]:
    """status.identityProvider with `registered`, and what the provider last accepted."""
    before = stored.get("identityProvider") or {}
    kept = {k: before[k] for k in ("clientId", "revision") if before.get(k) is not None}
    return {"registered": registered, **kept}


def _is_ours_reconciling(condition: Mapping[str, Any]) -> bool:
    """A Reconciling condition set by a failed registration (its reason a provider's)."""
    return (
        condition.get("type") == ConditionType.RECONCILING.value
        and condition.get("reason") in PROVIDER_FAILURE_REASONS
    )


PROVIDER_FAILURE_REASONS = frozenset(
    r.value
    for r in (
        Reason.PROVIDER_UNREACHABLE,
        Reason.PROVIDER_TLS_ERROR,
        Reason.PROVIDER_LOGIN_REFUSED,
        Reason.PROVIDER_FORBIDDEN,
        Reason.PROVIDER_CONFLICT,
        Reason.PROVIDER_REJECTED,
        Reason.PROVIDER_ERROR,
    )
)


def _with_registered(
    resource: ResourceSnapshot,
    status: Mapping[str, Any],
    now: datetime,
    ok: bool,
    reason: Reason,
    message: str,
) -> dict[str, Any]:
    """`status` with the Registered condition; its lastTransitionTime from the stored one
    while its status holds."""
    conditions = [Condition.model_validate(c) for c in status.get("conditions") or ()]
    stored = find_condition(conditions_of(resource), ConditionType.REGISTERED)
    if stored is not None and find_condition(conditions, ConditionType.REGISTERED) is None:
        conditions.append(stored)
    conditions = with_condition(
        conditions, resource, now, ConditionType.REGISTERED, ok, reason, message
    )
    return {**status, "conditions": [c.to_wire() for c in conditions]}
