"""kubectl's flag syntax: `-n x`, `-nx`, `--namespace x`, `--namespace=x`, booleans as
`-A`, `--all-namespaces` or `--all-namespaces=false`; flags before or after arguments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class UsageError(Exception):
    """A command line kubectl would also refuse; printed with a pointer to --help."""


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # as accepted, e.g. ("-n", "--namespace")
    help: str
    takes_value: bool = True
    # Passed on to every kubectl call as given (connection and identity flags).
    kubectl: bool = False
    choices: tuple[str, ...] = ()

    @property
    def key(self) -> str:  # "--all-namespaces" -> "all_namespaces"
        return self.names[-1].lstrip("-").replace("-", "_")

    @property
    def flags(self) -> str:  # as help shows them: "-n, --namespace"
        return ", ".join(self.names)


NAMESPACE = Option(
    ("-n", "--namespace"),
    "If present, the namespace scope for this request (default: the context's namespace).",
)
ALL_NAMESPACES = Option(
    ("-A", "--all-namespaces"),
    "If present, act on credentials across all namespaces.",
    takes_value=False,
)
SELECTOR = Option(
    ("-l", "--selector"),
    "Selector (label query) to filter on, e.g. -l team=payments.",
)
OUTPUT = Option(
    ("-o", "--output"),
    "Output format: one of wide, json, yaml (default: a table).",
    choices=("wide", "json", "yaml"),
)
HELP = Option(("-h", "--help"), "Show this help.", takes_value=False)
# kubectl's own global flags, handed to every kubectl call unchanged: whatever kubectl
# accepts there works here (contexts, exec plugins, impersonation).
KUBECONFIG = Option(
    ("--kubeconfig",), "Path to the kubeconfig file to use (default: $KUBECONFIG).", kubectl=True
)
CONTEXT = Option(("--context",), "The name of the kubeconfig context to use.", kubectl=True)
CLUSTER = Option(("--cluster",), "The name of the kubeconfig cluster to use.", kubectl=True)
USER = Option(("--user",), "The name of the kubeconfig user to use.", kubectl=True)
AS = Option(("--as",), "Username to impersonate for the operation.", kubectl=True)
AS_GROUP = Option(("--as-group",), "Group to impersonate for the operation.", kubectl=True)
REQUEST_TIMEOUT = Option(
    ("--request-timeout",), "How long to wait for a single server request (e.g. 10s).", kubectl=True
)
GLOBAL = (KUBECONFIG, CONTEXT, CLUSTER, USER, AS, AS_GROUP, REQUEST_TIMEOUT, HELP)

TRUE, FALSE = ("true", "t", "1"), ("false", "f", "0")


def parse(options: Sequence[Option], argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The options given (by key) and the positional arguments. Values of kubectl's own
    flags are collected, in order, under "kubectl" as the arguments to pass on."""
    by_name = {name: option for option in options for name in option.names}
    given: dict[str, Any] = {}
    passed: list[str] = []
    positional: list[str] = []
    items = list(argv)
    while items:
        item = items.pop(0)
        if item == "--":
            positional += items
            break
        if not item.startswith("-") or item == "-":
            positional.append(item)
            continue
        if item.startswith("--"):
            name, sep, value = item.partition("=")
            has_value = bool(sep)
        else:  # -n x, -nx, -n=x, -lapp=web (the value is everything after the letter)
            name, value = item[:2], item[2:]
            has_value = bool(value)
            value = value.removeprefix("=")
        option = by_name.get(name)
        if option is None:
            raise UsageError(f"unknown flag: {name}")
        if not option.takes_value:
            if has_value and value.lower() not in TRUE + FALSE:
                raise UsageError(f'invalid argument "{value}" for "{name}": not a boolean')
            given[option.key] = not has_value or value.lower() in TRUE
            continue
        if not has_value:
            if not items:
                raise UsageError(f"flag needs an argument: {name}")
            value = items.pop(0)
        if option.choices and value not in option.choices:
            allowed = ", ".join(option.choices)
            raise UsageError(f'invalid argument "{value}" for "{name}": one of {allowed}')
        given[option.key] = value
        if option.kubectl:
            passed.append(f"{option.names[-1]}={value}")
    given["kubectl"] = passed
    return given, positional
