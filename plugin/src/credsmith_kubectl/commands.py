"""The commands: each turns its arguments into kubectl calls and prints the answer."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credsmith_kubectl import GROUP, LEASE_NAME, ROTATE_ANNOTATION, VERSION, __version__
from credsmith_kubectl.flags import (
    ALL_NAMESPACES,
    GLOBAL,
    NAMESPACE,
    OUTPUT,
    SELECTOR,
    Option,
    UsageError,
)
from credsmith_kubectl.kubectl import Kubectl, items
from credsmith_kubectl.output import (
    crd_problem,
    crd_versions,
    format_table,
    is_credsmith_secret,
    leader_of,
    secret_report,
    sort_key,
    status_rows,
)
from credsmith_kubectl.resources import ALL_KINDS, KINDS, one_named, split_name

Run = Callable[[Mapping[str, Any], list[str], Kubectl], int]


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    description: str
    examples: tuple[tuple[str, str], ...]  # (comment, command line)
    usage: str
    options: tuple[Option, ...]
    run: Run


def scope(given: Mapping[str, Any]) -> list[str]:
    """kubectl's namespace flags as given; none means the context's namespace."""
    if given.get("all_namespaces"):
        return ["--all-namespaces"]
    if given.get("namespace"):
        return ["--namespace", str(given["namespace"])]
    return []


def resolve(kubectl: Kubectl, argument: str, given: Mapping[str, Any]) -> str:
    """`kind.group/name` for NAME: `sacred/x`, `apiclient/x`, or a bare `x` if exactly one
    of the two kinds has an object of that name."""
    kind, name = split_name(argument)
    if kind is None:
        both = [f"{k.resource}/{name}" for k in KINDS]
        found = kubectl.get_json(*both, "--ignore-not-found", *scope(given))
        kind = one_named(name, items(found))
    return f"{kind.resource}/{name}"


def _where(given: Mapping[str, Any], kubectl: Kubectl) -> str:
    if given.get("all_namespaces"):
        return "any namespace"
    return f"{given.get('namespace') or kubectl.context_namespace()} namespace"


# ---- status --------------------------------------------------------------------------


def _status(given: Mapping[str, Any], args: list[str], kubectl: Kubectl) -> int:
    if len(args) > 1:
        raise UsageError(f"status takes at most one NAME, got {' '.join(args)}")
    selector = given.get("selector")
    if args and selector:
        raise UsageError("a NAME and a selector (-l) cannot be given together")
    if args and given.get("all_namespaces"):
        raise UsageError("a NAME cannot be looked up across all namespaces: use -n")
    target = [resolve(kubectl, args[0], given)] if args else [ALL_KINDS]
    if selector:
        target += ["--selector", str(selector)]
    output = given.get("output")
    if output in ("json", "yaml"):  # kubectl's own rendering of the objects
        sys.stdout.write(kubectl.run("get", *target, *scope(given), "-o", str(output)))
        return 0
    objects = sorted(items(kubectl.get_json(*target, *scope(given))), key=sort_key)
    if not objects:
        print(f"No credentials found in {_where(given, kubectl)}.", file=sys.stderr)
        return 0
    all_namespaces = bool(given.get("all_namespaces"))
    rows = status_rows(objects, with_namespace=all_namespaces, wide=output == "wide")
    print(format_table(rows))
    return 0


STATUS = Command(
    name="status",
    summary="Show credentials and their rotation state",
    description=(
        "Show credentials (ServiceAccountCredentials and ApiClients): readiness, client ID,\n"
        "revision, next rotation and how many consumer workloads run the new value; -o wide\n"
        "adds the Secret, when the previous value expires and the Ready message. NAME may\n"
        "be sacred/NAME, apiclient/NAME, or a bare NAME if only one kind has it. Never shows\n"
        "a secret value."
    ),
    examples=(
        ("Credentials of the current namespace", "kubectl credsmith status"),
        ("One credential, as JSON", "kubectl credsmith status sacred/payments -o json"),
        (
            "Credentials of every namespace, with more columns",
            "kubectl credsmith status -A -o wide",
        ),
    ),
    usage="kubectl credsmith status [NAME | -l SELECTOR] [options]",
    options=(NAMESPACE, ALL_NAMESPACES, SELECTOR, OUTPUT, *GLOBAL),
    run=_status,
)


# ---- rotate --------------------------------------------------------------------------


def rotation_value(now: datetime) -> str:
    """A new annotation value: the operator rotates once per distinct value."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rotate(given: Mapping[str, Any], args: list[str], kubectl: Kubectl) -> int:
    selector, every = given.get("selector"), bool(given.get("all"))
    if sum((bool(args), bool(selector), every)) != 1:
        raise UsageError("rotate takes NAME..., -l SELECTOR or --all (one of them)")
    if args and given.get("all_namespaces"):
        raise UsageError("a NAME cannot be looked up across all namespaces: use -n")
    if args:
        target = [resolve(kubectl, argument, given) for argument in args]
    else:
        target = [ALL_KINDS, "--selector", str(selector)] if selector else [ALL_KINDS, "--all"]
    value = rotation_value(datetime.now(UTC))
    annotated = kubectl.run(
        "annotate", "--overwrite", "-o", "name", *target, *scope(given),
        f"{ROTATE_ANNOTATION}={value}",
    )  # fmt: skip
    names = annotated.split()
    if not names:
        print(f"No credentials found in {_where(given, kubectl)}.", file=sys.stderr)
        return 1
    for name in names:
        print(f"{name} rotation requested ({ROTATE_ANNOTATION}={value})")
    return 0


