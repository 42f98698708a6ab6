"""`kubectl credsmith` command lines, without a cluster: kubectl's flag forms, the global
flags handed on to kubectl, booleans with `=false`, NAME forms, and kubectl-style help."""

from __future__ import annotations

from typing import Any

import pytest

from credsmith_kubectl.commands import COMMANDS, ROTATE, STATUS
from credsmith_kubectl.flags import UsageError, parse
from credsmith_kubectl.main import main
from credsmith_kubectl.resources import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL, split_name


def parsed(command: Any, argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    return parse(command.options, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["x", "-n", "team"],
        ["-n", "team", "x"],
        ["x", "--namespace=team"],
        ["x", "--namespace", "team"],
        ["-nteam", "x"],
        ["-n=team", "x"],
    ],
)
def test_namespace_flag_in_every_kubectl_form(argv: list[str]) -> None:
    assert parsed(STATUS, argv) == ({"namespace": "team", "kubectl": []}, ["x"])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-A"], True),
        (["--all-namespaces"], True),
        (["--all-namespaces=true"], True),
        (["--all-namespaces=false"], False),
        (["-A=false"], False),
    ],
)
def test_all_namespaces_false_is_false(argv: list[str], expected: bool) -> None:
    given, _ = parsed(STATUS, argv)
    assert given["all_namespaces"] is expected


def test_output_and_selector_forms() -> None:
    assert parsed(STATUS, ["-ojson"])[0]["output"] == "json"
    assert parsed(STATUS, ["--output", "yaml"])[0]["output"] == "yaml"
    assert parsed(STATUS, ["-o=wide"])[0]["output"] == "wide"
    assert parsed(STATUS, ["-lapp=web,tier!=db"])[0]["selector"] == "app=web,tier!=db"
    assert parsed(STATUS, ["--selector=app=web"])[0]["selector"] == "app=web"
    with pytest.raises(UsageError, match='invalid argument "name" for "-o": one of wide, json'):
        parsed(STATUS, ["-o", "name"])


def test_kubectl_global_flags_are_passed_on_in_order() -> None:
    given, args = parsed(
        STATUS,
        ["--context", "b", "x", "--kubeconfig=/k", "--as", "system:serviceaccount:a:b"],
    )
    assert args == ["x"]
    assert given["kubectl"] == [
        "--context=b",
        "--kubeconfig=/k",
        "--as=system:serviceaccount:a:b",
    ]
    assert given["context"] == "b"


def test_flag_errors() -> None:
    with pytest.raises(UsageError, match="unknown flag: --bogus"):
        parsed(STATUS, ["--bogus"])
    with pytest.raises(UsageError, match="flag needs an argument: -n"):
        parsed(ROTATE, ["x", "-n"])
    with pytest.raises(UsageError, match='invalid argument "maybe" for "--all"'):
        parsed(ROTATE, ["--all=maybe"])


def test_name_forms() -> None:
    assert split_name("sacred/x") == (SERVICE_ACCOUNT_CREDENTIAL, "x")
    assert split_name("serviceaccountcredentials.credsmith.io/x") == (
        SERVICE_ACCOUNT_CREDENTIAL,
        "x",
    )
    assert split_name("ApiClient/x") == (API_CLIENT, "x")
    assert split_name("apiclients/x") == (API_CLIENT, "x")
    assert split_name("x") == (None, "x")
    with pytest.raises(UsageError, match='unknown kind "pod"'):
        split_name("pod/x")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rotate"], "rotate takes NAME..., -l SELECTOR or --all (one of them)"),
        (["rotate", "x", "--all"], "rotate takes NAME..., -l SELECTOR or --all"),
        (["rotate", "-l", "a=b", "--all"], "rotate takes NAME..., -l SELECTOR or --all"),
        (["rotate", "x", "-A"], "a NAME cannot be looked up across all namespaces"),
        (["status", "x", "-l", "a=b"], "a NAME and a selector (-l) cannot be given together"),
        (["status", "x", "y"], "status takes at most one NAME"),
        (["inspect", "x"], "inspect takes: secret NAME"),
        (["check", "x"], "check takes no arguments"),
        (["status", "--context"], "flag needs an argument: --context"),
    ],
)
def test_usage_errors_exit_1_with_a_pointer_to_help(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No kubectl runs: each is refused before (the fake path would fail otherwise).
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: {message}" in err
    assert f"See 'kubectl credsmith {argv[0]} --help' for usage." in err


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 1
    assert 'unknown command "frobnicate" for "kubectl credsmith"' in capsys.readouterr().err


def test_help_in_kubectl_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    root = capsys.readouterr().out
    sections = [line for line in root.splitlines() if line.endswith(":") and line[0] != " "]
    assert sections == ["Examples:", "Available Commands:", "Usage:"]
    assert list(COMMANDS) == ["status", "rotate", "inspect", "check", "version"]
    for name in COMMANDS:
        assert f"\n  {name}  " in root
    assert 'Use "kubectl credsmith <command> --help"' in root
    for name, command in COMMANDS.items():
        assert main([name, "-h"]) == 0
        text = capsys.readouterr().out
        assert text.rstrip().endswith(f"Usage:\n  {command.usage}")
        for flag in ("--kubeconfig=''", "--context=''", "-h, --help=false"):
            assert f"\n    {flag}:\n\t" in text, (name, flag)
    assert main(["status", "--help"]) == 0
    status = capsys.readouterr().out
    assert "    -A, --all-namespaces=false:\n\tIf present" in status
    assert "    -o, --output='':\n\tOutput format: one of wide, json, yaml" in status
