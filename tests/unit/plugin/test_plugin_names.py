"""The plugin spells the operator's names itself (it must not import the operator): they
stay equal to the operator's, the chart's and deploy/'s."""

from __future__ import annotations

from pathlib import Path

import yaml

import credsmith
import credsmith_kubectl
from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.reconcile import secret_state
from credsmith.runtime.rotate import PLURALS
from credsmith_kubectl.output import EXTRA_SECRETS, OWNER, SHOWN
from credsmith_kubectl.resources import ALIASES, KINDS

ROOT = Path(__file__).resolve().parents[3]


def test_group_version_and_annotations_are_the_operators() -> None:
    assert credsmith_kubectl.GROUP == credsmith.GROUP
    assert credsmith_kubectl.VERSION == credsmith.VERSION
    assert credsmith_kubectl.ROTATE_ANNOTATION == ROTATE_ANNOTATION
    shown = {key for _, key in SHOWN}
    assert shown == {
        secret_state.OWNER,
        secret_state.REVISION,
        secret_state.ISSUED_AT,
        secret_state.ROTATED_AT,
        secret_state.FINGERPRINT,
        secret_state.PREVIOUS_FINGERPRINT,
        secret_state.PREVIOUS_EXPIRES_AT,
        secret_state.ROTATE_REQUEST,
        secret_state.CLIENT_UUID,
        secret_state.STATE_VERSION,
    }
    assert OWNER == secret_state.OWNER
    assert EXTRA_SECRETS == secret_state.EXTRA_SECRETS


def test_kinds_and_names_are_the_crds() -> None:
    crds = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in (ROOT / "crds").glob("*.yaml")]
    # The plugin's kinds are the credentials (the identity providers are not credentials).
    providers = ("IdentityProvider", "ClusterIdentityProvider")
    crds = [c for c in crds if c["spec"]["names"]["kind"] not in providers]
    names = {(c["spec"]["names"]["kind"], c["spec"]["names"]["plural"]) for c in crds}
    assert {(k.kind, k.plural) for k in KINDS} == names
    shorts = {s for c in crds for s in c["spec"]["names"].get("shortNames") or ()}
    assert {k.short for k in KINDS} - {"apiclient"} <= shorts
    assert {alias: PLURALS[alias] for alias in PLURALS} == {
        alias: ALIASES[alias].plural for alias in PLURALS
    }


def test_default_lease_is_deploys_and_the_charts() -> None:
    deployment = yaml.safe_load((ROOT / "deploy/deployment.yaml").read_text(encoding="utf-8"))
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--leader-election-id={credsmith_kubectl.LEASE_NAME}" in args
    values = (ROOT / "charts/credsmith/values.yaml").read_text(encoding="utf-8")
    assert f'"{credsmith_kubectl.LEASE_NAME}" for a release named credsmith' in values
