"""The chart's image digest and NetworkPolicy options, accepted by a real API server."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.e2e.cluster import Cluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "credsmith"
DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_digest_and_network_policy_pass_a_server_dry_run(cluster: Cluster, namespace: str) -> None:
    values = (
        f"--set=image.digest={DIGEST}",
        "--set=networkPolicy.enabled=true",
        "--set=networkPolicy.apiServer.cidrs={10.0.0.10/32,fd00::10/128}",
        "--set=networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
    )
    rendered = subprocess.run(
        [str(cluster.bin_dir / "helm"), "template", "opts", str(CHART), "-n", namespace, *values],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    deployment = next(doc for doc in docs if doc["kind"] == "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/credsmith/credsmith@{DIGEST}"
    policy = next(doc for doc in docs if doc["kind"] == "NetworkPolicy")
    assert policy["spec"]["egress"][0]["to"][1] == {"ipBlock": {"cidr": "fd00::10/128"}}

    namespaced = [doc for doc in docs if doc["kind"] in ("Deployment", "NetworkPolicy")]
    applied = cluster.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin="\n---\n".join(yaml.safe_dump(doc) for doc in namespaced),
    )  # fmt: skip
    assert "networkpolicy.networking.k8s.io/opts-credsmith created (server dry run)" in (
        applied.stdout
    )
    assert "deployment.apps/opts-credsmith created (server dry run)" in applied.stdout
