"""`kubectl credsmith` without a cluster: flag parsing in kubectl's forms, kubectl-style
help, and the status table (consumers and previous-value expiry included)."""

from __future__ import annotations

from typing import Any

import pytest

from credsmith.kubectl_plugin import (
    COMMANDS,
    ROTATE,
    STATUS,
    UsageError,
    format_table,
    main,
    parse,
    status_rows,
)


@pytest.mark.parametrize(
    "argv",
    [
        ["sacred/x", "-n", "team"],
        ["-n", "team", "sacred/x"],
        ["sacred/x", "--namespace=team"],
        ["sacred/x", "--namespace", "team"],
        ["-nteam", "sacred/x"],
    ],
)
def test_namespace_flag_in_every_kubectl_form(argv: list[str]) -> None:
    assert parse(ROTATE, argv) == ({"namespace": "team"}, ["sacred/x"])


def test_boolean_flags_and_errors() -> None:
    assert parse(STATUS, ["-A"]) == ({"all_namespaces": True}, [])
    with pytest.raises(UsageError, match="unknown flag: --bogus"):
        parse(STATUS, ["--bogus"])
    with pytest.raises(UsageError, match="flag needs an argument: -n"):
        parse(ROTATE, ["sacred/x", "-n"])


def test_rotate_needs_kind_slash_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rotate", "x"]) == 1
    err = capsys.readouterr().err
    assert "error: rotate takes one KIND/NAME" in err
    assert "See 'kubectl credsmith rotate --help' for usage." in err


def test_help_in_kubectl_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    root = capsys.readouterr().out
    sections = [line for line in root.splitlines() if line.endswith(":") and line[0] != " "]
    assert sections == ["Examples:", "Available Commands:", "Usage:"]
    for name in COMMANDS:
        assert f"\n  {name}  " in root
    assert 'Use "kubectl credsmith <command> --help"' in root
    assert main(["status", "-h"]) == 0
    status = capsys.readouterr().out
    assert "    -A, --all-namespaces=false:\n\tIf present" in status
    assert status.rstrip().endswith("Usage:\n  kubectl credsmith status [options]")


def credential(name: str, status: dict[str, Any], kind: str = "ServiceAccountCredential") -> Any:
    return {"kind": kind, "metadata": {"name": name, "namespace": "team"}, "status": status}


def test_status_rows_show_rotation_state_and_consumers() -> None:
    rows = status_rows(
        [
            credential(
                "payments",
                {
                    "conditions": [{"type": "Ready", "status": "True", "reason": "Rotated"}],
                    "revision": 3,
                    "nextRotationAt": "2026-12-30T10:00:00Z",
                    "previousExpiresAt": "2026-12-01T10:00:00Z",
                    "consumers": [
                        {"kind": "Deployment", "name": "api", "revision": 3, "rolledOut": True},
                        {"kind": "StatefulSet", "name": "db", "revision": 2, "rolledOut": False},
                    ],
                },
            ),
            credential("dashboard", {}, kind="ApiClient"),
        ],
        with_namespace=False,
    )
    assert rows[1] == [
        "sacred/payments",
        "True",
        "Rotated",
        "3",
        "2026-12-30T10:00:00Z",
        "2026-12-01T10:00:00Z",
        "deployment/api (rev 3, rolled out), statefulset/db (rev 2, rolling out)",
    ]
    # Not yet reconciled: nothing invented.
    assert rows[2] == ["apiclient/dashboard", "Unknown", "-", "-", "-", "-", "-"]


def test_status_rows_show_consumers_not_rolled() -> None:
    consumers = [
        {"kind": "Deployment", "name": "x", "revision": 0, "rolledOut": False, "message": "m"},
        {
            "kind": "Deployment",
            "selector": "a/b=c",
            "revision": 0,
            "rolledOut": False,
            "message": "400",
        },
    ]
    [_, row] = status_rows([credential("p", {"consumers": consumers})], with_namespace=False)
    assert row[-1] == (
        "deployment/x (rev 0, not rolled: see status.consumers), "
        "deployment/selector a/b=c (rev 0, not rolled: see status.consumers)"
    )


def test_table_columns_are_aligned() -> None:
    text = format_table([["NAME", "READY"], ["sacred/a-long-name", "True"], ["sacred/b", "False"]])
    assert text.splitlines() == [
        "NAME                 READY",
        "sacred/a-long-name   True",
        "sacred/b             False",
    ]
