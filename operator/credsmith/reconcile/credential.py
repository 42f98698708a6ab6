"""Reconcile one credential: (resource, its Secret, the time) -> Decision. Pure.

The Secret is the source of truth. Besides the credential it carries, in
annotations, what is needed to rebuild status: revision, timestamps, the digest
of the generation parameters and the last rotation request acted upon. So a crash
between writing the Secret and writing status costs nothing: the next pass reads
the Secret back and reports it; it never issues a second value.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from credsmith import GROUP
from credsmith.api.common import ROTATE_ANNOTATION, CredentialSpec
from credsmith.api.enums import CredentialType, DeletionPolicy, HashAlgorithm, KeyAlgorithm
from credsmith.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    format_timestamp,
    parse_timestamp,
    set_condition,
)
from credsmith.issuing.client_id import new_client_id
from credsmith.issuing.fingerprint import fingerprint
from credsmith.issuing.hashing import hash_secret
from credsmith.issuing.keypair import new_key_pair
from credsmith.issuing.random_secret import new_secret
from credsmith.issuing.templates import TemplateError, check_templates, render_templates
from credsmith.reconcile.layout import (
    LAYOUTS,
    credential_data,
    key_id_of,
    previous_data,
    template_context,
)
from credsmith.reconcile.registry import PREVIOUS_SECRET_HASH, SECRET_HASH
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Decision,
    Event,
    ResourceSnapshot,
    SecretSnapshot,
)

# State kept on the Secret (see the module docstring).
OWNER = f"{GROUP}/owner"
REVISION = f"{GROUP}/revision"
ISSUED_AT = f"{GROUP}/issued-at"
ROTATED_AT = f"{GROUP}/rotated-at"
PARAMETERS = f"{GROUP}/parameters"
ROTATE_REQUEST = f"{GROUP}/rotate-request"
PREVIOUS_EXPIRES_AT = f"{GROUP}/previous-expires-at"
CLIENT_UUID = f"{GROUP}/id"
# The secretTemplate label and annotation keys last applied, so that removing one
# from the template removes it from the Secret while others' keys are kept.
TEMPLATE_KEYS = f"{GROUP}/template-keys"
SECRET_HASH_OF = f"{SECRET_HASH}-of"  # "<algorithm>:<fingerprint of the hashed value>"
PREVIOUS_SECRET_HASH_OF = f"{PREVIOUS_SECRET_HASH}-of"

# While a foreign Secret blocks us we cannot watch it (we watch only our own), so
# look again now and then; a conflict is the one state in which we poll.
CONFLICT_RECHECK = timedelta(seconds=30)
# A rotation request annotation is remembered verbatim up to this size, else by digest.
MAX_REMEMBERED_REQUEST = 256


@dataclass(frozen=True)
class KindRules:
    """What differs between the kinds that issue credentials."""

    kind: str
    spec_model: type[CredentialSpec]
    credential_type: Callable[[Any], CredentialType]
    key_algorithm: Callable[[Any], KeyAlgorithm | None]
    # ApiClient: a stable UUID reported as status.id (and listed in the registry).
    has_client_uuid: bool = False
    # Status fields of the kind's own, from its spec (ApiClient: roleCount).
    extra_status: Callable[[Any], dict[str, Any]] = lambda spec: {}
    # ApiClient with a registry: the hash to keep of the secret, for the registry.
    verifier_hash: Callable[[Any], HashAlgorithm | None] = lambda spec: None


@dataclass(frozen=True)
class Generators:
    """Sources of new values; tests swap them for deterministic ones."""

    client_id: Callable[[CredentialSpec], str]
    value: Callable[[CredentialSpec, CredentialType, KeyAlgorithm | None], str]
    client_uuid: Callable[[], str]


def _new_value(spec: CredentialSpec, type_: CredentialType, algorithm: KeyAlgorithm | None) -> str:
    if type_ is CredentialType.KEY_PAIR:
        return new_key_pair(algorithm or KeyAlgorithm.ED25519).private_key_pem
    return new_secret(
        spec.secret.length, spec.secret.alphabet, spec.secret.prefix, spec.secret.checksum
    )


DEFAULT_GENERATORS = Generators(
    client_id=lambda spec: (
        spec.client_id.value or new_client_id(spec.client_id.format, spec.client_id.prefix)
    ),
    value=_new_value,
    client_uuid=lambda: str(uuid.uuid4()),
)


@dataclass(frozen=True)
class Issued:
    """One credential as stored in its Secret."""

    client_id: str
    value: str
    revision: int
    issued_at: datetime
    rotated_at: datetime
    parameters: str  # "" when unknown (then a parameter change cannot be detected)
    rotate_request: str | None
    previous: str | None = None
    previous_expires_at: datetime | None = None
    client_uuid: str | None = None


def reconcile(
    rules: KindRules,
    resource: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    generate: Generators = DEFAULT_GENERATORS,
) -> Decision:
    try:
        spec = rules.spec_model.model_validate(resource.spec)
    except ValidationError as exc:
        return _failed(resource, now, Reason.INVALID_SPEC, _validation_message(exc))
    if errors := spec.object_errors(resource.name):
        return _failed(resource, now, Reason.INVALID_SPEC, "; ".join(errors))

    secret_name = spec.effective_secret_name(resource.name)
    owner = f"{resource.kind}/{resource.name}"
    if secret is not None and not _is_ours(secret, owner):
        return _failed(
            resource,
            now,
            Reason.SECRET_CONFLICT,
            f"Secret {secret_name} already exists and is not managed by this {resource.kind}: "
            "nothing was changed. Delete or rename that Secret, or set spec.secretName.",
            requeue_at=now + CONFLICT_RECHECK,
        )
    type_ = rules.credential_type(spec)
    secret_type = LAYOUTS[type_].secret_type
    if secret is not None and secret.type != secret_type:
        # Ours, from a deleted resource of the same name and another spec.type (Orphan):
        # a Secret's type is immutable, so it cannot be rewritten, only replaced by a person.
        return _failed(
            resource,
            now,
            Reason.SECRET_CONFLICT,
            f"Secret {secret_name} has type {secret.type}, but a {type_.value} credential "
            f"needs type {secret_type}: nothing was changed. Delete that Secret to have it "
            "issued anew, or set spec.secretName.",
            requeue_at=now + CONFLICT_RECHECK,
        )

    algorithm = rules.key_algorithm(spec)
    templates = spec.secret_template.data
    try:
        _check_reserved_keys(type_, templates)
        check_templates(templates)
    except TemplateError as exc:
        return _failed(resource, now, Reason.INVALID_TEMPLATE, str(exc))

    digest = _parameters_digest(spec, type_, algorithm)
    request = _remembered_request(resource.annotations.get(ROTATE_ANNOTATION))
    events: list[Event] = []
    change: Reason | None = None

    issued = _read_issued(secret, type_, resource.status, now) if secret is not None else None
    if issued is not None:
        # Bookkeeping someone removed from our Secret: assume the current settings (a
        # rotation now would be by accident), and keep ApiClient's id.
        if not issued.parameters:
            issued = replace(issued, parameters=digest)
        if rules.has_client_uuid and issued.client_uuid is None:
            issued = replace(
                issued, client_uuid=resource.status.get("id") or generate.client_uuid()
            )
    if issued is None:
        issued, change = _issue(rules, resource, secret, spec, now, digest, request, generate)
        if change is Reason.ISSUED:
            events.append(Event("Normal", "Issued", f"Issued revision 1 into Secret {secret_name}"))
        else:
            events.append(
                Event(
                    "Warning",
                    "Reissued",
                    f"Secret {secret_name} was deleted or lost its keys: issued a new "
                    f"credential (revision {issued.revision})",
                )
            )
    elif why := _rotation_due(issued, spec, digest, request, now):
        new_value = generate.value(spec, type_, algorithm)
        issued = _rotate(issued, new_value, spec, now, digest, request)
        change = Reason.ROTATED
        events.append(Event("Normal", "Rotated", f"Rotated to revision {issued.revision}: {why}"))
    if issued.previous is not None and (
        issued.previous_expires_at is None or issued.previous_expires_at <= now
    ):
        issued = replace(issued, previous=None, previous_expires_at=None)

    data = credential_data(type_, issued.client_id, issued.value)
    if issued.previous is not None:
        data.update(previous_data(type_, issued.previous))
    try:
        data.update(render_templates(templates, template_context(type_, data)))
    except TemplateError as exc:
        return _failed(resource, now, Reason.INVALID_TEMPLATE, str(exc))

    hashes = _verifier_hashes(rules.verifier_hash(spec), issued, secret)
    manifest = _manifest(resource, spec, secret_name, type_, owner, issued, data, hashes, secret)
    write = secret is None or _differs(secret, manifest)
    if write and secret is not None:
        manifest["metadata"]["resourceVersion"] = secret.resource_version

    next_rotation = _next_rotation(issued, spec)
    status = _ready_status(resource, spec, now, secret_name, type_, issued, change, next_rotation)
    status.update(rules.extra_status(spec))
    wake = [t for t in (next_rotation, issued.previous_expires_at) if t is not None]
    return Decision(
        status=status,
        secret=manifest if write else None,
        create=secret is None,
        events=tuple(events),
        requeue_at=min(wake) if wake else None,
        summary=events[0].message if events else ("Secret updated" if write else ""),
    )


# ---- reading and changing the credential --------------------------------------------


def _is_ours(secret: SecretSnapshot, owner: str) -> bool:
    return (
        secret.labels.get(MANAGED_BY_LABEL) == MANAGED_BY and secret.annotations.get(OWNER) == owner
    )


def _read_issued(
    secret: SecretSnapshot, type_: CredentialType, status: Mapping[str, Any], now: datetime
) -> Issued | None:
    """The credential in our Secret, or None if its keys are gone (then: re-issue).

    Bookkeeping annotations someone removed are taken from status if it describes this
    value, else assumed fresh: a missing timestamp must not make a rotation due."""
    layout = LAYOUTS[type_]
    client_id, value = secret.text(layout.client_id_key), secret.text(layout.value_key)
    if not client_id or not value:
        return None
    if type_ is CredentialType.KEY_PAIR and not _is_private_key(value):
        return None
    notes = secret.annotations
    known = status if status.get("fingerprint") == fingerprint(value) else {}
    issued_at = _timestamp(notes.get(ISSUED_AT)) or _timestamp(status.get("issuedAt"))
    rotated_at = _timestamp(notes.get(ROTATED_AT)) or _timestamp(known.get("rotatedAt"))
    expires = _timestamp(notes.get(PREVIOUS_EXPIRES_AT))
    previous = secret.text(layout.previous_key(layout.value_key)) if expires else None
    if previous is not None and type_ is CredentialType.KEY_PAIR and not _is_private_key(previous):
        previous = None
    return Issued(
        client_id=client_id,
        value=value,
        revision=_int(notes.get(REVISION), default=_int(known.get("revision"), default=1)),
        issued_at=issued_at or rotated_at or now,
        rotated_at=rotated_at or now,
        parameters=notes.get(PARAMETERS, ""),
        rotate_request=notes.get(ROTATE_REQUEST),
        previous=previous,
        previous_expires_at=expires if previous else None,
        client_uuid=notes.get(CLIENT_UUID),
    )


def _is_private_key(pem: str) -> bool:
    try:
        key_id_of(CredentialType.KEY_PAIR, pem)
    except ValueError:
        return False
    return True


def _issue(
    rules: KindRules,
    resource: ResourceSnapshot,
    secret: SecretSnapshot | None,
    spec: CredentialSpec,
    now: datetime,
    digest: str,
    request: str | None,
    generate: Generators,
) -> tuple[Issued, Reason]:
    """A new credential: the first, or a re-issue after the Secret or its keys were lost.
    The client ID survives a re-issue: it names the client; only the secret was lost."""
    status = resource.status
    notes = secret.annotations if secret else {}
    known_revision = max(
        _int(status.get("revision"), default=0), _int(notes.get(REVISION), default=0)
    )
    type_, algorithm = rules.credential_type(spec), rules.key_algorithm(spec)
    # A stripped Secret may still name the client when status was lost too (a crash).
    client_id = (
        spec.client_id.value
        or status.get("clientId")
        or (secret.text(LAYOUTS[type_].client_id_key) if secret else None)
        or generate.client_id(spec)
    )
    client_uuid = None
    if rules.has_client_uuid:
        client_uuid = status.get("id") or notes.get(CLIENT_UUID) or generate.client_uuid()
    issued = Issued(
        client_id=str(client_id),
        value=generate.value(spec, type_, algorithm),
        revision=known_revision + 1,
        issued_at=_timestamp(status.get("issuedAt")) or _timestamp(notes.get(ISSUED_AT)) or now,
        rotated_at=now,
        parameters=digest,
        rotate_request=request,
        client_uuid=client_uuid,
    )
    return issued, (Reason.ISSUED if known_revision == 0 else Reason.REISSUED)


def _rotation_due(
    issued: Issued, spec: CredentialSpec, digest: str, request: str | None, now: datetime
) -> str | None:
    """Why the credential must rotate now, or None."""
    if spec.client_id.value and spec.client_id.value != issued.client_id:
        # Adopted from an orphaned Secret of another client ID: the secret goes with it.
        return "clientId.value differs from the client ID in the Secret"
    if issued.parameters and issued.parameters != digest:
        return "generation parameters changed"
    if request is not None and request != issued.rotate_request:
        return f"requested with the {ROTATE_ANNOTATION} annotation"
    period = spec.rotation.period_duration
    if period is not None and issued.rotated_at + period <= now:
        return f"rotation.period {spec.rotation.period} elapsed"
    return None


def _rotate(
    issued: Issued,
    new_value: str,
    spec: CredentialSpec,
    now: datetime,
    digest: str,
    request: str | None,
) -> Issued:
    overlap = spec.rotation.overlap_duration
    keep = overlap is not None and overlap > timedelta(0)
    return replace(
        issued,
        client_id=spec.client_id.value or issued.client_id,
        value=new_value,
        revision=issued.revision + 1,
        rotated_at=now,
        parameters=digest,
        rotate_request=request,
        previous=issued.value if keep else None,
        previous_expires_at=now + overlap if keep and overlap else None,
    )


def _next_rotation(issued: Issued, spec: CredentialSpec) -> datetime | None:
    period = spec.rotation.period_duration
    return issued.rotated_at + period if period is not None else None


def _parameters_digest(
    spec: CredentialSpec, type_: CredentialType, algorithm: KeyAlgorithm | None
) -> str:
    """A digest of what shapes the value; a change means a new value (a rotation)."""
    shape: dict[str, Any] = {"type": type_.value}
    if type_ is CredentialType.KEY_PAIR:
        shape["algorithm"] = algorithm.value if algorithm else None
    else:
        shape.update(
            length=spec.secret.length,
            alphabet=spec.secret.alphabet.value,
            prefix=spec.secret.prefix,
            checksum=spec.secret.checksum,
        )
    return fingerprint(json.dumps(shape, sort_keys=True))


def _remembered_request(value: str | None) -> str | None:
    if not value:
        return None
    return value if len(value) <= MAX_REMEMBERED_REQUEST else fingerprint(value)


def _check_reserved_keys(type_: CredentialType, templates: Mapping[str, str]) -> None:
    layout = LAYOUTS[type_]
    reserved = {layout.client_id_key, layout.value_key, layout.previous_key(layout.value_key)}
    if type_ is CredentialType.KEY_PAIR:
        public = ("key_id", "public_key.pem", "public_jwk.json")
        reserved |= set(public) | {layout.previous_key(key) for key in public}
    for key in sorted(reserved & set(templates)):
        raise TemplateError(
            key, f"this key holds the {type_.value} credential and cannot be templated"
        )


# ---- the Secret ---------------------------------------------------------------------


def _manifest(
    resource: ResourceSnapshot,
    spec: CredentialSpec,
    secret_name: str,
    type_: CredentialType,
    owner: str,
    issued: Issued,
    data: Mapping[str, str],
    hashes: Mapping[str, str],
    existing: SecretSnapshot | None,
) -> dict[str, Any]:
    template = spec.secret_template
    # Template annotations may not pose as our bookkeeping.
    template_annotations = {
        k: v for k, v in template.annotations.items() if not k.startswith(f"{GROUP}/")
    }
    applied = {"labels": sorted(template.labels), "annotations": sorted(template_annotations)}
    notes = {
        **hashes,
        OWNER: owner,
        REVISION: str(issued.revision),
        ISSUED_AT: format_timestamp(issued.issued_at),
        ROTATED_AT: format_timestamp(issued.rotated_at),
        PARAMETERS: issued.parameters,
    }
    if issued.rotate_request is not None:
        notes[ROTATE_REQUEST] = issued.rotate_request
    if issued.previous_expires_at is not None:
        notes[PREVIOUS_EXPIRES_AT] = format_timestamp(issued.previous_expires_at)
    if issued.client_uuid is not None:
        notes[CLIENT_UUID] = issued.client_uuid
    if applied["labels"] or applied["annotations"]:
        notes[TEMPLATE_KEYS] = json.dumps(applied, separators=(",", ":"))
    labels, annotations = _foreign_metadata(existing)
    metadata: dict[str, Any] = {
        "name": secret_name,
        "namespace": resource.namespace,
        "labels": {**labels, **template.labels, MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {**annotations, **template_annotations, **notes},
    }
    if spec.deletion_policy is DeletionPolicy.DELETE:
        metadata["ownerReferences"] = [
            {
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "name": resource.name,
                "uid": resource.uid,
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": LAYOUTS[type_].secret_type,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def _verifier_hashes(
    algorithm: HashAlgorithm | None, issued: Issued, secret: SecretSnapshot | None
) -> dict[str, str]:
    """Hashes of the current and previous secret, for the registry document. Each is
    made once: kept beside the fingerprint of the value it was made from, and reused
    (the current one's becomes the previous one's on rotation). Argon2id is costly."""
    if algorithm is None:
        return {}
    known: dict[str, str] = {}
    if secret is not None:
        for hash_key, of_key in (
            (SECRET_HASH, SECRET_HASH_OF),
            (PREVIOUS_SECRET_HASH, PREVIOUS_SECRET_HASH_OF),
        ):
            if (made := secret.annotations.get(hash_key)) and (
                of := secret.annotations.get(of_key)
            ):
                known[of] = made

    def hashed(value: str) -> tuple[str, str]:
        of = f"{algorithm.value}:{fingerprint(value)}"
        return known.get(of) or hash_secret(value, algorithm), of

    made, of = hashed(issued.value)
    hashes = {SECRET_HASH: made, SECRET_HASH_OF: of}
    if issued.previous is not None:
        made, of = hashed(issued.previous)
        hashes.update({PREVIOUS_SECRET_HASH: made, PREVIOUS_SECRET_HASH_OF: of})
    return hashes


def _owner_refs(refs: Any) -> list[tuple[Any, ...]]:
    fields = ("apiVersion", "kind", "name", "uid", "controller")
    return sorted(tuple(ref.get(f) for f in fields) for ref in refs or ())


def _foreign_metadata(existing: SecretSnapshot | None) -> tuple[dict[str, str], dict[str, str]]:
    """Labels and annotations others put on our Secret: kept, so that we never fight
    another controller (or a person with `kubectl annotate`) over them. Ours are the
    credsmith.io/ annotations and the template keys we applied last time."""
    if existing is None:
        return {}, {}
    try:
        applied = json.loads(existing.annotations.get(TEMPLATE_KEYS, "{}"))
        applied_labels = set(applied.get("labels", ()))
        applied_annotations = set(applied.get("annotations", ()))
    except (ValueError, AttributeError, TypeError):
        applied_labels, applied_annotations = set(), set()
    labels = {
        k: v for k, v in existing.labels.items() if k not in applied_labels | {MANAGED_BY_LABEL}
    }
    annotations = {
        k: v
        for k, v in existing.annotations.items()
        if k not in applied_annotations and not k.startswith(f"{GROUP}/")
    }
    return labels, annotations


def _differs(secret: SecretSnapshot, manifest: Mapping[str, Any]) -> bool:
    metadata = manifest["metadata"]
    data = {key: base64.b64decode(value) for key, value in manifest["data"].items()}
    return (
        secret.type != manifest["type"]
        or dict(secret.data) != data
        or dict(secret.labels) != metadata["labels"]
        or dict(secret.annotations) != metadata["annotations"]
        or _owner_refs(secret.owner_references) != _owner_refs(metadata.get("ownerReferences"))
    )


# ---- status -------------------------------------------------------------------------


_READY_MESSAGES = {
    Reason.ISSUED: "Issued revision {revision} into Secret {secret}",
    Reason.ROTATED: "Rotated to revision {revision} in Secret {secret}",
    Reason.REISSUED: "Re-issued revision {revision} into Secret {secret} after it was lost",
}


def _ready_status(
    resource: ResourceSnapshot,
    spec: CredentialSpec,
    now: datetime,
    secret_name: str,
    type_: CredentialType,
    issued: Issued,
    change: Reason | None,
    next_rotation: datetime | None,
) -> dict[str, Any]:
    conditions = _conditions(resource)
    reason = change or _settled_reason(conditions, issued, resource.status)
    message = _READY_MESSAGES[reason].format(revision=issued.revision, secret=secret_name)
    conditions = _set(conditions, resource, now, ConditionType.READY, True, reason, message)
    conditions = [c for c in conditions if c.type != ConditionType.STALLED]
    status: dict[str, Any] = {
        "observedGeneration": resource.generation,
        "conditions": [c.to_wire() for c in conditions],
        "clientId": issued.client_id,
        "secretName": secret_name,
        "revision": issued.revision,
        "issuedAt": format_timestamp(issued.issued_at),
        "rotatedAt": format_timestamp(issued.rotated_at),
        "fingerprint": fingerprint(issued.value),
        "parameters": spec.parameters().to_wire(),  # type: ignore[attr-defined]
    }
    if next_rotation is not None:
        status["nextRotationAt"] = format_timestamp(next_rotation)
    if issued.previous_expires_at is not None:
        status["previousExpiresAt"] = format_timestamp(issued.previous_expires_at)
    if (key_id := key_id_of(type_, issued.value)) is not None:
        status["keyId"] = key_id
    if issued.client_uuid is not None:
        status["id"] = issued.client_uuid
    if issued.rotate_request is not None:
        status["lastRotateRequest"] = issued.rotate_request
    return status


def _settled_reason(
    conditions: list[Condition], issued: Issued, status: Mapping[str, Any]
) -> Reason:
    """Ready's reason when nothing happened in this pass: keep the last one, if it was
    about this revision (not when adopting a Secret written just before a crash)."""
    ready = find_condition(conditions, ConditionType.READY)
    if (
        ready is not None
        and ready.status == ConditionStatus.TRUE
        and ready.reason in (Reason.ISSUED, Reason.ROTATED, Reason.REISSUED)
        and status.get("revision") == issued.revision
    ):
        return Reason(ready.reason)
    return Reason.ISSUED if issued.revision == 1 else Reason.ROTATED


def _failed(
    resource: ResourceSnapshot,
    now: datetime,
    reason: Reason,
    message: str,
    requeue_at: datetime | None = None,
) -> Decision:
    """Ready=False (and kstatus Stalled=True); the Secret is left exactly as it is."""
    conditions = _conditions(resource)
    before = find_condition(conditions, ConditionType.READY)
    conditions = _set(conditions, resource, now, ConditionType.READY, False, reason, message)
    conditions = _set(conditions, resource, now, ConditionType.STALLED, True, reason, message)
    status = dict(resource.status)
    status["observedGeneration"] = resource.generation
    status["conditions"] = [c.to_wire() for c in conditions]
    is_new = before is None or before.reason != reason or before.message != message
    events = (Event("Warning", reason.value, message),) if is_new else ()
    return Decision(
        status=status,
        events=events,
        requeue_at=requeue_at,
        summary=f"{reason.value}: {message}" if is_new else "",
    )


def _conditions(resource: ResourceSnapshot) -> list[Condition]:
    conditions = []
    for raw in resource.status.get("conditions") or ():
        try:
            conditions.append(Condition.model_validate(raw))
        except ValidationError:
            continue  # not ours to keep if it is not a valid condition
    return conditions


def _set(
    conditions: list[Condition],
    resource: ResourceSnapshot,
    now: datetime,
    type_: ConditionType,
    ok: bool,
    reason: Reason,
    message: str,
) -> list[Condition]:
    condition = Condition(
        type=type_.value,
        status=ConditionStatus.TRUE if ok else ConditionStatus.FALSE,
        observed_generation=resource.generation,
        reason=reason.value,
        message=message,
    )
    return list(set_condition(conditions, condition, now))


def _validation_message(exc: ValidationError) -> str:
    """Field paths and pydantic's messages; never the input values."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        path = ".".join(["spec", *(str(p) for p in error["loc"])])
        parts.append(f"{path}: {error['msg']}")
    return "; ".join(parts)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
