"""A Keycloak provider's admin Secret read again on a refused sign-in: the sign-ins of many
credentials refused at once make one read of the Secret, and a later refusal reads again."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from credsmith.providers.base import ProviderError, ProviderReason
from credsmith.providers.keycloak import KeycloakClient
from credsmith.runtime.provider_clients import ClientFactory

SPEC = {
    "keycloak": {
        "url": "https://keycloak.invalid",
        "realm": "r",
        "credentialsSecretRef": {"name": "admin"},
    }
}


class _SecretReads:
    """The Kubernetes API's GET of the admin Secret, counted; it holds `secret`."""

    def __init__(self, secret: str) -> None:
        self.secret, self.reads = secret, 0

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        await asyncio.sleep(0.01)  # a round trip: the other refusals arrive meanwhile
        values = {"client-id": "admin", "client-secret": self.secret}
        return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}}


def _client(kube: _SecretReads, accepted: dict[str, str]) -> KeycloakClient:
    """A client built as the provider controller builds it, whose sign-in Keycloak
    refuses unless it is made with `accepted["secret"]` (no Keycloak called)."""
    factory = ClientFactory(kube, "operator-ns")  # type: ignore[arg-type]  # GETs only
    inputs = asyncio.run(factory.inputs("ns", SPEC))
    client = factory.build(inputs, factory.reloader("ns", SPEC, lambda: None))
    assert isinstance(client, KeycloakClient)

    async def sign_in() -> str:
        await asyncio.sleep(0.01)  # every concurrent sign-in is refused before any re-read
        if client._admin_secret != accepted["secret"]:
            raise ProviderError(ProviderReason.LOGIN_REFUSED, "Keycloak refused the admin")
        return "token"

    client._sign_in = sign_in  # type: ignore[method-assign]
    return client


def test_ten_concurrent_refused_sign_ins_read_the_admin_secret_once() -> None:
    kube = _SecretReads("old")
    accepted = {"secret": "old"}
    client = _client(kube, accepted)
    kube.reads = 0
    kube.secret = accepted["secret"] = "rotated"

    async def ten() -> list[str]:
        return await asyncio.gather(*(client._admin_token() for _ in range(10)))

    assert asyncio.run(ten()) == ["token"] * 10
    assert kube.reads == 1
    # A refusal after that read ended reads again (once; the Secret holds what was refused).
    accepted["secret"] = "rotated again"
    with pytest.raises(ProviderError) as refused:
        asyncio.run(client._admin_token())
    assert refused.value.reason is ProviderReason.LOGIN_REFUSED
    assert kube.reads == 2
