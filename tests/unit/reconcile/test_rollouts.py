"""What a consumer workload says of itself: workload_of reads its rollout annotation and
whether its rollout has completed (as `kubectl rollout status` judges), garbage read as
incomplete; the annotation key and field manager stay within the API server's limits."""

import copy
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from credsmith import GROUP
from credsmith.api.enums import WorkloadKind
from credsmith.reconcile.rollouts import (
    field_manager,
    rollout_annotation,
    rollout_patch,
    uses_secret,
    workload_of,
)

ANNOTATION = rollout_annotation("ServiceAccountCredential", "billing")
SECRET = "billing"
DEPLOYMENT, STATEFUL_SET, DAEMON_SET = (
    WorkloadKind.DEPLOYMENT,
    WorkloadKind.STATEFUL_SET,
    WorkloadKind.DAEMON_SET,
)
# A qualified name's name part, and a DNS subdomain prefix (as the API server checks).
NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def body(
    kind: WorkloadKind,
    status: dict[str, Any],
    spec: dict[str, Any] | None = None,
    revision: Any = "2",
    generation: Any = 3,
) -> dict[str, Any]:
    annotations = {} if revision is None else {ANNOTATION: revision}
    return {
        "apiVersion": "apps/v1",
        "kind": kind.value,
        "metadata": {
            "name": "web",
            "namespace": "team-a",
            "generation": generation,
            "creationTimestamp": "2025-03-01T09:00:00Z",
        },
        "spec": {
            **({"replicas": 2} if kind is not DAEMON_SET else {}),
            "template": {"metadata": {"annotations": annotations}},
            **(spec or {}),
        },
        "status": status,
    }


DEPLOYMENT_DONE = {
    "observedGeneration": 3,
    "replicas": 2,
    "updatedReplicas": 2,
    "availableReplicas": 2,
    "readyReplicas": 2,
}
STATEFUL_SET_DONE = {
    "observedGeneration": 3,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "currentRevision": "web-7d9f",
    "updateRevision": "web-7d9f",
}
DAEMON_SET_DONE = {
    "observedGeneration": 3,
    "desiredNumberScheduled": 3,
    "currentNumberScheduled": 3,
    "updatedNumberScheduled": 3,
    "numberAvailable": 3,
    "numberReady": 3,
}
DONE: dict[WorkloadKind, dict[str, Any]] = {
    DEPLOYMENT: DEPLOYMENT_DONE,
    STATEFUL_SET: STATEFUL_SET_DONE,
    DAEMON_SET: DAEMON_SET_DONE,
}


def read(kind: WorkloadKind, status: dict[str, Any], **kwargs: Any) -> Any:
    return workload_of(kind, body(kind, status, **kwargs), ANNOTATION, SECRET)


# ---- what is read ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(WorkloadKind))
def test_complete_rollout(kind: WorkloadKind) -> None:
    workload = read(kind, DONE[kind])
    assert workload.complete is True
    assert workload.kind is kind
    assert workload.name == "web"
    assert workload.ref == f"{kind.value}/web"
    assert workload.rolled_to == 2
    assert workload.created_at == datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    assert workload.progress


@pytest.mark.parametrize("kind", list(WorkloadKind))
def test_controller_behind_is_incomplete(kind: WorkloadKind) -> None:
    for seen in ({"observedGeneration": 2}, {"observedGeneration": None}):
        status = {**DONE[kind], **seen}
        workload = read(kind, status)
        assert workload.complete is False
        assert workload.progress == "its controller has not seen the change yet"
    # No observedGeneration at all.
    status = {k: v for k, v in DONE[kind].items() if k != "observedGeneration"}
    assert read(kind, status).complete is False
    # No generation in metadata: nothing to compare with.
    assert read(kind, DONE[kind], generation=None).complete is False


@pytest.mark.parametrize("kind", list(WorkloadKind))
def test_controller_ahead_is_current(kind: WorkloadKind) -> None:
    assert read(kind, {**DONE[kind], "observedGeneration": 4}).complete is True


DEPLOYMENT_INCOMPLETE = {
    "old replicas still present": {"replicas": 3},
    "not all updated": {"updatedReplicas": 1},
    "unavailable": {"availableReplicas": 1},
    "none available": {"availableReplicas": None},
}


