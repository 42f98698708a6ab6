"""Only the operator can make a credential (issue 21, "Planted state is believed"; design.md
behaviour 13), against the real API server: writes to a Secret by someone who may write but
not read Secrets (merge patches, a create) never become a value the operator keeps, lists or
publishes. Each test failed on main d4f13bf, where such state was checked only against
itself.

Chosen values are never recorded as issued values and never printed: assertions describe
them by role.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any, cast

from kubernetes import client

from credsmith.api.enums import HashAlgorithm
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.hashing import hash_secret
from credsmith.reconcile.secret_state import binding_of
from credsmith.runtime.kube import Kube, load_config
from credsmith.runtime.session import ApiError
from credsmith.runtime.state_key import load_state_key
from tests.e2e.cluster import (
    STATE_KEY_NAME,
    STATE_KEY_NAMESPACE,
    Cluster,
    Exposure,
    Operator,
    b64,
    present,
    registry_if_written,
    wait_for,
)
from tests.e2e.test_trust import (
    api_client,
    apply,
    document,
    events,
    get,
    published,
    sacred,
    same,
    secret_data,
    wait_reason,
    wait_revision,
)

CHOSEN = "Chosen0value0of0the0right0shape0AbCdEfGhIjKlMnOp"  # 48 alphanumeric: the default
FAR = "2099-01-01T00:00:00Z"
STATE_MAC = "credsmith.io/state-mac"


def patch_secret(core: client.CoreV1Api, namespace: str, name: str, body: dict[str, Any]) -> None:
    """A JSON merge patch: what someone allowed to patch, not to read, Secrets can send."""
    core.patch_namespaced_secret(name, namespace, body)


def untrusted_messages(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    return [
        e.message
        for e in events(core, namespace, name)
        if (e.type, e.reason) == ("Warning", "Untrusted")
    ]


def registry_verifies(
    core: client.CoreV1Api, namespace: str, tmp: Path, cid: str, value: str
) -> bool:
    registry = registry_if_written(core, namespace, "reg", tmp)
    return registry is not None and registry.verify(cid, value) is not None


def watch_never(seconds: float, check: Any, stop_when: Any = None) -> None:
    """`check()` must hold at every look for `seconds` (or until `stop_when()`)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        if stop_when is not None and stop_when():
            return
        time.sleep(0.2)