ALL = Option(("--all",), "Rotate every credential in the namespace (or with -A, all).", False)
ROTATE = Command(
    name="rotate",
    summary="Request a rotation of credentials",
    description=(
        f"Request a rotation: set the {ROTATE_ANNOTATION} annotation of the credentials to a\n"
        "new value (overwriting the last one). The operator issues a new secret once per\n"
        "distinct value; the previous one stays valid for the credential's rotation.overlap."
    ),
    examples=(
        ("Rotate a ServiceAccountCredential now", "kubectl credsmith rotate sacred/payments"),
        ("Rotate every credential of a team", "kubectl credsmith rotate -l team=payments"),
        ("Rotate every credential of a namespace", "kubectl credsmith rotate --all -n billing"),
    ),
    usage="kubectl credsmith rotate (NAME... | -l SELECTOR | --all) [options]",
    options=(NAMESPACE, ALL_NAMESPACES, SELECTOR, ALL, *GLOBAL),
    run=_rotate,
)


# ---- inspect secret ------------------------------------------------------------------


def _inspect(given: Mapping[str, Any], args: list[str], kubectl: Kubectl) -> int:
    if len(args) == 1 and args[0].startswith(("secret/", "secrets/")):
        args = ["secret", args[0].partition("/")[2]]
    if len(args) != 2 or args[0] not in ("secret", "secrets"):
        raise UsageError("inspect takes: secret NAME")
    secret = kubectl.get_json("secret", args[1], *scope(given))
    # Only the key names stay: the values are dropped before anything else sees them.
    secret["data"] = dict.fromkeys(secret.get("data") or {}, "")
    if not is_credsmith_secret(secret):
        raise LookupError(f'error: secret "{args[1]}" is not a credsmith Secret (no owner)')
    print(secret_report(secret))
    return 0


INSPECT = Command(
    name="inspect",
    summary="Describe a credential's Secret without its values",
    description=(
        "Describe a Secret credsmith wrote, from its credsmith.io/* annotations: owner,\n"
        "revision, when it was issued and rotated, fingerprints of the current and previous\n"
        "value, when the previous one expires, and the names of its keys. Never a value."
    ),
    examples=(("The Secret of a credential", "kubectl credsmith inspect secret payments"),),
    usage="kubectl credsmith inspect secret NAME [options]",
    options=(NAMESPACE, *GLOBAL),
    run=_inspect,
)


# ---- check ---------------------------------------------------------------------------

