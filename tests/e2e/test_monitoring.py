"""Per-resource metrics on a live operator's /metrics, checked by promtool; tenants' roles
aggregated into the built-in view, edit and admin, as the API server decides them."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client

from tests.e2e.cluster import GROUP, VERSION, Cluster, Exposure, Operator, manifest, wait_for
from tests.e2e.faults import free_port

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "credsmith"
PLURAL = "serviceaccountcredentials"
KIND = "ServiceAccountCredential"
PER_RESOURCE = re.compile(r"^(credsmith_credential_\w+)\{([^}]*)\} (\S+)$", re.MULTILINE)

Series = dict[str, dict[str, float]]  # metric -> resource name -> value


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text: str = response.read().decode()
        return text


def per_resource(text: str, namespace: str) -> Series:
    """The credsmith_credential_* samples of `namespace`, checking each one's label set."""
    found: Series = {}
    for metric, labels, value in PER_RESOURCE.findall(text):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        assert set(pairs) == {"namespace", "name", "kind"}, labels
        if pairs["namespace"] == namespace:
            assert pairs["kind"] == KIND
            found.setdefault(metric, {})[pairs["name"]] = float(value)
    return found


def status_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    obj = cast(
        dict[str, Any], custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    )
    status: dict[str, Any] = obj.get("status") or {}
    return status


def at(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def test_per_resource_series_follow_status_rotation_and_deletion(
    cluster: Cluster,
    custom: client.CustomObjectsApi,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    tmp_path: Path,
) -> None:
    operator.stop()  # this test's operator, with a metrics port, watches only its namespace
    port, metrics_port = free_port(), free_port()
    watcher = Operator(cluster, tmp_path)
    watcher.start(
        f"--liveness-port={port}", f"--metrics-port={metrics_port}", f"--namespace={namespace}"
    )
    texts: list[str] = []

    def series() -> Series:
        texts.append(scrape(metrics_port))
        return per_resource(texts[-1], namespace)

    try:
        body = manifest(
            KIND,
            "watched",
            {"serviceAccount": "watched", "rotation": {"period": "720h", "overlap": "15s"}},
        )
        other = manifest(KIND, "other", {"serviceAccount": "other"})
        for obj in (body, other):
            cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))
        first = wait_for(
            lambda: (s := status_of(custom, namespace, "watched")).get("revision") == 1 and s,
            60,
            interval=0.2,
            what="revision 1",
        )
        found = wait_for(
            lambda: len((s := series()).get("credsmith_credential_ready", {})) == 2 and s,
            30,
            what="both resources' series",
        )
        assert found["credsmith_credential_ready"] == {"watched": 1.0, "other": 1.0}
        rotated = found["credsmith_credential_rotated_timestamp_seconds"]
        assert rotated["watched"] == at(first["rotatedAt"])
        next_rotation = found["credsmith_credential_next_rotation_timestamp_seconds"]
        assert next_rotation["watched"] == at(first["nextRotationAt"])
        # No previous value, no consumers: those series are absent, not 0.
        assert "credsmith_credential_previous_expiration_timestamp_seconds" not in found
        assert "credsmith_credential_consumers_lagging" not in found

        # The live exposition passes promtool's lint.
        checked = subprocess.run(
            [str(cluster.bin_dir / "promtool"), "check", "metrics"],
            input=texts[-1],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr

        body["metadata"]["annotations"] = {"credsmith.io/rotate": "once"}
        cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
        second = wait_for(
            lambda: (s := status_of(custom, namespace, "watched")).get("revision") == 2 and s,
            90,
            interval=0.2,
            what="revision 2",
        )
        previous = "credsmith_credential_previous_expiration_timestamp_seconds"
        found = wait_for(
            lambda: "watched" in (s := series()).get(previous, {}) and s, 30, what="previous"
        )
        assert found[previous] == {"watched": at(second["previousExpiresAt"])}
        rotated_now = found["credsmith_credential_rotated_timestamp_seconds"]["watched"]
        # The series follows status's rotatedAt of revision 2 (whole seconds: it may be the
        # second of the issue, when the rotation came within it).
        assert rotated_now == at(second["rotatedAt"]) >= rotated["watched"]
        # The previous value retires: its series goes.
        wait_for(lambda: previous not in series(), 60, what="the previous value's series to go")

        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "watched")

        def watched_gone() -> bool:
            now = series()
            return all("watched" not in values for values in now.values()) and bool(now)

        wait_for(watched_gone, 30, what="the deleted resource's series to go")
        assert series()["credsmith_credential_ready"] == {"other": 1.0}
    finally:
        watcher.stop()
        exposure.shown.extend(texts[-3:])  # scanned for secret values by test_zz_secrecy
        exposure.shown.append(watcher.logs())


