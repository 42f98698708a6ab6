"""What `kubectl credsmith` prints, from objects as kubectl returns them: the status table
(plain and wide), `inspect secret` (key names, never values), the CRD and Lease checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from credsmith_kubectl.flags import UsageError
from credsmith_kubectl.output import (
    crd_problem,
    crd_versions,
    format_table,
    leader_of,
    secret_report,
    status_rows,
)
from credsmith_kubectl.resources import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL, one_named


def credential(name: str, status: dict[str, Any], kind: str = "ServiceAccountCredential") -> Any:
    return {"kind": kind, "metadata": {"name": name, "namespace": "team"}, "status": status}


PAYMENTS = credential(
    "payments",
    {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Rotated",
                "message": "Rotated to revision 3;\n previous valid until 10:00",
            }
        ],
        "clientId": "svc-payments",
        "secretName": "payments-creds",
        "revision": 3,
        "nextRotationAt": "2026-12-30T10:00:00Z",
        "previousExpiresAt": "2026-12-01T10:00:00Z",
        "consumers": [
            {"kind": "Deployment", "name": "api", "revision": 3, "rolledOut": True},
            {"kind": "StatefulSet", "name": "db", "revision": 2, "rolledOut": False},
        ],
    },
)
DASHBOARD = credential("dashboard", {}, kind="ApiClient")


def test_status_columns() -> None:
    rows = status_rows([PAYMENTS, DASHBOARD], with_namespace=False, wide=False)
    assert rows == [
        [
            "KIND", "NAME", "READY", "REASON", "CLIENT ID", "REVISION", "NEXT ROTATION",
            "CONSUMERS", "PROVIDER",
        ],
        [
            "ServiceAccountCredential", "payments", "True", "Rotated", "svc-payments", "3",
            "2026-12-30T10:00:00Z", "1/2 rolled out", "-",
        ],
        # Not yet reconciled: nothing invented.
        ["ApiClient", "dashboard", "Unknown", "-", "-", "-", "-", "-", "-"],
    ]  # fmt: skip


def test_provider_column_names_the_provider_and_whether_it_holds_the_value() -> None:
    def registered(status: str, reason: str) -> dict[str, Any]:
        return {"conditions": [{"type": "Registered", "status": status, "reason": reason}]}

    hydra = {
        **credential("a", registered("True", "Registered")),
        "spec": {"identityProvider": {"name": "hydra"}},
    }
    down = {
        **credential("b", registered("False", "ProviderUnreachable")),
        "spec": {"identityProvider": {"kind": "ClusterIdentityProvider", "name": "corp"}},
    }
    new = {**credential("c", {}), "spec": {"identityProvider": {"name": "hydra"}}}
    rows = status_rows([hydra, down, new], with_namespace=False, wide=False)
    assert [row[-1] for row in rows] == [
        "PROVIDER", "hydra: registered", "cidp/corp: ProviderUnreachable", "hydra: pending",
    ]  # fmt: skip


def test_wide_adds_secret_previous_expiry_and_message_and_a_namespace_with_all() -> None:
    rows = status_rows([PAYMENTS, DASHBOARD], with_namespace=True, wide=True)
    assert rows[0][0] == "NAMESPACE"
    assert rows[0][-3:] == ["SECRET", "PREVIOUS EXPIRES", "MESSAGE"]
    assert rows[1][0] == "team"
    assert rows[1][-3:] == [
        "payments-creds",
        "2026-12-01T10:00:00Z",
        "Rotated to revision 3; previous valid until 10:00",  # on one line
    ]
    assert rows[2][-3:] == ["-", "-", "-"]


def test_table_columns_are_aligned() -> None:
    text = format_table([["NAME", "READY"], ["a-long-name", "True"], ["b", "False"]])
    assert text.splitlines() == [
        "NAME          READY",
        "a-long-name   True",
        "b             False",
    ]


def test_bare_name_resolution() -> None:
    sacred = {"kind": "ServiceAccountCredential", "metadata": {"name": "x"}}
    client = {"kind": "ApiClient", "metadata": {"name": "x"}}
    assert one_named("x", [sacred]) is SERVICE_ACCOUNT_CREDENTIAL
    assert one_named("x", [client]) is API_CLIENT
    with pytest.raises(UsageError, match='"x" names more than one credential: say which, '):
        one_named("x", [sacred, client])
    with pytest.raises(LookupError, match='no credential named "x"'):
        one_named("x", [])


VALUES = {"client-secret": "c2VjcmV0LXZhbHVl", "client-id": "aWQ=", "extra": "ZXh0cmE="}


def managed_secret() -> dict[str, Any]:
    a = "credsmith.io/"
    return {
        "metadata": {
            "name": "payments-creds",
            "namespace": "team",
            "annotations": {
                f"{a}owner": "ServiceAccountCredential/team/payments",
                f"{a}revision": "3",
                f"{a}issued-at": "2026-11-01T10:00:00Z",
                f"{a}rotated-at": "2026-12-01T09:00:00Z",
                f"{a}fingerprint": "sha256:0123456789abcdef",
                f"{a}previous-fingerprint": "sha256:fedcba9876543210",
                f"{a}previous-expires-at": "2026-12-01T10:00:00Z",
                f"{a}secret-hash": "{SHA256}c2VjcmV0",
                f"{a}extra-secrets": '{"extra":{"alphabet":"Base62","fingerprint":'
                '"sha256:1111111111111111","length":32}}',
            },
        },
        "data": dict(VALUES),
    }


def test_inspect_secret_shows_metadata_and_key_names_only() -> None:
    report = secret_report(managed_secret())
    assert report.splitlines() == [
        "Secret:               team/payments-creds",
        "Owner:                ServiceAccountCredential/team/payments",
        "Revision:             3",
        "Issued at:            2026-11-01T10:00:00Z",
        "Rotated at:           2026-12-01T09:00:00Z",
        "Fingerprint:          sha256:0123456789abcdef",
        "Previous fingerprint: sha256:fedcba9876543210",
        "Previous expires at:  2026-12-01T10:00:00Z",
        "Keys:                 client-id, client-secret, extra",
        "Extra secret extra:   fingerprint sha256:1111111111111111",
    ]
    for value in VALUES.values():
        assert value not in report
    assert "SHA256" not in report  # no hash either


def test_inspect_tolerates_garbled_extra_secrets() -> None:
    secret = managed_secret()
    secret["metadata"]["annotations"]["credsmith.io/extra-secrets"] = "{not json"
    assert "Extra secret" not in secret_report(secret)


def crd(served: bool = True, established: str = "True", version: str = "v1alpha1") -> Any:
    return {
        "spec": {"versions": [{"name": version, "served": served, "storage": True}]},
        "status": {"conditions": [{"type": "Established", "status": established}]},
    }


def test_crd_problems() -> None:
    assert crd_problem(crd(), "v1alpha1") is None
    assert crd_problem(crd(served=False), "v1alpha1") == "version v1alpha1 not served"
    assert crd_problem(crd(established="False"), "v1alpha1") == "not Established"
    assert crd_problem(crd(version="v1"), "v1alpha1") == "version v1alpha1 absent (has v1)"
    assert crd_versions(crd()) == "v1alpha1 (served, storage)"


NOW = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def lease(**spec: Any) -> Any:
    return {"metadata": {"name": "credsmith-operator", "namespace": "ops"}, "spec": spec}


def test_leader_present_while_renewed_within_the_lease_duration() -> None:
    held = lease(
        holderIdentity="pod-a", leaseDurationSeconds=15, renewTime="2026-12-06T11:59:55.123456Z"
    )
    assert leader_of(held, NOW) == (
        "pod-a",
        "Lease ops/credsmith-operator: leader pod-a, renewed 5s ago",
    )
    stale = lease(
        holderIdentity="pod-a", leaseDurationSeconds=15, renewTime="2026-12-06T11:58:00.000000Z"
    )
    assert leader_of(stale, NOW) == (
        None,
        "Lease ops/credsmith-operator: held by pod-a, last renewed 120s ago (> 15s)",
    )
    released = lease(holderIdentity="", leaseDurationSeconds=1, renewTime="2026-12-06T11:59:59Z")
    assert leader_of(released, NOW)[0] is None


def test_consumers_not_rolled_are_counted() -> None:
    from credsmith_kubectl.output import consumers_summary

    consumers = [
        {"kind": "Deployment", "name": "a", "revision": 2, "rolledOut": True},
        {"kind": "Deployment", "name": "x", "revision": 0, "rolledOut": False, "message": "m"},
        {"kind": "Deployment", "selector": "a/b=c", "rolledOut": False, "message": "400"},
    ]
    assert consumers_summary({"consumers": consumers}) == "1/3 rolled out, 2 not rolled"
