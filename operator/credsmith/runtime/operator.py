"""`credsmith run`: health, metrics, the state key, leader election, and the controller with
its watches.

Order: the state key (runtime/state_key.py) is loaded, or created, before leader election,
so that no reconcile can ever start without it and a standby that takes over has it ready;
a replica that cannot load it (RBAC, a malformed key Secret) fails at start, visibly, not
when it becomes leader."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from credsmith.reconcile.shared_rollouts import DEFAULT_WINDOW
from credsmith.reconcile.state_mac import StateKey
from credsmith.runtime.controller import Controller
from credsmith.runtime.health import Health
from credsmith.runtime.kinds import KindConfig
from credsmith.runtime.kube import Kube, load_config
from credsmith.runtime.leader import LeaderElector, LeaseConfig
from credsmith.runtime.metrics import Metrics, start_metrics_server
from credsmith.runtime.provider_kinds import ProviderOptions
from credsmith.runtime.state_key import DEFAULT_NAME as STATE_KEY_NAME
from credsmith.runtime.state_key import wait_for_state_key

log = logging.getLogger("credsmith")


@dataclass
class OperatorOptions:
    namespaces: Sequence[str] = ()  # empty: every namespace
    kubeconfig: str | None = None
    workers: int = 16
    liveness_port: int | None = 8081
    metrics_port: int | None = 8080
    resource_metrics: bool = True  # the credsmith_credential_* series, one per resource
    # Lease-based leader election: one replica acts, the others wait.
    leader_elect: bool = False
    leader_election_namespace: str = "default"
    leader_election_id: str = "credsmith-operator"
    lease_duration: float = 15.0
    # The Secret holding the key that authenticates the state on credential Secrets.
    state_key_namespace: str = "default"
    state_key_name: str = STATE_KEY_NAME
    # Exit when the first listings take longer (controller-runtime's CacheSyncTimeout).
    cache_sync_timeout: float = 120.0
    # Credentials that share a consumer and rotate within this window roll it once.
    consumer_roll_window: timedelta = DEFAULT_WINDOW
    # URL prefixes an identity provider may point at (empty: any URL).
    identity_provider_url_allow: Sequence[str] = ()
    # ClusterIdentityProviders and namespaces watched cluster-wide (off: namespaced RBAC).
    cluster_identity_providers: bool = True
    identity: str = field(default_factory=lambda: socket.gethostname())
    stop_flag: asyncio.Event | None = field(default=None, repr=False)


def default_kinds(state_key: StateKey) -> list[KindConfig]:
    from functools import partial

    from credsmith.reconcile.credential import reconcile
    from credsmith.reconcile.kinds import (
        API_CLIENT,
        PLURALS,
        SERVICE_ACCOUNT_CREDENTIAL,
        is_light,
        jwks_name_of,
        registry_name_of,
        secret_name_of,
    )

    return [
        KindConfig(
            rules.kind,
            PLURALS[rules.kind],
            partial(reconcile, rules, state_key=state_key),
            secret_name_of,
            registry_of=registry_name_of if rules is API_CLIENT else None,
            jwks_of=jwks_name_of if rules is SERVICE_ACCOUNT_CREDENTIAL else None,
            light=is_light,
        )
        for rules in (SERVICE_ACCOUNT_CREDENTIAL, API_CLIENT)
    ]


async def run_operator(options: OperatorOptions, kinds: list[KindConfig] | None = None) -> None:
    loop = asyncio.get_running_loop()
    # Reconcile passes that may be slow run in this pool (issuing an RSA-4096 key or an
    # Argon2id hash takes a while; the others run on the loop, kinds.is_light): one thread
    # per worker, and a few spare.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=options.workers + 4))
    kube = Kube(load_config(options.kubeconfig), pool_size=options.workers + 4)
    health = Health(probe_api=kube.probe)
    # Served by standbys too, so Prometheus sees every replica (credsmith_leader says which).
    metrics = Metrics(per_resource=options.resource_metrics) if options.metrics_port else None
    if options.metrics_port:
        start_metrics_server(options.metrics_port)
    runner = await health.serve(options.liveness_port) if options.liveness_port else None
    stop = options.stop_flag
    if stop is None:
        stop = asyncio.Event()
        _stop_on_signals(stop)
    try:
        await _until_stopped(_lead_or_operate(options, kube, health, kinds, metrics), stop)
    finally:
        await kube.close()
        if runner is not None:
            await runner.cleanup()


async def _lead_or_operate(
    options: OperatorOptions,
    kube: Kube,
    health: Health,
    kinds: list[KindConfig] | None,
    metrics: Metrics | None,
) -> None:
    state_key = await wait_for_state_key(kube, options.state_key_namespace, options.state_key_name)

    async def lead() -> None:
        health.role = "leader"
        if metrics is not None:
            metrics.leader.set(1)
        await _operate(options, kube, health, kinds, metrics, state_key)

    if not options.leader_elect:
        await lead()
        return
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
    await LeaderElector(kube, lease).run(lead)


async def _operate(
    options: OperatorOptions,
    kube: Kube,
    health: Health,
    kinds: list[KindConfig] | None,
    metrics: Metrics | None,
    state_key: StateKey,
) -> None:
    controller = Controller(
        kube,
        kinds or default_kinds(state_key),
        state_key,
        options.workers,
        metrics,
        options.cache_sync_timeout,
        options.consumer_roll_window,
        ProviderOptions(
            url_allow=options.identity_provider_url_allow,
            # A ClusterIdentityProvider's admin Secret: beside the state key.
            operator_namespace=options.state_key_namespace,
            watched_namespaces=options.namespaces,
            cluster_kinds=options.cluster_identity_providers,
        ),
    )
    health.liveness = controller.liveness_problem
    health.synced = lambda: controller.synced
    await controller.run(controller.informers(options.namespaces))


async def _until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> None:
    """Run `work` until it ends or `stop` is set (SIGTERM/SIGINT, or the caller's flag)."""
    task = asyncio.ensure_future(work)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stopping):
            pending.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await task  # its exception, if it failed, propagates


def _stop_on_signals(stop: asyncio.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # an embedding program owns the signals
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
