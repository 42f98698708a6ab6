"""Reconcile one credential: (resource, its Secret, the time) -> Decision. Pure.

The Secret is the source of truth (secret_state.py), but nothing read from it is believed
unchecked (trust.py). A pass: validate the spec; make sure the Secret is ours; read and check
the credential in it; issue, re-issue or rotate it (policy.py); retire an expired previous
value; render the templates; build the Secret to write (desired_secret.py) and the status
(readiness.py). A crash between writing the Secret and writing status costs nothing: the
next pass reads the Secret back and reports it; it never issues a second value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from credsmith.api.common import ROTATE_ANNOTATION, CredentialSpec
from credsmith.api.enums import CredentialType, HashAlgorithm, KeyAlgorithm
from credsmith.api.status import ConditionType, Reason, find_condition, parse_timestamp
from credsmith.issuing.templates import TemplateError, check_templates, render_templates
from credsmith.reconcile import readiness
from credsmith.reconcile.consumers import (
    ConsumerPlan,
    ConsumersSeen,
    Rollout,
    bounded_expiry,
    plan_consumers,
    recorded_revisions,
    report,
    retirement,
    rotation_spread,
)
from credsmith.reconcile.desired_secret import desired_secret, differs
from credsmith.reconcile.expiry import expire_without_spec
from credsmith.reconcile.extras import (
    Extras,
    expired,
    extra_states,
    extras_data,
    extras_status,
    read_extras,
    settle_extras,
)
from credsmith.reconcile.layout import (
    LAYOUTS,
    SECRET_VARIABLES,
    credential_data,
    extra_variable_names,
    extra_variables,
    previous_data,
    reserved_keys,
    template_context,
    template_placeholders,
)
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.policy import (
    DEFAULT_GENERATORS,
    Generators,
    expire_previous,
    issue,
    next_rotation,
    remembered_request,
    rotate,
    rotation_due,
    with_fingerprints,
    with_verifier_hashes,
)
from credsmith.reconcile.secret_state import is_ours
from credsmith.reconcile.snapshots import Decision, Event, ResourceSnapshot, SecretSnapshot
from credsmith.reconcile.state_mac import StateKey
from credsmith.reconcile.trust import (
    Credential,
    Untrusted,
    posing_as_ours,
    read_credential,
    scope_of,
)

__all__ = ["DEFAULT_GENERATORS", "Generators", "KindRules", "checked_credential", "reconcile"]

# While a foreign Secret blocks us we cannot watch it (we watch only our own), so look
# again now and then: first after CONFLICT_RECHECK, then after half the time the conflict
# has lasted, up to CONFLICT_RECHECK_MAX (a backoff, not a poll every 30 s forever).
CONFLICT_RECHECK = timedelta(seconds=30)
CONFLICT_RECHECK_MAX = timedelta(minutes=5)


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
    # ApiClient with registry.formats Htpasswd: keep a bcrypt hash too.
    htpasswd: Callable[[Any], bool] = lambda spec: False


def reconcile(
    rules: KindRules,
    resource: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    duplicate_of: str | None = None,
    consumers: ConsumersSeen | None = None,
    *,
    state_key: StateKey,
    generate: Generators = DEFAULT_GENERATORS,
) -> Decision:
    """`duplicate_of`: an earlier client of the same registry with the same client ID (the
    registry lists only that one; this one is Ready=False). `consumers`: what the runtime
    found of spec.consumers (None when there are none). `state_key`: the operator's key
    that authenticates the state on its Secrets (trust.py)."""
    owner = f"{resource.kind}/{resource.name}"
    scope = scope_of(resource, secret.name if secret is not None else "")
    posing = secret is not None and posing_as_ours(secret, resource.status, state_key, scope)

    def failed(reason: Reason, message: str, recheck: datetime | None = None) -> Decision:
        retire, expires = expire_without_spec(secret, owner, now, state_key, scope, posing)
        wake = min((t for t in (recheck, expires) if t is not None), default=None)
        return readiness.failed(resource, now, reason, message, wake, retire)

    try:
        spec = rules.spec_model.model_validate(resource.spec)
    except ValidationError as exc:
        return failed(Reason.INVALID_SPEC, readiness.validation_message(exc))
    if errors := spec.object_errors(resource.name):
        return failed(Reason.INVALID_SPEC, "; ".join(errors))

    secret_name = spec.effective_secret_name(resource.name)
    if secret is not None and (posing or not is_ours(secret.labels, secret.annotations, owner)):
        # Posing: labelled and annotated as ours, but no operator made it (no valid state
        # MAC) and status records no credential: someone else's, made before its owner.
        made = "was not written by credsmith for" if posing else "is not managed by"
        return failed(
            Reason.SECRET_CONFLICT,
            f"Secret {secret_name} already exists and {made} this {resource.kind}: "
            "nothing was changed. Delete or rename that Secret, or set spec.secretName.",
            _conflict_recheck(resource, now),
        )
    type_ = rules.credential_type(spec)
    secret_type = LAYOUTS[type_].secret_type
    if secret is not None and secret.type != secret_type:
        # Ours, from a deleted resource of the same name and another spec.type (Orphan):
        # a Secret's type is immutable, so it cannot be rewritten, only replaced by a person.
        return failed(
            Reason.SECRET_CONFLICT,
            f"Secret {secret_name} has type {secret.type}, but a {type_.value} credential "
            f"needs type {secret_type}: nothing was changed. Delete that Secret to have it "
            "issued anew, or set spec.secretName.",
            _conflict_recheck(resource, now),
        )

    parameters = GenerationParameters.of(spec, type_, rules.key_algorithm(spec))
    templates = spec.secret_template.data
    try:
        _check_reserved_keys(type_, templates)
        check_templates(templates, SECRET_VARIABLES | extra_variable_names(spec.extra_secrets))
    except TemplateError as exc:
        return failed(Reason.INVALID_TEMPLATE, str(exc))

    request = remembered_request(resource.annotations.get(ROTATE_ANNOTATION))
    found = _read(secret, type_, parameters, resource, spec, now, state_key)
    if not spec.consumers:
        consumers = None
    overlap = spec.rotation.overlap_duration
    period = spec.rotation.period_duration
    # Credentials with consumers rotate a little after their period, spread by UID.
    spread = rotation_spread(resource.uid, period) if consumers and period else timedelta(0)
    events: list[Event] = []
    change: Reason | None = None
    if isinstance(found, Credential):
        credential = found
        events += _untrusted(secret_name, found.warnings)
        if rules.has_client_uuid and credential.state.client_uuid is None:
            uuid = resource.status.get("id") or generate.client_uuid()
            credential = replace(credential, state=replace(credential.state, client_uuid=uuid))
        if why := rotation_due(credential, spec, parameters, request, now, spread):
            new_value = generate.value(spec, type_, parameters.algorithm)
            credential = rotate(credential, new_value, spec, parameters, now, request)
            change = Reason.ROTATED
            events.append(
                Event(
                    "Normal", "Rotated", f"Rotated to revision {credential.state.revision}: {why}"
                )
            )
    else:
        credential, plan = issue(
            owner,
            spec,
            parameters,
            found,
            secret,
            resource.status,
            now,
            request,
            rules.has_client_uuid,
            generate,
        )
        change = plan.reason
        events.append(_issue_event(found, secret_name, credential.state.revision))
        if found is not None and found.unauthenticated:  # what failed the belief rule
            events += _untrusted(secret_name, (found.problem,))

    checked = found if isinstance(found, Credential) else None
    found_extras = read_extras(secret, checked.state) if checked and secret else Extras()
    events += _untrusted(secret_name, found_extras.warnings)
    extras, extra_events = settle_extras(
        spec.extra_secrets,
        found_extras,
        checked.state.extras if checked else (),
        change,
        credential.previous is not None,
        generate.extra,
    )
    events += extra_events
    had_previous = credential.previous is not None
    followers: ConsumerPlan | None = None
    if consumers is not None:
        # Rolled only once the Secret already holds this value (a pass that issues it
        # rolls nothing: the next one, set off by the Secret's change, does).
        settled = checked is not None and change is None
        recorded = recorded_revisions(resource.status)
        followers = plan_consumers(consumers, credential.state, had_previous, settled, recorded)
        if had_previous:
            state, held = retirement(
                credential.state, overlap, followers.lagging, now, consumers.refused
            )
            credential = replace(credential, state=state)
            events += held
    credential = with_fingerprints(expire_previous(credential, now))
    if credential.previous is None:
        extras = expired(extras)
    credential = replace(
        credential,
        state=replace(credential.state, extras=extra_states(spec.extra_secrets, extras)),
    )
    credential, warnings = with_verifier_hashes(
        credential, rules.verifier_hash(spec), checked, rules.htpasswd(spec)
    )
    events += _untrusted(secret_name, warnings)

    data = credential_data(type_, credential.client_id, credential.value)
    if credential.previous is not None:
        data.update(previous_data(type_, credential.previous))
    # The context is made before the extras join the data: they are reached as extra.<key>.
    context = template_context(type_, data)
    placeholders = template_placeholders(type_, parameters, credential.previous is not None)
    secret_names = set(SECRET_VARIABLES)
    for name, (value, stand_in) in extra_variables(spec.extra_secrets, extras).items():
        context[name], placeholders[name] = value, stand_in
        secret_names.add(name)
    data.update(extras_data(extras))
    try:
        data.update(render_templates(templates, context, secret_names, placeholders))
    except TemplateError as exc:
        return failed(Reason.INVALID_TEMPLATE, str(exc))

    manifest, state = desired_secret(
        resource, spec, secret_name, credential.state, data, secret, state_key
    )
    write = secret is None or differs(secret, manifest, state)
    if write and secret is not None:
        manifest["metadata"]["resourceVersion"] = secret.resource_version

    rotation_at = next_rotation(credential, spec, spread)
    status = readiness.ready_status(
        resource, spec, now, secret_name, type_, credential, change, rotation_at
    )
    wake = [t for t in (rotation_at, state.previous_expires_at) if t is not None]
    rollouts: tuple[Rollout, ...] = ()
    if consumers is not None and followers is not None:
        followed = report(
            consumers,
            followers,
            credential.state,
            overlap,
            had_previous,
            credential.previous is not None,
            now,
        )
        status = readiness.with_consumers(resource, status, now, followed)
        events += followed.events
        wake += [followed.wake] if followed.wake else []
        rollouts = followers.rollouts
    status.update(rules.extra_status(spec))
    if state.extras:
        status["extraSecrets"] = extras_status(state.extras)
    if duplicate_of is not None:
        status, duplicate_events = readiness.not_ready(
            resource,
            status,
            now,
            Reason.DUPLICATE_CLIENT_ID,
            f"client ID {credential.client_id} is also used by {resource.kind} {duplicate_of}, "
            "created earlier, in the same registry: only that one is listed in it",
        )
        events += duplicate_events
    return Decision(
        status=status,
        secret=manifest if write else None,
        create=secret is None,
        events=tuple(events),
        requeue_at=min(wake) if wake else None,
        summary=events[0].message if events else ("Secret updated" if write else ""),
        rollouts=rollouts,
    )


def checked_credential(
    rules: KindRules,
    resource: ResourceSnapshot,
    secret: SecretSnapshot | None,
    now: datetime,
    *,
    state_key: StateKey,
) -> tuple[CredentialSpec, Credential] | None:
    """The resource's valid spec and the credential in its own Secret, if both can be
    believed (trust.py: its MAC verifies, or status vouches for it): what a registry, an
    htpasswd file or a JWK Set may publish."""
    owner = f"{resource.kind}/{resource.name}"
    if secret is None or not is_ours(secret.labels, secret.annotations, owner):
        return None
    try:
        spec = rules.spec_model.model_validate(resource.spec)
    except ValidationError:
        return None
    type_ = rules.credential_type(spec)
    parameters = GenerationParameters.of(spec, type_, rules.key_algorithm(spec))
    found = _read(secret, type_, parameters, resource, spec, now, state_key)
    return (spec, found) if isinstance(found, Credential) else None


def _read(
    secret: SecretSnapshot | None,
    type_: CredentialType,
    parameters: GenerationParameters,
    resource: ResourceSnapshot,
    spec: CredentialSpec,
    now: datetime,
    state_key: StateKey,
) -> Credential | Untrusted | None:
    """The credential in the Secret, checked; its previous value's expiry bounded too (the
    registry and JWK Set publish the previous value as long as the Secret says)."""
    if secret is None:
        return None
    found = read_credential(
        secret,
        type_,
        parameters,
        resource.status,
        now,
        state_key=state_key,
        scope=scope_of(resource, secret.name),
    )
    if not isinstance(found, Credential) or found.previous is None:
        return found
    state, problem = bounded_expiry(found.state, spec.rotation.overlap_duration)
    if problem is None:
        return found
    return replace(found, state=state, warnings=(*found.warnings, problem))


def _untrusted(secret_name: str, warnings: tuple[str, ...]) -> list[Event]:
    """Warnings for what was found wrong on the Secret and mended without a re-issue."""
    return [Event("Warning", "Untrusted", f"Secret {secret_name}: {w}") for w in warnings]


def _conflict_recheck(resource: ResourceSnapshot, now: datetime) -> datetime:
    """When to look at a conflict again: sooner while it is new, rarely once it lasts."""
    ready = find_condition(readiness.conditions_of(resource), ConditionType.READY)
    since = None
    if ready is not None and ready.reason == Reason.SECRET_CONFLICT.value:
        since = _timestamp(ready.last_transition_time)
    lasted = now - since if since is not None and since <= now else timedelta(0)
    return now + min(max(CONFLICT_RECHECK, lasted / 2), CONFLICT_RECHECK_MAX)


def _timestamp(value: str | None) -> datetime | None:
    try:
        return parse_timestamp(value) if value else None
    except ValueError:
        return None


def _issue_event(found: Untrusted | None, secret_name: str, revision: int) -> Event:
    if revision == 1:
        return Event("Normal", "Issued", f"Issued revision 1 into Secret {secret_name}")
    if found is None or found.lost:
        cause = "was deleted or lost its keys"
    else:
        cause = f"could not be trusted ({found.problem})"
    return Event(
        "Warning",
        "Reissued",
        f"Secret {secret_name} {cause}: issued a new credential (revision {revision})",
    )


def _check_reserved_keys(type_: CredentialType, templates: Mapping[str, str]) -> None:
    for key in sorted(reserved_keys(type_) & set(templates)):
        raise TemplateError(
            key, f"this key holds the {type_.value} credential and cannot be templated"
        )
