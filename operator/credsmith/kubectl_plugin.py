"""`kubectl credsmith`: a kubectl plugin (the `kubectl-credsmith` executable on PATH).

kubectl finds any executable named `kubectl-<name>` on PATH and runs it for
`kubectl <name> ...`, passing the remaining arguments through; flags such as
`--namespace` are the plugin's to parse. Help follows kubectl's layout (description,
Examples, Available Commands or Options, Usage).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException

from credsmith import GROUP, VERSION

PROG = "kubectl credsmith"
PLURALS_BY_KIND = {
    "ServiceAccountCredential": "serviceaccountcredentials",
    "ApiClient": "apiclients",
}
SHORT_KINDS = {"serviceaccountcredentials": "sacred", "apiclients": "apiclient"}


class UsageError(Exception):
    """A command line kubectl would also refuse; printed with a pointer to --help."""


@dataclass(frozen=True)
class Option:
    names: tuple[str, ...]  # as accepted, e.g. ("-n", "--namespace")
    help: str
    takes_value: bool = True

    @property
    def flags(self) -> str:  # as help shows them: "-n, --namespace"
        return ", ".join(self.names)


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    description: str
    examples: tuple[tuple[str, str], ...]  # (comment, command line)
    usage: str
    options: tuple[Option, ...]
    run: Callable[[Mapping[str, Any], list[str]], int]


NAMESPACE = Option(
    ("-n", "--namespace"),
    "If present, the namespace scope for this request (default: the kubeconfig context's).",
)
KUBECONFIG = Option(("--kubeconfig",), "Path to the kubeconfig file to use (default: $KUBECONFIG).")
ALL_NAMESPACES = Option(
    ("-A", "--all-namespaces"),
    "If present, list credentials across all namespaces.",
    takes_value=False,
)
HELP = Option(("-h", "--help"), "Show this help.", takes_value=False)


# ---- rotate --------------------------------------------------------------------------


def _rotate(options: Mapping[str, Any], args: list[str]) -> int:
    from credsmith.runtime.rotate import request_rotation

    if len(args) != 1 or "/" not in args[0]:
        raise UsageError("rotate takes one KIND/NAME, e.g. sacred/payments")
    kind, _, name = args[0].partition("/")
    resource, value = request_rotation(
        kind, name, options.get("namespace"), options.get("kubeconfig")
    )
    print(f"{resource} rotation requested (credsmith.io/rotate={value})")
    return 0


ROTATE = Command(
    name="rotate",
    summary="Request a rotation of a credential",
    description=(
        "Request a rotation of a credential: set its credsmith.io/rotate annotation to a new\n"
        "value. The operator issues a new secret once per distinct value; the previous one\n"
        "stays valid for the credential's rotation.overlap."
    ),
    examples=(
        ("Rotate a ServiceAccountCredential now", "kubectl credsmith rotate sacred/payments"),
        ("Rotate an ApiClient in another namespace", "kubectl credsmith rotate apiclient/x -n b"),
    ),
    usage="kubectl credsmith rotate KIND/NAME [options]",
    options=(NAMESPACE, KUBECONFIG, HELP),
    run=_rotate,
)


# ---- status --------------------------------------------------------------------------


def _ready(obj: Mapping[str, Any]) -> tuple[str, str]:
    for condition in obj.get("status", {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return str(condition.get("status", "Unknown")), str(condition.get("reason", ""))
    return "Unknown", ""


def _consumers(status: Mapping[str, Any]) -> str:
    shown = []
    for consumer in status.get("consumers") or ():
        state = "rolled out" if consumer.get("rolledOut") else "rolling out"
        if consumer.get("message"):
            state = "not rolled: see status.consumers"  # not used, refused or not found
        kind = str(consumer.get("kind", "")).lower()
        name = consumer.get("name") or f"selector {consumer.get('selector')}"
        shown.append(f"{kind}/{name} (rev {consumer.get('revision')}, {state})")
    return ", ".join(shown) or "-"


def status_rows(objects: Iterable[Mapping[str, Any]], with_namespace: bool) -> list[list[str]]:
    """One table row per credential: what a person asks about a rotation's progress.
    Status only, which never holds a secret value."""
    header = ["NAME", "READY", "REASON", "REVISION", "NEXT ROTATION", "PREVIOUS EXPIRES"]
    header = (["NAMESPACE"] if with_namespace else []) + header + ["CONSUMERS"]
    rows = [header]
    for obj in objects:
        status = obj.get("status") or {}
        ready, reason = _ready(obj)
        plural = PLURALS_BY_KIND.get(str(obj.get("kind")), str(obj.get("kind")).lower())
        row = [
            f"{SHORT_KINDS.get(plural, plural)}/{obj['metadata']['name']}",
            ready,
            reason or "-",
            str(status.get("revision", "-")),
            status.get("nextRotationAt") or "-",
            status.get("previousExpiresAt") or "-",
            _consumers(status),
        ]
        rows.append(([obj["metadata"]["namespace"]] if with_namespace else []) + row)
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell and three spaces apart, as kubectl prints."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _status(options: Mapping[str, Any], args: list[str]) -> int:
    from kubernetes import client, config

    if args:
        raise UsageError(f"status takes no arguments, got {' '.join(args)}")
    kubeconfig = options.get("kubeconfig")
    config.load_kube_config(config_file=kubeconfig)
    namespace = options.get("namespace")
    if namespace is None:
        _, context = config.list_kube_config_contexts(config_file=kubeconfig)
        namespace = context.get("context", {}).get("namespace") or "default"
    api = client.CustomObjectsApi()
    objects: list[dict[str, Any]] = []
    for plural in PLURALS_BY_KIND.values():
        if options.get("all_namespaces"):
            listed = api.list_cluster_custom_object(GROUP, VERSION, plural)
        else:
            listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        found = cast(dict[str, Any], listed)  # a List, typed `object` by the client
        objects += sorted(
            found["items"], key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])
        )
    if not objects:
        where = "any namespace" if options.get("all_namespaces") else f"{namespace} namespace"
        print(f"No credentials found in {where}.", file=sys.stderr)
        return 0
    print(format_table(status_rows(objects, bool(options.get("all_namespaces")))))
    return 0


STATUS = Command(
    name="status",
    summary="Show the credentials of a namespace and their rotation state",
    description=(
        "Show the credentials (ServiceAccountCredentials and ApiClients) of a namespace:\n"
        "readiness, revision, next rotation, when the previous value expires, and the\n"
        "workloads rolled out with the new value. Never shows a secret value."
    ),
    examples=(
        ("Credentials of the current namespace", "kubectl credsmith status"),
        ("Credentials of every namespace", "kubectl credsmith status -A"),
    ),
    usage="kubectl credsmith status [options]",
    options=(NAMESPACE, ALL_NAMESPACES, KUBECONFIG, HELP),
    run=_status,
)

COMMANDS = {command.name: command for command in (ROTATE, STATUS)}


# ---- help and parsing ----------------------------------------------------------------


def _examples(examples: Iterable[tuple[str, str]]) -> list[str]:
    lines = ["Examples:"]
    for comment, line in examples:
        lines += [f"  # {comment}", f"  {line}", ""]
    return lines


def _options(options: Iterable[Option]) -> list[str]:
    lines = ["Options:"]
    for option in options:
        shown = f"{option.flags}=''" if option.takes_value else f"{option.flags}=false"
        lines += [f"    {shown}:", f"\t{option.help}", ""]
    return lines


def root_help() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    lines = [
        "Request rotations and show the state of credsmith credentials.",
        "",
        *_examples(example for command in COMMANDS.values() for example in command.examples),
        "Available Commands:",
        *(f"  {name.ljust(width)}{c.summary}" for name, c in COMMANDS.items()),
        "",
        "Usage:",
        f"  {PROG} [command] [options]",
        "",
        f'Use "{PROG} <command> --help" for more information about a given command.',
    ]
    return "\n".join(lines)


def command_help(command: Command) -> str:
    lines = [
        command.description,
        "",
        *_examples(command.examples),
        *_options(command.options),
        "Usage:",
        f"  {command.usage}",
    ]
    return "\n".join(lines)


def parse(command: Command, argv: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """kubectl's flag forms: `-n x`, `-nx`, `--namespace x`, `--namespace=x`; flags may
    come before or after the positional arguments."""
    by_name = {name: option for option in command.options for name in option.names}
    options: dict[str, Any] = {}
    positional: list[str] = []
    items = list(argv)
    while items:
        item = items.pop(0)
        if not item.startswith("-") or item == "-":
            positional.append(item)
            continue
        name, has_value, value = item.partition("=")
        if name not in by_name and name[:2] in by_name and not name.startswith("--"):
            name, has_value, value = name[:2], "=", name[2:]  # -nvalue
        option = by_name.get(name)
        if option is None:
            raise UsageError(f"unknown flag: {name}")
        key = option.names[-1].lstrip("-").replace("-", "_")
        if not option.takes_value:
            options[key] = True
            continue
        if not has_value:
            if not items:
                raise UsageError(f"flag needs an argument: {name}")
            value = items.pop(0)
        options[key] = value
    return options, positional


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(root_help())
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f'error: unknown command "{args[0]}" for "{PROG}"', file=sys.stderr)
        print(f"See '{PROG} --help' for usage.", file=sys.stderr)
        return 1
    try:
        options, positional = parse(command, args[1:])
        if options.get("help"):
            print(command_help(command))
            return 0
        return command.run(options, positional)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"See '{PROG} {command.name} --help' for usage.", file=sys.stderr)
        return 1
    except (LookupError, ConfigException) as exc:  # unknown kind or name; no kubeconfig
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ApiException as exc:  # as kubectl reports a refusal; the body is the server's
        print(f"Error from server ({exc.reason}): {exc.status}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