def test_a_planted_previous_value_never_verifies(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    apply(cluster, namespace, api_client("victim", roles=[{"id": "admin"}]))
    wait_revision(custom, namespace, "ApiClient", "victim", 1)
    before = secret_data(core, exposure, namespace, "victim")
    cid = before["client_id"]
    wait_for(
        lambda: registry_verifies(core, namespace, tmp_path, cid, before["client_secret"]),
        60,
        what="the issued value registered",
    )
    # Everything the code on main checked, computed as anyone with the source can.
    made = hash_secret(CHOSEN, HashAlgorithm.SHA256)
    binding = binding_of(CHOSEN, HashAlgorithm.SHA256, made)
    patch_secret(
        core,
        namespace,
        "victim",
        {
            "data": {"client_secret_previous": b64(CHOSEN)},
            "metadata": {
                "annotations": {
                    "credsmith.io/previous-fingerprint": fingerprint(CHOSEN),
                    "credsmith.io/previous-expires-at": FAR,
                    "credsmith.io/previous-secret-hash": made,
                    "credsmith.io/previous-secret-hash-binding": f"SHA256:{binding}",
                }
            },
        },
    )

    def never_verifies() -> None:
        verifies = registry_verifies(core, namespace, tmp_path, cid, CHOSEN)
        assert not verifies, "the planted previous value verifies in the registry"

    def reissued() -> bool:
        status = get(custom, namespace, "ApiClient", "victim").get("status") or {}
        return status.get("revision") == 2

    watch_never(60, never_verifies, stop_when=reissued)
    wait_revision(custom, namespace, "ApiClient", "victim", 2)
    watch_never(5, never_verifies)
    after = secret_data(core, exposure, namespace, "victim")
    assert "client_secret_previous" not in after
    assert after["client_id"] == cid
    messages = wait_for(
        lambda: untrusted_messages(core, namespace, "victim"), 30, what="a Warning Untrusted"
    )
    assert any("previous-expires-at" in m for m in messages), messages
    shown = [m for m in messages if CHOSEN in m]
    assert shown == [], "an Event shows the planted value"


def test_a_planted_extra_secret_is_never_adopted(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("extra", extraSecrets=[{"key": "cookie"}]))
    wait_revision(custom, namespace, "ServiceAccountCredential", "extra", 1)
    secret_data(core, exposure, namespace, "extra")
    notes = present(present(core.read_namespaced_secret("extra", namespace).metadata).annotations)
    extras = json.loads(notes["credsmith.io/extra-secrets"])  # derivable from the spec anyway
    extras["cookie"]["fingerprint"] = fingerprint(CHOSEN)
    planted = json.dumps(extras, sort_keys=True, separators=(",", ":"))
    patch_secret(
        core,
        namespace,
        "extra",
        {
            "data": {"cookie": b64(CHOSEN)},
            "metadata": {"annotations": {"credsmith.io/extra-secrets": planted}},
        },
    )

    def never_listed() -> None:
        status = get(custom, namespace, "ServiceAccountCredential", "extra").get("status") or {}
        prints = [e.get("fingerprint") for e in status.get("extraSecrets") or ()]
        assert fingerprint(CHOSEN) not in prints, "status.extraSecrets lists the planted value"

    def replaced() -> bool:
        raw = core.read_namespaced_secret("extra", namespace)
        value = (raw.data or {}).get("cookie")
        return value is not None and not same(cast(str, value), b64(CHOSEN))

    watch_never(60, never_listed, stop_when=replaced)
    assert replaced(), "the planted extra value was kept"
    watch_never(5, never_listed)
    messages = wait_for(
        lambda: untrusted_messages(core, namespace, "extra"), 30, what="a Warning Untrusted"
    )
    assert any("extra-secrets" in m for m in messages), messages


def test_a_secret_made_before_its_api_client_is_a_conflict_and_never_listed(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    cid = "planted-client"
    # Labelled and annotated as credsmith wrote it (state version 1, which main read
    # leniently), before the ApiClient exists.
    core.create_namespaced_secret(
        namespace,
        cast(
            client.V1Secret,
            {
                "metadata": {
                    "name": "early",
                    "labels": {"app.kubernetes.io/managed-by": "credsmith"},
                    "annotations": {
                        "credsmith.io/owner": "ApiClient/early",
                        "credsmith.io/revision": "1",
                        "credsmith.io/issued-at": "2026-01-01T00:00:00Z",
                        "credsmith.io/rotated-at": "2026-01-01T00:00:00Z",
                        "credsmith.io/id": str(uuid.uuid4()),
                        "credsmith.io/secret-hash": hash_secret(CHOSEN, HashAlgorithm.SHA256),
                        "credsmith.io/secret-hash-of": f"SHA256:{fingerprint(CHOSEN)}",
                    },
                },
                "data": {"client_id": b64(cid), "client_secret": b64(CHOSEN)},
            },
        ),
    )
    apply(cluster, namespace, api_client("early", roles=[{"id": "admin"}]))
    apply(cluster, namespace, api_client("witness"))  # writes the registry meanwhile
    wait_revision(custom, namespace, "ApiClient", "witness", 1)

    def never_listed() -> None:
        assert not registry_verifies(core, namespace, tmp_path, cid, CHOSEN), "planted verifies"
        found = json.dumps(document(core, namespace))
        assert cid not in found, "the planted client ID is listed"
        assert not published(CHOSEN, found), "the planted hash is published"

    wait_for(lambda: registry_verifies_any(core, namespace), 60, what="the registry")
    obj = wait_reason(custom, namespace, "ApiClient", "early", "SecretConflict")
    assert (obj.get("status") or {}).get("clientId") is None
    watch_never(10, never_listed)
    raw = core.read_namespaced_secret("early", namespace)
    assert present(present(raw.metadata).annotations).get(STATE_MAC) is None  # untouched
    assert same(cast(str, present(raw.data)["client_secret"]), b64(CHOSEN))


def registry_verifies_any(core: client.CoreV1Api, namespace: str) -> bool:
    try:
        core.read_namespaced_secret("reg", namespace)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_a_rotated_at_moved_into_the_future_is_not_believed(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("clock", rotation={"period": "720h"}))
    wait_revision(custom, namespace, "ServiceAccountCredential", "clock", 1)
    secret_data(core, exposure, namespace, "clock")
    patch_secret(
        core, namespace, "clock", {"metadata": {"annotations": {"credsmith.io/rotated-at": FAR}}}
    )
    obj = wait_revision(custom, namespace, "ServiceAccountCredential", "clock", 2)
    secret_data(core, exposure, namespace, "clock")
    assert not obj["status"]["nextRotationAt"].startswith("2099")
    assert not obj["status"]["rotatedAt"].startswith("2099")
    messages = wait_for(
        lambda: untrusted_messages(core, namespace, "clock"), 30, what="a Warning Untrusted"
    )
    assert any("rotated-at" in m for m in messages), messages


def test_a_planted_revision_is_not_believed_nor_followed(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("counter"))
    wait_revision(custom, namespace, "ServiceAccountCredential", "counter", 1)
    secret_data(core, exposure, namespace, "counter")
    patch_secret(
        core,
        namespace,
        "counter",
        {"metadata": {"annotations": {"credsmith.io/revision": "2147483647"}}},
    )
    wait_revision(custom, namespace, "ServiceAccountCredential", "counter", 2)
    secret_data(core, exposure, namespace, "counter")

    def settled_at_two() -> None:
        obj = get(custom, namespace, "ServiceAccountCredential", "counter")
        assert obj["status"]["revision"] == 2, "re-issued more than once"

    watch_never(10, settled_at_two)
    raw = core.read_namespaced_secret("counter", namespace)
    assert present(present(raw.metadata).annotations)["credsmith.io/revision"] == "2"
    messages = untrusted_messages(core, namespace, "counter")
    assert any("revision" in m for m in messages), messages


def test_two_operators_starting_together_make_one_state_key(cluster: Cluster) -> None:
    """Both find no key Secret and create one: the API server lets one create win (409 for
    the other), and both end up with the winner's key."""
    name = f"state-key-race-{uuid.uuid4().hex[:8]}"
    outcomes: list[str] = []

    class Recording:
        """Both replicas read before either creates (a barrier), as when they start in the
        same instant: otherwise the second may simply find the first's key."""

        def __init__(self, kube: Kube, both_read: asyncio.Barrier) -> None:
            self.kube = kube
            self.both_read: asyncio.Barrier | None = both_read

        async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
            found = await self.kube.get_secret(namespace, name)
            if self.both_read is not None:  # the first read only (a 409 reads again)
                await self.both_read.wait()
                self.both_read = None
            return found

        async def create_secret(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
            try:
                made = await self.kube.create_secret(namespace, body)
            except ApiError as exc:
                outcomes.append(str(exc.status))
                raise
            outcomes.append("created")
            return made

    async def race() -> list[bytes]:
        replicas = [Kube(load_config(str(cluster.kubeconfig))) for _ in range(2)]
        both_read = asyncio.Barrier(2)
        try:
            keys = await asyncio.gather(
                *(
                    load_state_key(Recording(k, both_read), STATE_KEY_NAMESPACE, name)
                    for k in replicas
                )
            )
        finally:
            for kube in replicas:
                await kube.close()
        return [key.material for key in keys]

    first, second = asyncio.run(race())
    assert sorted(outcomes) == ["409", "created"]
    assert first == second, "the replicas hold different keys"
    assert asyncio.run(race()) == [first, first]  # and a restart reads it, never replaces it
    assert sorted(outcomes) == ["409", "created"]


def test_the_operator_made_its_state_key_and_authenticates_what_it_writes(
    cluster: Cluster,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
) -> None:
    apply(cluster, namespace, sacred("sealed"))
    wait_revision(custom, namespace, "ServiceAccountCredential", "sealed", 1)
    secret_data(core, exposure, namespace, "sealed")
    key = core.read_namespaced_secret(STATE_KEY_NAME, STATE_KEY_NAMESPACE)
    assert key.immutable is True
    assert present(present(key.metadata).labels).get("app.kubernetes.io/managed-by") != "credsmith"
    raw = core.read_namespaced_secret("sealed", namespace)
    assert present(present(raw.metadata).annotations)[STATE_MAC].startswith("hmac-sha256:")
    material = cast(str, present(key.data)["key"])
    assert material not in operator.logs(), "the state key is in the operator's log"