@pytest.mark.parametrize("change", DEPLOYMENT_INCOMPLETE.values(), ids=DEPLOYMENT_INCOMPLETE)
def test_deployment_incomplete(change: dict[str, Any]) -> None:
    status = {k: v for k, v in {**DEPLOYMENT_DONE, **change}.items() if v is not None}
    workload = read(DEPLOYMENT, status)
    assert workload.complete is False
    assert "of 2 updated" in workload.progress


def test_deployment_replicas_default_to_one_and_zero_is_done() -> None:
    one = {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    deployment = body(DEPLOYMENT, one)
    del deployment["spec"]["replicas"]
    assert workload_of(DEPLOYMENT, deployment, ANNOTATION, SECRET).complete is True
    scaled_down = read(DEPLOYMENT, {"observedGeneration": 3}, spec={"replicas": 0})
    assert scaled_down.complete is True


STATEFUL_SET_INCOMPLETE = {
    "revisions differ": {"currentRevision": "web-1111"},
    "not all updated": {"updatedReplicas": 1},
    "not ready": {"readyReplicas": 1},
    "no update revision": {"updateRevision": None},
}


@pytest.mark.parametrize("change", STATEFUL_SET_INCOMPLETE.values(), ids=STATEFUL_SET_INCOMPLETE)
def test_stateful_set_incomplete(change: dict[str, Any]) -> None:
    status = {k: v for k, v in {**STATEFUL_SET_DONE, **change}.items() if v is not None}
    assert read(STATEFUL_SET, status).complete is False


def partitioned(partition: Any) -> dict[str, Any]:
    return {"replicas": 4, "updateStrategy": {"rollingUpdate": {"partition": partition}}}


def test_stateful_set_with_a_partition() -> None:
    # Pods below the partition are never updated: the rollout is done once the pods at or
    # above it are, whatever the revisions say.
    base = {**STATEFUL_SET_DONE, "replicas": 4, "readyReplicas": 4, "currentRevision": "old"}
    assert read(STATEFUL_SET, {**base, "updatedReplicas": 1}, spec=partitioned(3)).complete
    assert read(STATEFUL_SET, {**base, "updatedReplicas": 2}, spec=partitioned(3)).complete
    assert not read(STATEFUL_SET, {**base, "updatedReplicas": 0}, spec=partitioned(3)).complete
    assert not read(STATEFUL_SET, {**base, "updatedReplicas": 1}, spec=partitioned(2)).complete
    not_ready = {**base, "updatedReplicas": 1, "readyReplicas": 3}
    assert not read(STATEFUL_SET, not_ready, spec=partitioned(3)).complete
    # Partition 0 is no partition: the revisions must agree.
    assert not read(STATEFUL_SET, {**base, "updatedReplicas": 4}, spec=partitioned(0)).complete
    done = {**base, "updatedReplicas": 4, "currentRevision": "web-7d9f"}
    assert read(STATEFUL_SET, done, spec=partitioned(0)).complete


@pytest.mark.parametrize("partition", ["3", -1, True, 2.5, None])
def test_stateful_set_garbage_partition_is_no_partition(partition: Any) -> None:
    base = {**STATEFUL_SET_DONE, "replicas": 4, "readyReplicas": 4, "currentRevision": "old"}
    status = {**base, "updatedReplicas": 1}
    assert not read(STATEFUL_SET, status, spec=partitioned(partition)).complete


DAEMON_SET_INCOMPLETE = {
    "not all updated": {"updatedNumberScheduled": 2},
    "unavailable": {"numberAvailable": 2},
    "none available": {"numberAvailable": None},
}


@pytest.mark.parametrize("change", DAEMON_SET_INCOMPLETE.values(), ids=DAEMON_SET_INCOMPLETE)
def test_daemon_set_incomplete(change: dict[str, Any]) -> None:
    status = {k: v for k, v in {**DAEMON_SET_DONE, **change}.items() if v is not None}
    workload = read(DAEMON_SET, status)
    assert workload.complete is False
    assert "of 3 updated" in workload.progress


COUNT_FIELDS = {
    DEPLOYMENT: ("updatedReplicas", "availableReplicas", "replicas"),
    STATEFUL_SET: ("updatedReplicas", "readyReplicas"),
    DAEMON_SET: ("updatedNumberScheduled", "numberAvailable", "desiredNumberScheduled"),
}
GARBAGE = ["2", "3", -2, True, 2.0, None, [2], {"n": 2}]


@pytest.mark.parametrize("kind", list(WorkloadKind))
@pytest.mark.parametrize("garbage", GARBAGE, ids=repr)
def test_garbage_in_status_reads_as_incomplete(kind: WorkloadKind, garbage: Any) -> None:
    for name in (*COUNT_FIELDS[kind], "observedGeneration"):
        status = {**DONE[kind], name: garbage}
        if kind is DAEMON_SET and name == "desiredNumberScheduled":
            # Garbage desired reads as 0: all three must then agree on 0 to be complete.
            status.update(updatedNumberScheduled=3, numberAvailable=3)
        assert read(kind, status).complete is False, name


@pytest.mark.parametrize("kind", list(WorkloadKind))
@pytest.mark.parametrize("garbage", ["3", -1, True, 2.5, None], ids=repr)
def test_garbage_generation_reads_as_incomplete(kind: WorkloadKind, garbage: Any) -> None:
    assert read(kind, DONE[kind], generation=garbage).complete is False


@pytest.mark.parametrize("kind", list(WorkloadKind))
@pytest.mark.parametrize("status", ["done", 7, None, ["x"]], ids=repr)
def test_status_not_a_map_reads_as_incomplete(kind: WorkloadKind, status: Any) -> None:
    workload = workload_of(kind, {**body(kind, {}), "status": status}, ANNOTATION, SECRET)
    assert workload.complete is False


@pytest.mark.parametrize(
    "whole",
    [{}, {"metadata": "x", "spec": [], "status": 3}, {"spec": {"template": "x"}}],
    ids=repr,
)
def test_garbage_workload_is_read_without_error(whole: dict[str, Any]) -> None:
    workload = workload_of(DEPLOYMENT, whole, ANNOTATION, SECRET)
    assert workload.complete is False
    assert workload.rolled_to is None
    assert workload.created_at is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "2a",
        " 2",
        "2 ",
        "+2",
        "-2",
        "2.0",
        "0x2",
        "\uff12",
        "\u00b2",
        "\u0662",
        2,
        True,
        None,
        ["2"],
    ],
    ids=repr,
)
def test_annotation_that_is_not_plain_digits_is_ignored(value: Any) -> None:
    assert read(DEPLOYMENT, DEPLOYMENT_DONE, revision=value).rolled_to is None


