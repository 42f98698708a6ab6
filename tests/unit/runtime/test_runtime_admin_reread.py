"""The re-read of a Keycloak provider's admin Secret after a refused sign-in: which read
serves a refusal (single_flight), and whose fingerprint a read changes (the provider's
next check rebuilds its client exactly when the Secret or spec differ from what it holds).
No cluster: the Secret's GET is a stand-in whose answer a test holds back."""

from __future__ import annotations

import asyncio
import base64
import types
from typing import Any, cast

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.keycloak import KeycloakClient
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.provider_clients import Built, ClientFactory, single_flight
from credsmith.runtime.providers import Providers, _State


def _spec(url: str = "https://one.keycloak.invalid") -> dict[str, Any]:
    return {"keycloak": {"url": url, "realm": "r", "credentialsSecretRef": {"name": "admin"}}}


class _HeldSecret:
    """The admin Secret's GET; it answers with what the Secret held when the GET began
    (as the API server does), and the next GET after `hold()` waits for `release()`."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self._gate: asyncio.Event | None = None  # for the next GET only
        self._released = asyncio.Event()
        self.waiting = asyncio.Event()
        self.answered = asyncio.Event()

    def hold(self) -> None:
        self._released, self.waiting, self.answered = (asyncio.Event() for _ in range(3))
        self._gate = self._released

    def release(self) -> None:
        self._released.set()

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        held, gate, self._gate = self.secret, self._gate, None
        if gate is not None:
            self.waiting.set()
            await gate.wait()
            self.answered.set()
        values = {"client-id": "admin", "client-secret": held}
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def _signing_in_with(client: KeycloakClient, accepted: dict[str, str]) -> None:
    """Keycloak (not called) refuses a sign-in unless made with `accepted["secret"]`."""

    async def sign_in() -> str:
        if client._admin_secret != accepted["secret"]:
            raise ProviderError(ProviderReason.LOGIN_REFUSED, "Keycloak refused the admin")
        return "token"

    client._sign_in = sign_in  # type: ignore[method-assign]


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_call_while_a_read_is_under_way_is_served_by_the_next_read() -> None:
    # A refusal after the Secret was updated must not be answered by a read that began
    # before the update: it awaits the next read, which all the late calls share.
    async def main() -> tuple[list[str], list[str]]:
        secret = {"value": "old"}
        began: list[str] = []
        first_began, release = asyncio.Event(), asyncio.Event()

        async def read() -> str:
            held = secret["value"]
            began.append(held)
            if len(began) == 1:
                first_began.set()
                await release.wait()
            return held

        shared = single_flight(read)
        early = [asyncio.create_task(shared()) for _ in range(2)]
        await first_began.wait()
        secret["value"] = "new"
        late = [asyncio.create_task(shared()) for _ in range(5)]
        await _settle()
        release.set()
        return list(await asyncio.gather(*early, *late)), began

    served, began = asyncio.run(main())
    assert served == ["old"] * 2 + ["new"] * 5
    assert began == ["old", "new"]  # two reads for the burst, one at a time


def test_a_call_after_the_read_ended_reads_again_before_its_callbacks_ran() -> None:
    async def main() -> str:
        secret = {"value": "old"}

        async def read() -> str:
            return secret["value"]

        shared = single_flight(read)
        first = asyncio.ensure_future(shared())
        await asyncio.sleep(0)  # the first call starts the read
        await asyncio.sleep(0)  # the read ends; its done-callbacks are only scheduled
        secret["value"] = "new"
        later = await shared()
        assert await first == "old"
        return later

    assert asyncio.run(main()) == "new"


def test_a_read_no_client_took_leaves_the_fingerprint_and_the_next_check_rebuilds() -> None:
    async def main() -> tuple[bytes, bytes]:
        kube = _HeldSecret("A")
        factory = ClientFactory(kube, "operator-ns")  # type: ignore[arg-type]  # GETs only
        inputs = await factory.inputs("ns", _spec())
        built: Built | None = None
        client = factory.build(inputs, factory.reloader("ns", _spec(), lambda: built))
        assert isinstance(client, KeycloakClient)
        built = Built(client, factory.fingerprint(inputs))
        _signing_in_with(client, {"secret": "B"})
        kube.secret = "B"
        kube.hold()
        signing_in = asyncio.create_task(client._admin_token())
        await kube.waiting.wait()
        signing_in.cancel()  # the credential's pass, cancelled during the re-read
        kube.release()
        await kube.answered.wait()
        await _settle()
        now = factory.fingerprint(await factory.inputs("ns", _spec()))
        return built.fingerprint, now

    held, now = asyncio.run(main())
    assert held != now


def test_a_read_the_client_took_is_its_fingerprint() -> None:
    async def main() -> tuple[str, bytes, bytes]:
        kube = _HeldSecret("A")
        factory = ClientFactory(kube, "operator-ns")  # type: ignore[arg-type]  # GETs only
        built = factory.built("ns", _spec(), await factory.inputs("ns", _spec()))
        assert isinstance(built.client, KeycloakClient)
        _signing_in_with(built.client, {"secret": "B"})
        kube.secret = "B"
        token = await built.client._admin_token()
        now = factory.fingerprint(await factory.inputs("ns", _spec()))
        return token, built.fingerprint, now

    token, held, now = asyncio.run(main())
    assert token == "token"
    assert held == now  # the next check keeps the client


def test_an_old_clients_read_does_not_become_the_fingerprint_of_its_successor() -> None:
    # The spec moves to another Keycloak while the old client re-reads the Secret; when it
    # moves back, the check must rebuild: the client it holds calls the other Keycloak.
    key = ("IdentityProvider", "ns", "kc")

    async def main() -> tuple[KeycloakClient, KeycloakClient, KeycloakClient]:
        kube = _HeldSecret("old")
        controller: Any = types.SimpleNamespace(
            factory=ClientFactory(kube, "operator-ns"),  # type: ignore[arg-type]
            memo=types.SimpleNamespace(forget_provider=lambda uid: None),
            _requeue_credentials=lambda key: None,
        )

        async def drop(state: _State) -> None:
            if state.built is not None:
                built, state.built = state.built, None
                await built.client.close()

        controller._drop_client = drop
        state = _State("u1")

        async def check(url: str) -> KeycloakClient:
            resource = cast(
                ResourceSnapshot, types.SimpleNamespace(namespace="ns", spec=_spec(url), uid="u1")
            )
            built = await Providers._refresh_client(controller, key, resource, state)
            assert isinstance(built.client, KeycloakClient)
            return built.client

        first = await check("https://one.keycloak.invalid")
        _signing_in_with(first, {"secret": "new"})
        kube.secret = "new"
        kube.hold()
        signing_in = asyncio.create_task(first._admin_token())
        await kube.waiting.wait()
        second = await check("https://two.keycloak.invalid")
        kube.release()
        assert await signing_in == "token"  # the old client took the new secret
        third = await check("https://one.keycloak.invalid")
        return first, second, third

    first, second, third = asyncio.run(main())
    assert second is not first
    assert third is not second
    assert third.url == "https://one.keycloak.invalid"
