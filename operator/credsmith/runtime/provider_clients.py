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

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from credsmith.providers.base import IdentityProviderClient, ProviderError, ProviderReason
from credsmith.runtime.kube import ApiError, Kube


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

    def reloader(
        self, namespace: str, spec: Mapping[str, Any], built: Callable[[], Built | None]
    ) -> Callable[[], Awaitable[tuple[str, str]]]:
        """Reads a Keycloak provider's admin client ID and secret again, now. The client
        takes what it reads: `built()`'s fingerprint follows, so that the provider's next
        check does not take the Secret for changed and build another client."""

        async def reload() -> tuple[str, str]:
            inputs = await self.inputs(namespace, spec)
            if (current := built()) is not None:
                current.fingerprint = self.fingerprint(inputs)
            credentials = inputs["credentials"]
            return credentials["clientIdKey"], credentials["clientSecretKey"]

        return reload

    def build(
        self,
        inputs: Mapping[str, Any],
        reload: Callable[[], Awaitable[tuple[str, str]]] | None = None,
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


def _optional(value: object) -> str | None:
    return str(value) if value else None
