"""The Secret a credential should be in: its data, metadata and recorded state. Pure.

Labels and annotations others put on our Secret are kept, so that we never fight another
controller (or a person with `kubectl annotate`) over them; ours are the `credsmith.io/*`
annotations and the template keys we applied last time.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from credsmith.api.common import CredentialSpec
from credsmith.api.enums import DeletionPolicy
from credsmith.api.status import Reason
from credsmith.issuing.templates import TemplateError, render_templates
from credsmith.reconcile.extras import extras_data
from credsmith.reconcile.frozen import replace
from credsmith.reconcile.layout import (
    LAYOUTS,
    SECRET_VARIABLES,
    credential_data,
    extra_variables,
    previous_data,
    template_context,
    template_placeholders,
)
from credsmith.reconcile.pass_state import Pass
from credsmith.reconcile.readiness import stop
from credsmith.reconcile.secret_state import (
    SecretState,
    StateScope,
    annotations_of,
    equivalent,
    is_state_annotation,
    read_state,
    sealed,
)
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Decision,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey

# read_state needs a time only to assume missing timestamps of version 1, which then count
# as different anyway; any fixed time does.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def render(p: Pass) -> Pass | Decision:
    """The stage: the Secret's data: the credential's keys, the extras and the templates."""
    type_, credential, extras = p.valid.type, p.credential, p.extras
    data = credential_data(type_, credential.client_id, credential.value)
    if credential.previous is not None:
        data.update(previous_data(type_, credential.previous))
    # The context is made before the extras join the data: they are reached as extra.<key>.
    context = template_context(type_, data)
    has_previous = credential.previous is not None
    placeholders = template_placeholders(type_, p.valid.parameters, has_previous)
    secret_names = set(SECRET_VARIABLES)
    for name, (value, stand_in) in extra_variables(p.spec.extra_secrets, extras).items():
        context[name], placeholders[name] = value, stand_in
        secret_names.add(name)
    data.update(extras_data(extras))
    templates = p.spec.secret_template.data
    try:
        data.update(render_templates(templates, context, secret_names, placeholders))
    except TemplateError as exc:
        return stop(p, Reason.INVALID_TEMPLATE, str(exc))
    return replace(p, data=data)


def write_secret(p: Pass) -> Pass:
    """The stage: the Secret manifest, and whether it differs from the one read."""
    secret = p.secret
    manifest, state = desired_secret(
        p.resource, p.spec, p.valid.secret_name, p.credential.state, p.data, secret, p.state_key
    )
    write = secret is None or differs(secret, manifest, state)
    if write and secret is not None:
        manifest["metadata"]["resourceVersion"] = secret.resource_version
    return replace(p, manifest=manifest, written=state, write=write)


def desired_secret(
    resource: ResourceSnapshot,
    spec: CredentialSpec,
    secret_name: str,
    state: SecretState,
    data: Mapping[str, str],
    existing: SecretSnapshot | None,
    state_key: StateKey,
) -> tuple[dict[str, Any], SecretState]:
    """The manifest to write, and the state it records (template keys filled in), with the
    state's MAC. A Secret whose state is equivalent is not written for a MAC alone (see
    `differs`): one written before the MAC existed gets it on its next write."""
    template = spec.secret_template
    template_annotations = {
        k: v for k, v in template.annotations.items() if not is_state_annotation(k)
    }
    state = replace(
        state,
        template_labels=tuple(sorted(template.labels)),
        template_annotations=tuple(sorted(template_annotations)),
    )
    labels, annotations = _foreign_metadata(existing)
    scope = StateScope(resource.kind, resource.namespace, resource.name, secret_name)
    metadata: dict[str, Any] = {
        "name": secret_name,
        "namespace": resource.namespace,
        "labels": {**labels, **template.labels, MANAGED_BY_LABEL: MANAGED_BY},
        "annotations": {
            **annotations,
            **template_annotations,
            **sealed(annotations_of(state), state_key, scope),
        },
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
    assert state.parameters is not None  # a complete state: annotations_of checked it
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": LAYOUTS[state.parameters.type].secret_type,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }
    return manifest, state


def differs(secret: SecretSnapshot, manifest: Mapping[str, Any], state: SecretState) -> bool:
    """Whether `secret` must be written to become `manifest`. Our annotations are compared
    by what they record, so a Secret in an older version of the state is not rewritten for
    that alone."""
    metadata = manifest["metadata"]
    data = {key: base64.b64decode(value) for key, value in manifest["data"].items()}
    found = read_state(secret.annotations, _EPOCH).state
    if found is None or not equivalent(found, state):
        return True
    return (
        secret.type != manifest["type"]
        or dict(secret.data) != data
        or dict(secret.labels) != metadata["labels"]
        or _not_ours(secret.annotations) != _not_ours(metadata["annotations"])
        or _owner_refs(secret.owner_references) != _owner_refs(metadata.get("ownerReferences"))
    )


def _not_ours(annotations: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in annotations.items() if not is_state_annotation(k)}


def _owner_refs(refs: Any) -> list[tuple[Any, ...]]:
    fields = ("apiVersion", "kind", "name", "uid", "controller")
    return sorted(tuple(ref.get(f) for f in fields) for ref in refs or ())


def _foreign_metadata(existing: SecretSnapshot | None) -> tuple[dict[str, str], dict[str, str]]:
    if existing is None:
        return {}, {}
    found = read_state(existing.annotations, _EPOCH).state
    applied_labels = set(found.template_labels) if found else set()
    applied_annotations = set(found.template_annotations) if found else set()
    labels = {
        k: v for k, v in existing.labels.items() if k not in applied_labels | {MANAGED_BY_LABEL}
    }
    annotations = {
        k: v
        for k, v in existing.annotations.items()
        if k not in applied_annotations and not is_state_annotation(k)
    }
    return labels, annotations
