"""`credsmith rotate KIND/NAME`: set the credsmith.io/rotate annotation to a new value.

The annotation is the user's request, read by the operator; a new value rotates once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client, config

from credsmith import GROUP, VERSION
from credsmith.api.common import ROTATE_ANNOTATION

# Every name kubectl accepts for our kinds.
PLURALS = {
    name: plural
    for plural, names in {
        "serviceaccountcredentials": ("serviceaccountcredential", "sacred"),
        "apiclients": ("apiclient",),
    }.items()
    for name in (plural, *names)
}


def request_rotation(
    kind: str, name: str, namespace: str | None, kubeconfig: str | None
) -> tuple[str, str]:
    plural = PLURALS.get(kind.lower().removesuffix(f".{GROUP}"))
    if plural is None:
        raise LookupError(f"unknown kind {kind!r}; expected one of {sorted(PLURALS)}")
    config.load_kube_config(config_file=kubeconfig)
    if namespace is None:
        _, context = config.list_kube_config_contexts(config_file=kubeconfig)
        namespace = context.get("context", {}).get("namespace") or "default"
    value = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patch = {"metadata": {"annotations": {ROTATE_ANNOTATION: value}}}
    try:
        client.CustomObjectsApi().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name, patch
        )
    except client.ApiException as exc:
        if exc.status == 404:
            raise LookupError(f"{plural}/{name} not found in namespace {namespace}") from None
        raise
    return f"{plural}.{GROUP}/{name}", value
