"""The credential side of identity providers: what a pass reads of its provider, and the
provider call made before the Secret is written (verifier first).

`provider_seen` turns spec.identityProvider into the ProviderSeen the pure pass takes, from
the informers' caches (no request). `register` carries out Decision.registration: it calls
client.ensure(desired) only when the desired client differs from what this process last
made the provider hold, or the provider's resync is due for it (the memo); then
registration.apply_outcome decides what is written. A failed call is retried on the key's
backoff (Decision.retry); a successful one is looked at again at the resync, so that
drift in the provider is found within `resync`.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from pydantic import ValidationError

from credsmith.api.identity_provider import ClusterIdentityProviderSpec, IdentityProviderSpec
from credsmith.api.provider_ref import ProviderKind
from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.reconcile.provider_status import is_ready
from credsmith.reconcile.registration import ProviderSeen, RegistrationOutcome, apply_outcome
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot
from credsmith.runtime.kinds import Key
from credsmith.runtime.provider_kinds import CLUSTER_IDENTITY_PROVIDER, provider_key_of, resync_of
from credsmith.runtime.providers import Providers
from credsmith.runtime.url_allow import URL_NOT_ALLOWED, disallowed_url

log = logging.getLogger("credsmith.registration")

# Failures after which the provider certainly holds what it held: a client that is not
# ours (never changed), a URL never called. After any other, it may hold the new value all
# the same: no answer, a 5xx midway, or a refusal of a later call of several (Keycloak sets
# the secret, then the scopes and audience mappers, each a call that can be refused).
NOTHING_APPLIED = frozenset({ProviderReason.CONFLICT, ProviderReason.URL_NOT_ALLOWED})


def provider_seen(providers: Providers, credential: ResourceSnapshot) -> ProviderSeen | None:
    """What the credential's spec.identityProvider finds; None: no such provider (or one
    this operator does not watch). Only meaningful when the spec names one."""
    key = provider_key_of(credential)
    if key is None:
        return None
    found = providers.provider(key)
    if found is None:
        return None
    cluster = key[0] == CLUSTER_IDENTITY_PROVIDER
    model = ClusterIdentityProviderSpec if cluster else IdentityProviderSpec
    try:
        spec = model.model_validate(found.spec)
    except ValidationError:
        return None  # the API server's schema refuses such a spec; a stale cache at most
    ready, reason, _ = providers.readiness(key)
    if ready is None:  # not checked by this process yet: what its status last said
        ready = is_ready(found.status)
    if disallowed_url(found.spec, providers.url_allow) is not None:
        ready, reason = False, URL_NOT_ALLOWED  # known without waiting for its pass
    return ProviderSeen(
        kind=ProviderKind(key[0]),
        name=key[2],
        namespace=key[1],
        uid=found.uid,
        spec=spec,
        ready=ready is True,
        ready_reason=reason,
        namespace_labels=providers.namespace_labels(credential.namespace) if cluster else {},
    )


async def register(providers: Providers, decision: Decision) -> Decision:
    """Make the provider hold Decision.registration's client (if the memo says it must),
    then the Decision that follows from its answer."""
    registration = decision.registration
    if registration is None:
        return decision
    ref = registration.provider
    key: Key = (ref.kind.value, ref.namespace, ref.name)
    desired = registration.desired
    provider = providers.provider(key)
    resync = resync_of(provider) if provider is not None else 600.0
    holds_two = True
    try:
        client = await providers.client(key)
        holds_two = client.holds_two_secrets
        if providers.memo.due(desired, resync):
            drifted = await client.ensure(desired)
            providers.memo.made(desired)
            if drifted:
                log.info(
                    "%s: %s client %s: put back %s",
                    registration.resource.ref, ref, desired.client_id, ", ".join(drifted),
                )  # fmt: skip
            outcome = RegistrationOutcome(drifted, None, holds_two)
        else:
            outcome = RegistrationOutcome.unchanged(holds_two)
    except ProviderError as exc:
        providers.memo.forget(desired)
        providers.failed(key, exc)
        outcome = RegistrationOutcome((), exc, holds_two)
        if exc.reason not in NOTHING_APPLIED:
            # The Secret write is dropped, but the provider may have taken the new value:
            # put back what the Secret holds.
            await restore(providers, decision)
    decided = apply_outcome(decision, outcome)
    if outcome.error is not None:
        return decided
    # Back at the resync: the provider's copy is compared with ours then.
    check = providers.memo.next_check(desired, resync)
    if check is None:
        return decided
    at = datetime.fromtimestamp(check, UTC)
    if decided.requeue_at is None or at < decided.requeue_at:
        decided = replace(decided, requeue_at=at)
    return decided


async def restore(providers: Providers, decision: Decision) -> None:
    """The Secret write that followed a successful `register` was refused (or failed): the
    provider holds the new value, the Secret still the old one, and a provider that holds one
    secret (Hydra) now refuses what consumers read. Put back what the Secret holds; the next
    pass decides again from there. A failure here is logged: the retry's `ensure` converges."""
    registration = decision.registration
    if registration is None or registration.held is None:
        return
    ref = registration.provider
    key: Key = (ref.kind.value, ref.namespace, ref.name)
    providers.memo.forget(registration.desired)
    try:
        client = await providers.client(key)
        await client.ensure(registration.held)
        providers.memo.made(registration.held)
    except ProviderError as exc:
        log.warning(
            "%s: %s client %s: the Secret was not written and the value it holds could "
            "not be put back: %s",
            registration.resource.ref, ref, registration.held.client_id, exc.message,
        )  # fmt: skip