def can_i(cluster: Cluster, account: str, *args: str) -> bool:
    result = cluster.kubectl("auth", "can-i", f"--as={account}", *args, check=False)
    return result.stdout.strip() == "yes"


def test_tenants_edit_and_view_through_the_built_in_roles(cluster: Cluster, namespace: str) -> None:
    release = f"credsmith-t{uuid.uuid4().hex[:6]}"  # cluster-scoped names of their own
    rendered = subprocess.run(
        [str(cluster.bin_dir / "helm"), "template", release, str(CHART), "-n", namespace],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    roles = [
        doc
        for doc in yaml.safe_load_all(rendered)
        if doc and doc["kind"] == "ClusterRole" and doc["metadata"]["name"] != release
    ]
    assert {r["metadata"]["name"] for r in roles} == {f"{release}-view", f"{release}-edit"}
    accounts = {}
    for role in ("edit", "view", "admin"):
        cluster.kubectl("create", "serviceaccount", f"as-{role}", "-n", namespace)
        cluster.kubectl(
            "create", "rolebinding", f"as-{role}", f"--clusterrole={role}",
            f"--serviceaccount={namespace}:as-{role}", "-n", namespace,
        )  # fmt: skip
        accounts[role] = f"system:serviceaccount:{namespace}:as-{role}"
    sacreds, apiclients = f"{PLURAL}.{GROUP}", f"apiclients.{GROUP}"
    ns = ("-n", namespace)
    # Without credsmith's roles the built-in ones know nothing of its kinds.
    assert not can_i(cluster, accounts["edit"], "create", sacreds, *ns)
    assert not can_i(cluster, accounts["view"], "list", sacreds, *ns)

    cluster.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": roles})
    )
    try:
        # The clusterrole-aggregation controller copies the rules in.
        wait_for(lambda: can_i(cluster, accounts["edit"], "create", sacreds, *ns), 60, what="edit")
        wait_for(lambda: can_i(cluster, accounts["view"], "list", sacreds, *ns), 60, what="view")
        for resource in (sacreds, apiclients):
            for verb in ("create", "update", "patch", "delete", "get", "list", "watch"):
                assert can_i(cluster, accounts["edit"], verb, resource, *ns), (verb, resource)
                assert can_i(cluster, accounts["admin"], verb, resource, *ns), (verb, resource)
            for verb in ("patch", "update"):
                for role in ("edit", "admin", "view"):
                    status = (verb, resource, "--subresource=status", *ns)
                    assert not can_i(cluster, accounts[role], *status), (role, verb, resource)
            for verb in ("get", "list", "watch"):
                assert can_i(cluster, accounts["view"], verb, resource, *ns), (verb, resource)
            for verb in ("create", "patch", "delete"):
                assert not can_i(cluster, accounts["view"], verb, resource, *ns), (verb, resource)
        # Done as the edit user: create a credential and request a rotation; not its status.
        editor = f"--as={accounts['edit']}"
        body = manifest(KIND, "tenant", {"serviceAccount": "tenant"})
        cluster.kubectl("create", editor, *ns, "-f", "-", stdin=json.dumps(body))
        stamp = f"credsmith.io/rotate={int(time.time())}"
        cluster.kubectl("annotate", editor, *ns, "sacred/tenant", stamp, "--overwrite")
        refused = cluster.kubectl(
            "patch", editor, *ns, "sacred/tenant", "--subresource=status", "--type=merge",
            "-p", '{"status": {"revision": 7}}', check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr.lower(), refused.stderr
        viewer = f"--as={accounts['view']}"
        listed = cluster.kubectl("get", viewer, *ns, "sacred", "-o", "name")
        assert listed.stdout.strip() == f"serviceaccountcredential.{GROUP}/tenant"
        denied = cluster.kubectl("delete", viewer, *ns, "sacred/tenant", check=False)
        assert denied.returncode != 0
        assert "forbidden" in denied.stderr.lower(), denied.stderr
    finally:
        for role in roles:
            cluster.kubectl("delete", "clusterrole", role["metadata"]["name"], "--ignore-not-found")
