"""What the commands print, from the objects kubectl returned: pure, so tested without a
cluster. Status and annotations only: a Secret's values are never read here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from credsmith_kubectl import GROUP

HEADER = [
    "KIND",
    "NAME",
    "READY",
    "REASON",
    "CLIENT ID",
    "REVISION",
    "NEXT ROTATION",
    "CONSUMERS",
    "PROVIDER",
]
WIDE = ["SECRET", "PREVIOUS EXPIRES", "MESSAGE"]


def ready_condition(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return condition(obj, "Ready")


def consumers_summary(status: Mapping[str, Any]) -> str:
    """`2/3 rolled out`: how many consumer workloads finished rolling to the revision, and
    how many were not rolled (not using the Secret, refused, not found: status.consumers
    has each one's message)."""
    consumers = list(status.get("consumers") or ())
    if not consumers:
        return "-"
    done = sum(1 for consumer in consumers if consumer.get("rolledOut"))
    summary = f"{done}/{len(consumers)} rolled out"
    if skipped := sum(1 for consumer in consumers if consumer.get("message")):
        summary += f", {skipped} not rolled"
    return summary


def condition(obj: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for found in (obj.get("status") or {}).get("conditions") or ():
        if found.get("type") == type_:
            return dict(found)
    return {}


def provider_summary(obj: Mapping[str, Any]) -> str:
    """`hydra: registered`: the identity provider the credential is registered with (a
    ClusterIdentityProvider as `cidp/NAME`), and whether it holds the Secret's value; when
    it does not, the `Registered` condition's reason says why."""
    ref = (obj.get("spec") or {}).get("identityProvider")
    if not ref:
        return "-"
    name = str(ref.get("name", ""))
    if ref.get("kind") == "ClusterIdentityProvider":
        name = f"cidp/{name}"
    registered = condition(obj, "Registered")
    if registered.get("status") == "True":
        return f"{name}: registered"
    return f"{name}: {registered.get('reason') or 'pending'}"


def status_rows(
    objects: Iterable[Mapping[str, Any]], *, with_namespace: bool, wide: bool
) -> list[list[str]]:
    """A header and one row per credential; `-` where the operator has said nothing yet."""
    header = (["NAMESPACE"] if with_namespace else []) + HEADER + (WIDE if wide else [])
    rows = [header]
    for obj in objects:
        status = obj.get("status") or {}
        ready = ready_condition(obj)
        row = [
            str(obj.get("kind", "")),
            str(obj["metadata"]["name"]),
            str(ready.get("status") or "Unknown"),
            str(ready.get("reason") or "-"),
            str(status.get("clientId") or "-"),
            str(status.get("revision") or "-"),
            str(status.get("nextRotationAt") or "-"),
            consumers_summary(status),
            provider_summary(obj),
        ]
        if wide:
            message = " ".join(str(ready.get("message") or "-").split())  # one line
            row += [
                str(status.get("secretName") or "-"),
                str(status.get("previousExpiresAt") or "-"),
                message,
            ]
        rows.append(([str(obj["metadata"].get("namespace", ""))] if with_namespace else []) + row)
    return rows


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell and three spaces apart, as kubectl prints."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def sort_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(obj.get("kind", "")), metadata.get("name", ""))


# ---- inspect secret ------------------------------------------------------------------

A = f"{GROUP}/"
# The Secret's credsmith.io/* annotations worth a person's eyes, in this order. Hashes and
# their bindings are left out: they are for verifiers, and a hash is no business of a
# terminal.
SHOWN = (
    ("Owner", f"{A}owner"),
    ("Revision", f"{A}revision"),
    ("Issued at", f"{A}issued-at"),
    ("Rotated at", f"{A}rotated-at"),
    ("Fingerprint", f"{A}fingerprint"),
    ("Previous fingerprint", f"{A}previous-fingerprint"),
    ("Previous expires at", f"{A}previous-expires-at"),
    ("Rotation request", f"{A}rotate-request"),
    ("Client UUID", f"{A}id"),
    ("State version", f"{A}state-version"),
)
EXTRA_SECRETS = f"{A}extra-secrets"
OWNER = f"{A}owner"


def is_credsmith_secret(secret: Mapping[str, Any]) -> bool:
    return OWNER in ((secret.get("metadata") or {}).get("annotations") or {})


def secret_report(secret: Mapping[str, Any]) -> str:
    """A credsmith Secret described from its metadata and key names. The values in `data`
    are never looked at, only its keys."""
    metadata = secret.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    lines = [("Secret", f"{metadata.get('namespace', '')}/{metadata.get('name', '')}")]
    lines += [(label, str(annotations[key])) for label, key in SHOWN if key in annotations]
    lines.append(("Keys", ", ".join(sorted(secret.get("data") or {})) or "-"))
    for key, fingerprints in extra_fingerprints(annotations.get(EXTRA_SECRETS)):
        lines.append((f"Extra secret {key}", fingerprints))
    width = max(len(label) for label, _ in lines) + 2
    return "\n".join(f"{label + ':':<{width}}{value}" for label, value in lines)


def extra_fingerprints(raw: str | None) -> list[tuple[str, str]]:
    """spec.extraSecrets as the operator recorded them: per key its fingerprints."""
    try:
        recorded = json.loads(raw) if raw else {}
    except ValueError:
        return []
    if not isinstance(recorded, dict):
        return []
    shown = []
    for key, state in sorted(recorded.items()):
        if not isinstance(state, dict):
            continue
        text = f"fingerprint {state.get('fingerprint', '-')}"
        if state.get("previousFingerprint"):
            text += f", previous {state['previousFingerprint']}"
        shown.append((str(key), text))
    return shown


# ---- check and version ---------------------------------------------------------------


def crd_problem(crd: Mapping[str, Any], version: str) -> str | None:
    """Why `crd` cannot serve `version` (not Established, version absent or not served)."""
    conditions = (crd.get("status") or {}).get("conditions") or ()
    established = any(
        c.get("type") == "Established" and c.get("status") == "True" for c in conditions
    )
    versions = {v.get("name"): v for v in (crd.get("spec") or {}).get("versions") or ()}
    if version not in versions:
        return f"version {version} absent (has {', '.join(sorted(versions)) or 'none'})"
    if not versions[version].get("served"):
        return f"version {version} not served"
    if not established:
        return "not Established"
    return None


def crd_versions(crd: Mapping[str, Any]) -> str:
    """`v1alpha1 (served, storage)`, for each version the CRD has."""
    shown = []
    for v in (crd.get("spec") or {}).get("versions") or ():
        flags = [name for name in ("served", "storage") if v.get(name)]
        shown.append(f"{v.get('name')} ({', '.join(flags) or 'not served'})")
    return ", ".join(shown)


def parse_time(text: str) -> datetime:
    """A Lease's MicroTime (or a plain RFC 3339 time)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def leader_of(lease: Mapping[str, Any], now: datetime) -> tuple[str | None, str]:
    """(the holder, or None when no one holds it) and a sentence on the Lease's state. A
    holder counts while its last renewal is younger than the lease duration (the time a
    standby waits before taking over); a released Lease has no holder."""
    spec = lease.get("spec") or {}
    metadata = lease.get("metadata") or {}
    where = f"Lease {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    holder = spec.get("holderIdentity") or ""
    if not holder:
        return None, f"{where}: no holder (released)"
    renewed = spec.get("renewTime") or spec.get("acquireTime")
    if not renewed:
        return None, f"{where}: held by {holder}, never renewed"
    age = (now - parse_time(renewed)).total_seconds()
    duration = float(spec.get("leaseDurationSeconds") or 0)
    if age > duration:
        return None, f"{where}: held by {holder}, last renewed {age:.0f}s ago (> {duration:g}s)"
    return holder, f"{where}: leader {holder}, renewed {max(age, 0):.0f}s ago"
