"""The first stages of a pass: a spec and templates we can work with, or Ready=False. Pure.

Both are checked before anything is issued, so that a spec that cannot be honoured leaves the
Secret as it was (behaviour 5); only an expired previous value still retires (expiry.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from credsmith.api.enums import CredentialType
from credsmith.api.status import Reason
from credsmith.issuing.templates import TemplateError, check_templates
from credsmith.reconcile.frozen import replace
from credsmith.reconcile.layout import SECRET_VARIABLES, extra_variable_names, reserved_keys
from credsmith.reconcile.parameters import GenerationParameters
from credsmith.reconcile.pass_state import Pass, Valid
from credsmith.reconcile.readiness import stop, validation_message
from credsmith.reconcile.snapshots import Decision


def validate(p: Pass) -> Pass | Decision:
    """The spec, validated against its model and the rules across fields."""
    try:
        spec = p.rules.spec_model.model_validate(p.resource.spec)
    except ValidationError as exc:
        return stop(p, Reason.INVALID_SPEC, validation_message(exc))
    if errors := spec.object_errors(p.resource.name):
        return stop(p, Reason.INVALID_SPEC, "; ".join(errors))
    type_ = p.rules.credential_type(spec)
    parameters = GenerationParameters.of(spec, type_, p.rules.key_algorithm(spec))
    valid = Valid(spec, spec.effective_secret_name(p.resource.name), type_, parameters)
    # What was found of spec.consumers counts only while the spec names some.
    return replace(p, valid_=valid, seen=p.seen if spec.consumers else None)


def check_templates_stage(p: Pass) -> Pass | Decision:
    """Templates that parse, use only known variables and leave the credential's keys alone
    (rendered later, once the values are known: desired_secret.render)."""
    spec = p.spec
    try:
        _check_reserved_keys(p.valid.type, spec.secret_template.data)
        check_templates(
            spec.secret_template.data, SECRET_VARIABLES | extra_variable_names(spec.extra_secrets)
        )
    except TemplateError as exc:
        return stop(p, Reason.INVALID_TEMPLATE, str(exc))
    return p


def _check_reserved_keys(type_: CredentialType, templates: Mapping[str, str]) -> None:
    for key in sorted(reserved_keys(type_) & set(templates)):
        raise TemplateError(
            key, f"this key holds the {type_.value} credential and cannot be templated"
        )
