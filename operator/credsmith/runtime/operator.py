"""`credsmith run`: kopf configured for GitOps-clean objects, plus the controller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import kopf

from credsmith.reconcile.snapshots import MANAGED_BY, MANAGED_BY_LABEL
from credsmith.runtime.controller import Controller, KindConfig
from credsmith.runtime.health import Health
from credsmith.runtime.kube import Kube, load_config
from credsmith.runtime.leader import LeaderElector, LeaseConfig
from credsmith.runtime.metrics import Metrics, start_metrics_server

log = logging.getLogger("credsmith")


@dataclass
class OperatorOptions:
    namespaces: Sequence[str] = ()  # empty: every namespace
    kubeconfig: str | None = None
    workers: int = 16
    liveness_port: int | None = 8081
    metrics_port: int | None = 8080
    # Lease-based leader election: one replica acts, the others wait.
    leader_elect: bool = False
    leader_election_namespace: str = "default"
    leader_election_id: str = "credsmith-operator"
    lease_duration: float = 15.0
    identity: str = field(default_factory=lambda: socket.gethostname())
    stop_flag: asyncio.Event | threading.Event | None = field(default=None, repr=False)


def kopf_settings(workers: int) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # One replica acts at a time through our own Lease, not kopf's peering objects.
    settings.peering.standalone = True
    # Events are posted by the controller, with reasons of our own; kopf would post
    # handler logs and retries as Events too.
    settings.posting.enabled = False
    # Only Secrets we manage are watched and cached: selected by the apiserver.
    settings.watching.label_selectors["v1", "secrets"] = f"{MANAGED_BY_LABEL}={MANAGED_BY}"
    settings.execution.max_workers = workers
    # The resources are known; scanning for CRDs and namespaces would need cluster-wide
    # list/watch that least-privilege RBAC does not grant (kopf retries 403s for ~55 s).
    settings.scanning.disabled = True
    return settings


def default_kinds() -> list[KindConfig]:
    from functools import partial

    from credsmith.reconcile.credential import reconcile
    from credsmith.reconcile.kinds import (
        API_CLIENT,
        PLURALS,
        SERVICE_ACCOUNT_CREDENTIAL,
        registry_name_of,
        secret_name_of,
    )

    return [
        KindConfig(
            rules.kind,
            PLURALS[rules.kind],
            partial(reconcile, rules),
            secret_name_of,
            registry_of=registry_name_of if rules is API_CLIENT else None,
        )
        for rules in (SERVICE_ACCOUNT_CREDENTIAL, API_CLIENT)
    ]


def connection_info(configuration: Any) -> kopf.ConnectionInfo:
    """kopf's view of a kubernetes-client configuration (kubeconfig or in-cluster)."""
    keys = configuration.api_key or {}
    token = keys.get("BearerToken") or keys.get("authorization") or ""
    scheme, _, credentials = token.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=credentials or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        username=configuration.username or None,
        password=configuration.password or None,
    )


async def run_operator(options: OperatorOptions, kinds: list[KindConfig] | None = None) -> None:
    loop = asyncio.get_running_loop()
    # Blocking API calls run in this pool: one thread per worker, and a few spare.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=options.workers + 4))
    api = load_config(options.kubeconfig, pool_size=options.workers + 4)
    kube = Kube(api)
    health = Health(probe_api=kube.probe)
    # Served by standbys too, so Prometheus sees every replica (credsmith_leader says which).
    metrics = Metrics() if options.metrics_port else None
    if options.metrics_port:
        start_metrics_server(options.metrics_port)
    runner = await health.serve(options.liveness_port) if options.liveness_port else None
    try:
        if options.leader_elect:
            # client-go's proportions: renew within 2/3 of the lease, retry at 2/15.
            lease = LeaseConfig(
                options.leader_election_namespace,
                options.leader_election_id,
                options.identity,
                lease_duration=options.lease_duration,
                renew_deadline=options.lease_duration * 2 / 3,
                retry_period=options.lease_duration * 2 / 15,
            )
            health.role = "standby"
            elector = LeaderElector(kube, lease)

            async def lead() -> None:
                health.role = "leader"
                if metrics is not None:
                    metrics.leader.set(1)
                await _operate(options, kube, kinds, metrics)

            await elector.run(lead)
        else:
            health.role = "leader"
            if metrics is not None:
                metrics.leader.set(1)
            await _operate(options, kube, kinds, metrics)
    finally:
        if runner is not None:
            await runner.cleanup()


async def _operate(
    options: OperatorOptions,
    kube: Kube,
    kinds: list[KindConfig] | None,
    metrics: Metrics | None,
) -> None:
    controller = Controller(kube, kinds or default_kinds(), options.workers, metrics)
    registry = kopf.OperatorRegistry()
    controller.register(registry)

    @kopf.on.login(registry=registry)
    def login(**_: object) -> kopf.ConnectionInfo:
        # kopf watches with the same identity as our own API calls.
        return connection_info(kube.api.configuration)

    operator = kopf.operator(
        registry=registry,
        settings=kopf_settings(options.workers),
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        stop_flag=options.stop_flag,
    )
    control = asyncio.create_task(controller.run(), name="controller")
    try:
        await operator
    finally:
        control.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await control
