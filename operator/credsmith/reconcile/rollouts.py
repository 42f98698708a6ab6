"""What a consumer workload says of itself: its rollout annotation, whether its rollout
has completed, and whether its pod template uses the credential's Secret at all. Pure: from
the workload's JSON, read with the same care as a Secret.

A rollout is complete as `kubectl rollout status` judges it: the workload's controller has
seen the current spec (observedGeneration), and every replica (every scheduled pod, for a
DaemonSet) is updated and available, with no old one left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credsmith import GROUP
from credsmith.api.enums import WorkloadKind
from credsmith.api.status import parse_revision, parse_timestamp

PLURALS = {
    WorkloadKind.DEPLOYMENT: "deployments",
    WorkloadKind.STATEFUL_SET: "statefulsets",
    WorkloadKind.DAEMON_SET: "daemonsets",
}

# The name part of an annotation key: at most 63 characters.
_MAX_NAME_PART = 63


@dataclass(frozen=True)
class Workload:
    kind: WorkloadKind
    name: str
    # The credential revision this credential's pod-template annotation holds (None: none,
    # or not a revision number: then it was not written by us and counts as never rolled).
    rolled_to: int | None
    created_at: datetime | None
    complete: bool
    progress: str  # for people: "1 of 2 updated, 1 available"
    # Its pod template refers to the credential's Secret: its owner's consent to be rolled
    # (a selector may match workloads that have nothing to do with the credential).
    uses_secret: bool = True

    @property
    def ref(self) -> str:
        return f"{self.kind.value}/{self.name}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind.value, self.name)


def rollout_annotation(kind: str, name: str) -> str:
    """The pod-template annotation key one credential owns, e.g.
    `apiclient.credsmith.io/web-client`: one per credential, so that two credentials
    consumed by one workload each write their own key (and their own field manager)."""
    prefix = f"{kind.lower()}.{GROUP}"
    if len(name) <= _MAX_NAME_PART:
        return f"{prefix}/{name}"
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{prefix}/{name[: _MAX_NAME_PART - 13].rstrip('.-')}-{digest}"


def field_manager(kind: str, name: str) -> str:
    """The server-side apply field manager of one credential's rollout annotations (at most
    128 characters, as the API server requires)."""
    manager = f"credsmith-{kind.lower()}-{name}"
    if len(manager) <= 128:
        return manager
    return f"{manager[:100]}-{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def rollout_patch(kind: WorkloadKind, name: str, annotation: str, revision: int) -> dict[str, Any]:
    """The server-side apply body that rolls a workload: only our annotation, nothing else."""
    return {
        "apiVersion": "apps/v1",
        "kind": kind.value,
        "metadata": {"name": name},
        "spec": {"template": {"metadata": {"annotations": {annotation: str(revision)}}}},
    }


def workload_of(
    kind: WorkloadKind, body: Mapping[str, Any], annotation: str, secret_name: str
) -> Workload:
    metadata = _map(body.get("metadata"))
    spec, status = _map(body.get("spec")), _map(body.get("status"))
    template = _map(_map(spec.get("template")).get("metadata"))
    pod_spec = _map(_map(spec.get("template")).get("spec"))
    raw = _map(template.get("annotations")).get(annotation)
    rolled_to = parse_revision(raw)  # what a person wrote there is no revision
    generation = _count(metadata.get("generation"))
    seen = _count(status.get("observedGeneration"))
    current = generation is not None and seen is not None and seen >= generation
    if kind is WorkloadKind.DAEMON_SET:
        complete, progress = _daemon_set(status)
    elif kind is WorkloadKind.STATEFUL_SET:
        complete, progress = _stateful_set(spec, status)
    else:
        complete, progress = _deployment(spec, status)
    return Workload(
        kind=kind,
        name=str(metadata.get("name", "")),
        rolled_to=rolled_to,
        created_at=_time(metadata.get("creationTimestamp")),
        complete=current and complete,
        progress=progress if current else "its controller has not seen the change yet",
        uses_secret=uses_secret(pod_spec, secret_name),
    )


def uses_secret(pod_spec: Mapping[str, Any], secret_name: str) -> bool:
    """Whether a pod template's spec refers to the Secret: an env `secretKeyRef`, an
    `envFrom` `secretRef` (of a container or an init container), a `secret` volume or a
    `projected` volume's `secret` source. Ephemeral containers are not part of a template."""
    containers = [*_list(pod_spec.get("containers")), *_list(pod_spec.get("initContainers"))]
    for container in containers:
        for env in _list(container.get("env")):
            ref = _map(_map(env.get("valueFrom")).get("secretKeyRef"))
            if ref.get("name") == secret_name:
                return True
        for source in _list(container.get("envFrom")):
            if _map(source.get("secretRef")).get("name") == secret_name:
                return True
    for volume in _list(pod_spec.get("volumes")):
        if _map(volume.get("secret")).get("secretName") == secret_name:
            return True
        for source in _list(_map(volume.get("projected")).get("sources")):
            if _map(source.get("secret")).get("name") == secret_name:
                return True
    return False


def _deployment(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[bool, str]:
    wanted = _replicas(spec)
    updated, total = _counts(status, "updatedReplicas", "replicas")
    available = _counts(status, "availableReplicas")[0]
    complete = updated == wanted and total == updated and available == updated
    return complete, f"{updated} of {wanted} updated, {available} available, {total} in all"


def _stateful_set(spec: Mapping[str, Any], status: Mapping[str, Any]) -> tuple[bool, str]:
    wanted = _replicas(spec)
    updated, ready = _counts(status, "updatedReplicas", "readyReplicas")
    strategy = _map(spec.get("updateStrategy"))
    partition = _count(_map(strategy.get("rollingUpdate")).get("partition")) or 0
    if partition > 0:
        complete = updated >= wanted - partition and ready == wanted
    else:
        same = status.get("updateRevision") == status.get("currentRevision")
        complete = same and updated == wanted and ready == wanted
    return complete, f"{updated} of {wanted} updated, {ready} ready"


def _daemon_set(status: Mapping[str, Any]) -> tuple[bool, str]:
    desired, updated, available = _counts(
        status, "desiredNumberScheduled", "updatedNumberScheduled", "numberAvailable"
    )
    complete = updated == desired and available == desired
    return complete, f"{updated} of {desired} updated, {available} available"


def _replicas(spec: Mapping[str, Any]) -> int:
    replicas = spec.get("replicas", 1)
    count = _count(replicas)
    return 1 if count is None else count


def _counts(status: Mapping[str, Any], *names: str) -> tuple[int, ...]:
    return tuple(_count(status.get(name)) or 0 for name in names)


def _count(value: Any) -> int | None:
    # bool is an int in Python; a count in JSON never is one.
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    """The mappings of a JSON list (anything else in it is skipped)."""
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None
