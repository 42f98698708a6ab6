"""One admin-API client per IdentityProvider/ClusterIdentityProvider, built from its spec.

Keycloak's admin credentials come from the Secret the provider names (its own namespace,
or the operator's for a ClusterIdentityProvider), read with the operator's RBAC at every
check of the provider, so that a changed Secret is used from the next check on, and again
whenever Keycloak refuses the sign-in (an admin secret rotated: the next registration, not
the next check, uses the new one). They are
never logged: errors name the Secret and the key, never a value. A client is rebuilt only
when what it is built from changes, compared by a keyed fingerprint (no copy of the
credentials is kept besides the client's own).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from credsmith.providers.base import IdentityProviderClient, ProviderError, ProviderReason
from credsmith.providers.keycloak import AdminCredentials
from credsmith.runtime.kube import ApiError, Kube

T = TypeVar("T")


@dataclass
class Built:
    client: IdentityProviderClient
    fingerprint: bytes


class ClientFactory:
    def __init__(self, kube: Kube, operator_namespace: str) -> None:
        self.kube = kube
        self.operator_namespace = operator_namespace
        self._key = os.urandom(32)

    async def inputs(self, namespace: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """What the client is built from: the spec's block and, for Keycloak, the admin
        credentials read now. Raises ProviderError when they cannot be read."""
        if isinstance(hydra := spec.get("hydra"), Mapping):
            return {"hydra": dict(hydra)}
        keycloak = spec.get("keycloak")
        if not isinstance(keycloak, Mapping):
            raise ProviderError(ProviderReason.REJECTED, "spec names neither hydra nor keycloak")
        ref = keycloak.get("credentialsSecretRef") or {}
        secret_namespace = namespace or self.operator_namespace
        name = str(ref.get("name") or "")
        where = f"Secret {secret_namespace}/{name}"
        try:
            secret = await self.kube.get_secret(secret_namespace, name) if name else None
        except ApiError as exc:
            raise ProviderError(
                ProviderReason.LOGIN_REFUSED,
                f"cannot read the admin credentials ({where}): {exc.status} {exc.reason}",
            ) from None
        if secret is None:
            raise ProviderError(
                ProviderReason.LOGIN_REFUSED, f"the admin credentials' {where} is not found"
            )
        data = secret.get("data") or {}
        values = {}
        for field, default in (("clientIdKey", "client-id"), ("clientSecretKey", "client-secret")):
            key = str(ref.get(field) or default)
            try:
                values[field] = base64.b64decode(data.get(key) or "", validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                values[field] = ""
            if not values[field]:
                raise ProviderError(
                    ProviderReason.LOGIN_REFUSED, f"the admin credentials' {where} has no {key!r}"
                )
        return {"keycloak": {k: v for k, v in keycloak.items() if k != "credentialsSecretRef"},
                "credentials": values}  # fmt: skip

    def fingerprint(self, inputs: Mapping[str, Any]) -> bytes:
        canonical = json.dumps(inputs, sort_keys=True, default=str).encode()
        return hmac.new(self._key, canonical, hashlib.sha256).digest()

    def built(self, namespace: str, spec: Mapping[str, Any], inputs: Mapping[str, Any]) -> Built:
        """The client built from `inputs`, with their fingerprint; a Keycloak client's
        credentials read again become the fingerprint of this Built only, never of one
        built after it (the spec changed meanwhile: its fingerprint is its own)."""
        mine: Built | None = None
        client = self.build(inputs, self.reloader(namespace, spec, lambda: mine))
        mine = Built(client, self.fingerprint(inputs))
        return mine

    def reloader(
        self, namespace: str, spec: Mapping[str, Any], built: Callable[[], Built | None]
    ) -> Callable[[], Awaitable[AdminCredentials]]:
        """Reads a Keycloak provider's admin client ID and secret again, now. Once the
        client takes what was read, `built()`'s fingerprint follows, so that the provider's
        next check does not take the Secret for changed and build another client; a read
        no client took (its callers cancelled) leaves it, and that check rebuilds. Reloads
        share reads (single_flight): the sign-ins of many credentials refused at once (a
        rotated admin secret) make one GET of the Secret, not one each."""

        async def read() -> AdminCredentials:
            inputs = await self.inputs(namespace, spec)
            fingerprint = self.fingerprint(inputs)

            def taken() -> None:
                if (holder := built()) is not None:
                    holder.fingerprint = fingerprint

            credentials = inputs["credentials"]
            return AdminCredentials(
                credentials["clientIdKey"], credentials["clientSecretKey"], taken
            )

        return single_flight(read)

    def build(
        self,
        inputs: Mapping[str, Any],
        reload: Callable[[], Awaitable[AdminCredentials]] | None = None,
    ) -> IdentityProviderClient:
        if "hydra" in inputs:
            from credsmith.providers.hydra import HydraClient

            hydra = inputs["hydra"]
            return HydraClient(str(hydra["adminURL"]), _optional(hydra.get("publicURL")))
        from credsmith.providers.keycloak import KeycloakClient

        keycloak, credentials = inputs["keycloak"], inputs["credentials"]
        return KeycloakClient(
            str(keycloak["url"]),
            str(keycloak["realm"]),
            credentials["clientIdKey"],
            credentials["clientSecretKey"],
            reload_credentials=reload,
        )


def single_flight(
    read: Callable[[], Coroutine[Any, Any, T]],
) -> Callable[[], Coroutine[Any, Any, T]]:
    """`read`, shared by the calls that arrive before it begins: each call is served by a
    read that begins after the call, never by one under way (which may answer with what
    was there before the caller's reason to read again). A call while a read is under way
    awaits the next one, which begins when that ends and serves every call arriving
    meanwhile: at most two reads per burst of calls, one at a time."""
    latest: _Read[T] | None = None

    async def begin(mine: _Read[T], previous: asyncio.Task[T] | None) -> T:
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is its own callers'
        mine.begun = True
        return await read()

    async def shared() -> T:
        nonlocal latest
        # A done read is none (its callbacks may not have run yet: the state is read here).
        if latest is None or latest.begun or latest.task.done():
            previous = latest.task if latest is not None and not latest.task.done() else None
            mine = _Read[T]()
            mine.task = asyncio.create_task(begin(mine, previous))
            mine.task.add_done_callback(_retrieved)
            latest = mine
        # A caller cancelled (its pass) does not cancel the read the others await.
        return await asyncio.shield(latest.task)

    return shared


class _Read(Generic[T]):
    """One read of single_flight's: its task, and whether `read` began (none may join)."""

    task: asyncio.Task[T]
    begun: bool = False


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, should every caller have been cancelled


def _optional(value: object) -> str | None:
    return str(value) if value else None