def test_annotation_values() -> None:
    assert read(DEPLOYMENT, DEPLOYMENT_DONE, revision="17").rolled_to == 17
    # Revisions start at 1: "0" is none of ours, as good as never rolled.
    assert read(DEPLOYMENT, DEPLOYMENT_DONE, revision="0").rolled_to is None
    assert read(DEPLOYMENT, DEPLOYMENT_DONE, revision=None).rolled_to is None


def test_only_this_credentials_annotation_counts() -> None:
    workload = body(DEPLOYMENT, DEPLOYMENT_DONE, revision=None)
    other = rollout_annotation("ServiceAccountCredential", "other")
    workload["spec"]["template"]["metadata"]["annotations"] = {
        other: "5",
        "kubectl.kubernetes.io/restartedAt": "2025-03-01T09:00:00Z",
    }
    assert workload_of(DEPLOYMENT, workload, ANNOTATION, SECRET).rolled_to is None
    assert workload_of(DEPLOYMENT, workload, other, SECRET).rolled_to == 5


@pytest.mark.parametrize("created", ["yesterday", 17, "", None], ids=repr)
def test_unreadable_creation_time_is_none(created: Any) -> None:
    workload = body(DEPLOYMENT, DEPLOYMENT_DONE)
    workload["metadata"]["creationTimestamp"] = created
    assert workload_of(DEPLOYMENT, workload, ANNOTATION, SECRET).created_at is None


