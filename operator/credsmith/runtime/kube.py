"""The few API calls the operator makes.

Responses are not deserialised into client models (the watch caches hold what we
read), which keeps bulk issuing cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config

from credsmith import GROUP, VERSION
from credsmith.runtime.session import MERGE_PATCH, ApiError, ApiSession

__all__ = ["ApiError", "Kube", "load_config"]


def load_config(kubeconfig: str | None) -> client.Configuration:
    """Credentials from a kubeconfig, the in-cluster service account, or $KUBECONFIG
    (the kubernetes client reads them, exec plugins and token refresh included)."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return configuration


class Kube:
    """The operator's API calls, through aiohttp `ApiSession`s on the event loop.

    Three connection pools, so that nothing waits behind something long-lived:
    `session` for the workers' requests (one connection per worker and a few),
    `watches` for the informers' lists and watches (one connection per informer,
    sized by the controller once it knows how many), and `control` for the Lease
    and the readiness probe, which must get through while everything else is busy.
    """

    def __init__(self, configuration: client.Configuration, pool_size: int = 32) -> None:
        self.session = ApiSession(configuration, pool_size)
        self.watches = ApiSession(configuration, pool_size=0)
        self.control = ApiSession(configuration, pool_size=2)

    async def close(self) -> None:
        for session in (self.session, self.watches, self.control):
            await session.close()

    async def probe(self) -> None:
        """GET /version with a short timeout: is the API server answering?"""
        await self.control.request("GET", "/version", timeout=3)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.session.request(
                "GET", f"/api/v1/namespaces/{namespace}/secrets/{name}"
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_secret(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.session.request(
            "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body
        )

    async def replace_secret(
        self, namespace: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A PUT at the body's resourceVersion: a concurrent change makes it fail (409)."""
        return await self.session.request(
            "PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body=body
        )

    async def patch_status(
        self, plural: str, namespace: str, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A JSON merge patch of the status subresource: nothing else is ever written.
        An empty `namespace`: a cluster-scoped kind (ClusterIdentityProvider)."""
        scope = f"/namespaces/{namespace}" if namespace else ""
        return await self.session.request(
            "PATCH",
            f"/apis/{GROUP}/{VERSION}{scope}/{plural}/{name}/status",
            body=patch,
            content_type=MERGE_PATCH,
        )

    async def post_event(
        self,
        involved: Mapping[str, str],
        type_: str,
        reason: str,
        message: str,
    ) -> None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = involved["namespace"]
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved['name']}.", "namespace": namespace},
            "involvedObject": dict(involved),
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "credsmith"},
            "reportingComponent": "credsmith.io/operator",
            "reportingInstance": "credsmith",
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        # The created Event is not read: its body is not decoded.
        await self.session.request(
            "POST", f"/api/v1/namespaces/{namespace}/events", body=body, decode=False
        )

    async def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.session.request(
                "GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}"
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create_config_map(self, namespace: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.session.request(
            "POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body
        )

    async def replace_config_map(
        self, namespace: str, name: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        return await self.session.request(
            "PUT", f"/api/v1/namespaces/{namespace}/configmaps/{name}", body=body
        )

    # The leader Lease (coordination.k8s.io/v1), on its own connections. The caller
    # bounds each attempt (asyncio.timeout); `timeout` is only a backstop.

    async def get_lease(self, namespace: str, name: str, timeout: float = 10) -> dict[str, Any]:
        return await self.control.request("GET", f"{_leases(namespace)}/{name}", timeout=timeout)

    async def create_lease(
        self, namespace: str, body: Mapping[str, Any], timeout: float = 10
    ) -> dict[str, Any]:
        return await self.control.request("POST", _leases(namespace), body=body, timeout=timeout)

    async def replace_lease(
        self, namespace: str, name: str, body: Mapping[str, Any], timeout: float = 10
    ) -> dict[str, Any]:
        """A PUT at the body's resourceVersion: a concurrent change makes it fail (409)."""
        return await self.control.request(
            "PUT", f"{_leases(namespace)}/{name}", body=body, timeout=timeout
        )


def _leases(namespace: str) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