CRD_RESOURCE = "customresourcedefinitions.apiextensions.k8s.io"
LEASE_RESOURCE = "leases.coordination.k8s.io"


def _check(given: Mapping[str, Any], args: list[str], kubectl: Kubectl) -> int:
    if args:
        raise UsageError(f"check takes no arguments, got {' '.join(args)}")
    failed = False

    def report(ok: bool, what: str) -> None:
        nonlocal failed
        failed = failed or not ok
        print(f"{'OK  ' if ok else 'FAIL'}  {what}")

    names = [k.resource for k in KINDS]
    found = items(kubectl.get_json(CRD_RESOURCE, *names, "--ignore-not-found"))
    by_name = {crd["metadata"]["name"]: crd for crd in found}
    for name in names:
        crd = by_name.get(name)
        problem = "not installed" if crd is None else crd_problem(crd, VERSION)
        report(problem is None, f"CRD {name}: {problem or f'{VERSION} served'}")

    lease_name = str(given.get("lease_name") or LEASE_NAME)
    if given.get("lease_namespace"):
        where = ["--namespace", str(given["lease_namespace"]), "--ignore-not-found"]
        leases = items(kubectl.get_json(LEASE_RESOURCE, lease_name, *where))
    else:
        selector = f"metadata.name={lease_name}"
        leases = items(kubectl.get_json(LEASE_RESOURCE, "-A", "--field-selector", selector))
    if not leases:
        report(False, f"operator leader: no Lease {lease_name} (see --lease-name)")
    now = datetime.now(UTC)
    for lease in sorted(leases, key=sort_key):
        holder, sentence = leader_of(lease, now)
        report(holder is not None, f"operator leader: {sentence}")
    return 1 if failed else 0


CHECK = Command(
    name="check",
    summary="Check that the CRDs are served and an operator leads",
    description=(
        f"Check the cluster: both CRDs installed, Established and serving {GROUP}/{VERSION},\n"
        "and an operator holding its leader Lease (renewed within the lease duration).\n"
        f"The Lease is looked for by name ({LEASE_NAME}, the operator's --leader-election-id)\n"
        "in every namespace unless --lease-namespace is given. Exits 1 if a check fails."
    ),
    examples=(
        ("Is credsmith installed and running?", "kubectl credsmith check"),
        (
            "A Helm release named team-creds",
            "kubectl credsmith check --lease-name team-creds-credsmith-operator",
        ),
    ),
    usage="kubectl credsmith check [options]",
    options=(
        Option(("--lease-name",), f"The leader Lease's name (default: {LEASE_NAME})."),
        Option(("--lease-namespace",), "The leader Lease's namespace (default: any)."),
        *GLOBAL,
    ),
    run=_check,
)


# ---- version -------------------------------------------------------------------------


def _version(given: Mapping[str, Any], args: list[str], kubectl: Kubectl) -> int:
    if args:
        raise UsageError(f"version takes no arguments, got {' '.join(args)}")
    print(f"Plugin Version: {__version__} (reads {GROUP}/{VERSION})")
    if given.get("client"):
        return 0
    names = [k.resource for k in KINDS]
    found = items(kubectl.get_json(CRD_RESOURCE, *names, "--ignore-not-found"))
    by_name = {crd["metadata"]["name"]: crd for crd in found}
    for name in names:
        crd = by_name.get(name)
        print(f"Server CRD {name}: {'not installed' if crd is None else crd_versions(crd)}")
    return 0 if len(by_name) == len(names) else 1


VERSION_COMMAND = Command(
    name="version",
    summary="Print the plugin's version and the server's CRD versions",
    description="Print the plugin's version and the versions the server's credsmith CRDs have.",
    examples=(("Versions", "kubectl credsmith version"),),
    usage="kubectl credsmith version [--client] [options]",
    options=(Option(("--client",), "Only the plugin's version.", takes_value=False), *GLOBAL),
    run=_version,
)

COMMANDS = {c.name: c for c in (STATUS, ROTATE, INSPECT, CHECK, VERSION_COMMAND)}
