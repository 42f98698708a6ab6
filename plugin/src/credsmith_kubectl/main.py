"""`kubectl credsmith`: the `kubectl-credsmith` executable kubectl finds on PATH.

kubectl runs any executable named `kubectl-<name>` on PATH for `kubectl <name> ...`,
passing the remaining arguments through; all flags, kubectl's own (--context,
--kubeconfig, -n) included, are the plugin's to parse. Help follows kubectl's layout
(description, Examples, Available Commands or Options, Usage).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from credsmith_kubectl.commands import COMMANDS, Command
from credsmith_kubectl.flags import Option, UsageError, parse
from credsmith_kubectl.kubectl import Kubectl, KubectlError

PROG = "kubectl credsmith"


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
        *_examples(command.examples[0] for command in COMMANDS.values()),
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
        given, positional = parse(command.options, args[1:])
        if given.get("help"):
            print(command_help(command))
            return 0
        return command.run(given, positional, Kubectl(given["kubectl"]))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"See '{PROG} {command.name} --help' for usage.", file=sys.stderr)
        return 1
    except KubectlError as exc:  # kubectl's own words: "Error from server (Forbidden): ..."
        print(exc.message, file=sys.stderr)
        return exc.returncode or 1
    except LookupError as exc:  # no such credential, or not one of ours
        print(exc.args[0], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