def test_workload_of_does_not_change_its_input() -> None:
    workload = body(STATEFUL_SET, STATEFUL_SET_DONE, spec=partitioned(1))
    before = copy.deepcopy(workload)
    workload_of(STATEFUL_SET, workload, ANNOTATION, SECRET)
    assert workload == before


# ---- the annotation key and field manager ---------------------------------------------


def valid_annotation_key(key: str) -> bool:
    prefix, _, name = key.partition("/")
    return (
        0 < len(name) <= 63
        and bool(NAME_PART.match(name))
        and len(prefix) <= 253
        and bool(PREFIX.match(prefix))
    )


def test_short_names_are_kept_whole() -> None:
    assert rollout_annotation("ServiceAccountCredential", "billing") == (
        f"serviceaccountcredential.{GROUP}/billing"
    )
    assert rollout_annotation("ApiClient", "web-client") == f"apiclient.{GROUP}/web-client"
    assert valid_annotation_key(ANNOTATION)
    name = "a" * 63
    assert rollout_annotation("ApiClient", name) == f"apiclient.{GROUP}/{name}"


LONG_NAMES = [
    "a" * 64,
    "a" * 253,
    "x." * 126 + "y",  # dots in the cut
    "a" * 49 + "-" + "b" * 203,  # a dash where the name is cut
    "a" * 48 + ".-" + "c" * 203,
    ".".join(["abcdefgh"] * 28)[:253],
]


@pytest.mark.parametrize("kind", ["ServiceAccountCredential", "ApiClient"])
@pytest.mark.parametrize("name", LONG_NAMES, ids=lambda n: f"{len(n)}:{n[45:52]}")
def test_long_names_give_a_valid_annotation_key(kind: str, name: str) -> None:
    key = rollout_annotation(kind, name)
    assert valid_annotation_key(key), key
    assert key == rollout_annotation(kind, name)  # the same every time


def test_long_names_sharing_a_prefix_get_distinct_keys() -> None:
    common = "team-billing-exporter-credentials-for-the-reporting-a"[:60].ljust(60, "x")
    first, second = common + "-one" + "1" * 189, common + "-two" + "2" * 189
    assert len(first) == len(second) == 253
    assert rollout_annotation("ApiClient", first) != rollout_annotation("ApiClient", second)
    near = "n" * 252
    last_a, last_b = (
        rollout_annotation("ApiClient", near + "a"),
        rollout_annotation("ApiClient", near + "b"),
    )
    assert last_a != last_b


def test_kinds_get_distinct_keys() -> None:
    name = "b" * 253
    assert rollout_annotation("ApiClient", name) != rollout_annotation(
        "ServiceAccountCredential", name
    )
    assert rollout_annotation("ApiClient", "web") != rollout_annotation(
        "ServiceAccountCredential", "web"
    )


@pytest.mark.parametrize("kind", ["ServiceAccountCredential", "ApiClient"])
@pytest.mark.parametrize("length", [1, 63, 64, 100, 101, 253])
def test_field_manager_is_at_most_128_characters(kind: str, length: int) -> None:
    name = "m" * length
    manager = field_manager(kind, name)
    assert len(manager) <= 128
    assert manager.startswith("credsmith-")
    assert field_manager(kind, name) == manager


def test_field_manager_short_and_distinct() -> None:
    assert field_manager("ApiClient", "web") == "credsmith-apiclient-web"
    common = "f" * 200
    assert field_manager("ApiClient", common + "1") != field_manager("ApiClient", common + "2")
    assert field_manager("ApiClient", "web") != field_manager("ServiceAccountCredential", "web")


def test_rollout_patch_touches_only_the_annotation() -> None:
    patch = rollout_patch(STATEFUL_SET, "db", ANNOTATION, 3)
    assert patch == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"template": {"metadata": {"annotations": {ANNOTATION: "3"}}}},
    }
    # What it writes is read back as the revision.
    rolled = body(STATEFUL_SET, STATEFUL_SET_DONE, revision=None)
    rolled["spec"]["template"]["metadata"]["annotations"].update(
        patch["spec"]["template"]["metadata"]["annotations"]
    )
    assert workload_of(STATEFUL_SET, rolled, ANNOTATION, SECRET).rolled_to == 3


