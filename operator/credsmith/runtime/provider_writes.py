"""A provider's status, as its pass writes it (the operator writes nothing else on it).

reconcile/provider_status.py decides the status (pure); this module validates the spec it
is decided for and patches it. Split from runtime/providers.py, which runs the passes; the
clean-up's Warning Event is runtime/provider_cleanup.py's.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from credsmith.api.identity_provider import ClusterIdentityProviderSpec, IdentityProviderSpec
from credsmith.api.status import Reason
from credsmith.reconcile.provider_status import CleanupOutcome, provider_status
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.kinds import Key
from credsmith.runtime.kube import ApiError, Kube
from credsmith.runtime.provider_kinds import (
    CLUSTER_IDENTITY_PROVIDER,
    PROVIDER_PLURALS,
    provider_name,
)

log = logging.getLogger("credsmith.providers")


async def write_status(
    kube: Kube,
    key: Key,
    resource: ResourceSnapshot,
    ready: bool,
    reason: str,
    message: str,
    clients: int | None,
    cleanup: CleanupOutcome | None,
) -> str | None:
    """Patch the provider's status when the pass changed it. Returns the resourceVersion
    the patch made (its watch event is our own echo), None when nothing was written."""
    model = (
        ClusterIdentityProviderSpec if key[0] == CLUSTER_IDENTITY_PROVIDER else IdentityProviderSpec
    )
    try:
        spec = model.model_validate(resource.spec)
    except ValueError:
        return None  # the API server's schema refuses such a spec: a stale cache at most
    status = provider_status(
        spec,
        resource.generation,
        resource.status,
        datetime.now(UTC),
        reason=Reason(reason),
        message=message,
        clients=clients,
        cleanup=cleanup,
    )
    if status == resource.status:
        return None
    kind, namespace, name = key
    try:
        patched = await kube.patch_status(
            PROVIDER_PLURALS[kind], namespace, name, {"status": status}
        )
    except ApiError as exc:
        log.warning("%s %s: cannot write status: %s", kind, provider_name(key), exc)
        return None
    return str((patched.get("metadata") or {}).get("resourceVersion", ""))
