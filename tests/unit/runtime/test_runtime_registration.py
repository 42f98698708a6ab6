"""The credential side's provider call (runtime/registration.py): when ensure() is made,
what the pass's Decision becomes, and when the key comes back. The provider here is a
recorder of calls, standing in for the network only: what providers do with the calls is
proven against real ones (tests/e2e/test_provider_hydra.py, test_provider_keycloak.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

from credsmith.providers.base import (
    DesiredClient,
    IdentityProviderClient,
    MarkedClient,
    ProviderError,
    ProviderReason,
)
from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot
from credsmith.runtime.provider_clients import Built
from credsmith.runtime.provider_kinds import ProviderOptions
from credsmith.runtime.providers import Providers, _State
from credsmith.runtime.registration import provider_seen, register
from tests.state_key import TEST_STATE_KEY

PROVIDER = ("IdentityProvider", "ns", "hydra")


class Recorder:
    """Answers as told and records what was asked (never a real provider)."""

    holds_two_secrets = False

    def __init__(self) -> None:
        self.ensured: list[DesiredClient] = []
        self.error: ProviderError | None = None
        self.drifted: tuple[str, ...] = ()

    async def check(self) -> None:
        return None

    async def ensure(self, desired: DesiredClient) -> tuple[str, ...]:
        self.ensured.append(desired)
        if self.error is not None:
            raise self.error
        return self.drifted

    async def list_marked(self, provider_uid: str) -> list[MarkedClient]:
        return []

    async def delete(self, client_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


def snapshot(kind: str, name: str, spec: dict[str, object], uid: str) -> ResourceSnapshot:
    return ResourceSnapshot("credsmith.io/v1alpha1", kind, "ns", name, uid, 1, {}, {}, spec, {})


def setup() -> tuple[Providers, Recorder, ResourceSnapshot]:
    providers = Providers(
        None,  # type: ignore[arg-type]  # no API call here
        lambda key: None,
        lambda key, when: None,
        lambda key: None,
        ProviderOptions(),
    )
    spec: dict[str, object] = {"hydra": {"adminURL": "http://hydra:4445"}, "resync": "1m"}
    providers.resources["IdentityProvider"][("ns", "hydra")] = snapshot(
        "IdentityProvider", "hydra", spec, "provider-uid"
    )
    recorder = Recorder()  # only the calls this pass makes (no delete_if)
    providers._states[PROVIDER] = _State(
        "provider-uid", Built(cast(IdentityProviderClient, recorder), b"")
    )
    credential = snapshot(
        "ServiceAccountCredential",
        "orders",
        {"serviceAccount": "orders", "identityProvider": {"name": "hydra"}},
        "owner-uid",
    )
    return providers, recorder, credential


def decide(providers: Providers, credential: ResourceSnapshot) -> Decision:
    seen = provider_seen(providers, credential)
    assert seen is not None
    assert seen.uid == "provider-uid"
    decision = reconcile(
        SERVICE_ACCOUNT_CREDENTIAL,
        credential,
        None,
        datetime.now(UTC),
        state_key=TEST_STATE_KEY,
        provider=seen,
    )
    assert decision.registration is not None
    return decision


def condition(decision: Decision, type_: str) -> dict[str, object]:
    return next(c for c in decision.status["conditions"] if c["type"] == type_)


def test_the_provider_is_called_before_the_write_and_then_only_when_due() -> None:
    providers, recorder, credential = setup()
    first = decide(providers, credential)
    called = datetime.now(UTC)
    decided = asyncio.run(register(providers, first))
    assert len(recorder.ensured) == 1
    assert decided.secret is not None  # the first issue is written, after the provider took it
    assert condition(decided, "Registered")["status"] == "True"
    # Back within the resync (1m), so that drift in the provider is found.
    assert decided.requeue_at is not None
    assert 0 < (decided.requeue_at - called).total_seconds() <= 61
    # The same desired client again: no call until the resync is due.
    again = asyncio.run(register(providers, first))
    assert len(recorder.ensured) == 1
    assert condition(again, "Registered")["status"] == "True"


def test_a_failed_call_drops_the_write_and_retries() -> None:
    providers, recorder, credential = setup()
    recorder.error = ProviderError(ProviderReason.UNREACHABLE, "http://hydra:4445: refused")
    decided = asyncio.run(register(providers, decide(providers, credential)))
    assert decided.secret is None  # verifier first: nothing the provider does not hold
    assert decided.retry
    assert condition(decided, "Registered")["reason"] == "ProviderUnreachable"
    # Not remembered as made: the next pass calls again.
    recorder.error = None
    asyncio.run(register(providers, decide(providers, credential)))
    assert len(recorder.ensured) == 2


def test_a_provider_outside_the_allow_list_is_not_called() -> None:
    providers, recorder, credential = setup()
    providers.url_allow = ("https://hydra.example",)
    seen = provider_seen(providers, credential)
    assert seen is not None
    assert seen.ready_reason == "URLNotAllowed"
    decision = reconcile(
        SERVICE_ACCOUNT_CREDENTIAL,
        credential,
        None,
        datetime.now(UTC),
        state_key=TEST_STATE_KEY,
        provider=seen,
    )
    assert decision.registration is None  # refused by the pure stage, before any call
    assert recorder.ensured == []


def test_after_a_failed_change_the_value_held_before_is_sent_again() -> None:
    providers, recorder, credential = setup()
    first = decide(providers, credential)
    asyncio.run(register(providers, first))
    assert first.registration is not None
    # A rotation the provider fails half-way: what it holds now is unknown.
    desired = replace(first.registration.desired, secret="another-value-of-48-characters")
    rotated = replace(first, registration=replace(first.registration, desired=desired))
    recorder.error = ProviderError(ProviderReason.ERROR, "http://hydra:4445: 500")
    asyncio.run(register(providers, rotated))
    # The next pass, with the Secret's value as before: sent again, not taken as held.
    recorder.error = None
    asyncio.run(register(providers, first))
    assert len(recorder.ensured) == 3