# ---- consent: the pod template uses the Secret ---------------------------------------


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "app", "image": "app:1", **fields}


ENV = {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": SECRET, "key": "k"}}}]}
ENV_FROM = {"envFrom": [{"configMapRef": {"name": SECRET}}, {"secretRef": {"name": SECRET}}]}
SECRET_VOLUME = {"volumes": [{"name": "v", "secret": {"secretName": SECRET}}]}
PROJECTED = {
    "volumes": [
        {
            "name": "v",
            "projected": {
                "sources": [{"configMap": {"name": SECRET}}, {"secret": {"name": SECRET}}]
            },
        }
    ]
}


@pytest.mark.parametrize(
    "pod_spec",
    [
        {"containers": [container(), container(**ENV)]},
        {"containers": [container(**ENV_FROM)]},
        {"containers": [container()], "initContainers": [container(**ENV)]},
        {"containers": [container()], "initContainers": [container(**ENV_FROM)]},
        {"containers": [container()], **SECRET_VOLUME},
        {"containers": [container()], **PROJECTED},
    ],
    ids=["env", "envFrom", "init-env", "init-envFrom", "secret-volume", "projected-volume"],
)
def test_a_template_that_refers_to_the_secret_uses_it(pod_spec: dict[str, Any]) -> None:
    assert uses_secret(pod_spec, SECRET) is True
    assert uses_secret(pod_spec, "other") is False
    workload = read(DEPLOYMENT, DEPLOYMENT_DONE, spec={"template": {"spec": pod_spec}})
    assert workload.uses_secret is True


@pytest.mark.parametrize(
    "pod_spec",
    [
        {},
        {"containers": [container()]},
        # The same name, but a ConfigMap's.
        {"containers": [container(envFrom=[{"configMapRef": {"name": SECRET}}])]},
        {
            "containers": [
                container(env=[{"name": "X", "valueFrom": {"configMapKeyRef": {"name": SECRET}}}])
            ]
        },
        {"containers": [container()], "volumes": [{"name": "v", "configMap": {"name": SECRET}}]},
        {
            "containers": [container()],
            "volumes": [{"name": "v", "projected": {"sources": [{"configMap": {"name": SECRET}}]}}],
        },
        # An ephemeral container is not part of a template; a volume named like the Secret
        # that is something else is not the Secret.
        {"containers": [container()], "ephemeralContainers": [container(**ENV)]},
        {"containers": [container()], "volumes": [{"name": SECRET, "emptyDir": {}}]},
        # Another Secret, and malformed shapes.
        {"containers": [container(envFrom=[{"secretRef": {"name": "billing-2"}}])]},
        {"containers": "app", "volumes": {"secret": {"secretName": SECRET}}},
        {"containers": [None, 3, {"env": [None, {"valueFrom": "x"}], "envFrom": "y"}]},
    ],
    ids=[
        "empty",
        "none",
        "configmap-envFrom",
        "configmap-env",
        "configmap-volume",
        "projected-configmap",
        "ephemeral",
        "volume-name",
        "other-secret",
        "malformed",
        "malformed-items",
    ],
)
def test_a_template_that_does_not_refer_to_the_secret_does_not_use_it(
    pod_spec: dict[str, Any],
) -> None:
    assert uses_secret(pod_spec, SECRET) is False
    workload = read(DEPLOYMENT, DEPLOYMENT_DONE, spec={"template": {"spec": pod_spec}})
    assert workload.uses_secret is False


@pytest.mark.parametrize(
    "written", ["1" * 5000, "100000000000000000000", "2147483648", "0", "²", "+2", " 2", 2]
)
def test_an_annotation_that_is_not_one_of_our_revisions_counts_as_never_rolled(
    written: Any,
) -> None:
    # Anyone who may edit the workload may write it: int() refuses past 4300 digits, and a
    # number past our revisions would be shown in status as the revision rolled out.
    assert read(DEPLOYMENT, DEPLOYMENT_DONE, revision=written).rolled_to is None
    assert read(DEPLOYMENT, DEPLOYMENT_DONE, revision="2147483647").rolled_to == 2**31 - 1
