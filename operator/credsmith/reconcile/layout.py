"""Which Secret keys hold a credential of each type, and how to write and read them.

A credential is a client ID and one secret value (for KeyPair: the private key,
from which every public part is derived). During a rotation overlap the previous
value sits beside the current one under keys with a `_previous` suffix (before a
file extension, so mounted files keep theirs: `private_key_previous.pem`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from credsmith.api.alphabets import CHECKSUM_LENGTH, MAX_LENGTH
from credsmith.api.enums import CredentialType
from credsmith.api.extra_secrets import ExtraSecret, previous_key
from credsmith.issuing.keypair import KeyPair, key_pair_from_private_pem
from credsmith.issuing.template_extras import extra_variable
from credsmith.issuing.templates import placeholder
from credsmith.reconcile.extras import Extras
from credsmith.reconcile.parameters import MAX_PEM_CHARS, GenerationParameters

BASIC_AUTH_SECRET_TYPE = "kubernetes.io/basic-auth"


@dataclass(frozen=True)
class Layout:
    client_id_key: str
    value_key: str
    secret_type: str = "Opaque"

    def previous_key(self, key: str) -> str:
        return previous_key(key)


LAYOUTS: Mapping[CredentialType, Layout] = {
    CredentialType.CLIENT_SECRET: Layout("client_id", "client_secret"),
    CredentialType.API_KEY: Layout("key_id", "api_key"),
    CredentialType.BASIC_AUTH: Layout("username", "password", BASIC_AUTH_SECRET_TYPE),
    CredentialType.KEY_PAIR: Layout("client_id", "private_key.pem"),
}


def credential_data(type_: CredentialType, client_id: str, value: str) -> dict[str, str]:
    """The Secret keys of one credential."""
    layout = LAYOUTS[type_]
    data = {layout.client_id_key: client_id, layout.value_key: value}
    if type_ is CredentialType.KEY_PAIR:
        data.update(public_parts(key_pair_from_private_pem(value)))
    return data


def previous_data(type_: CredentialType, value: str) -> dict[str, str]:
    """The `_previous` keys for a value that stays valid during an overlap."""
    layout = LAYOUTS[type_]
    data = {layout.value_key: value}
    if type_ is CredentialType.KEY_PAIR:
        data.update(public_parts(key_pair_from_private_pem(value)))
    return {layout.previous_key(key): item for key, item in data.items()}


PUBLIC_KEYS = ("key_id", "public_key.pem", "public_jwk.json")


def public_parts(pair: KeyPair) -> dict[str, str]:
    return {
        "key_id": pair.key_id,
        "public_key.pem": pair.public_key_pem,
        "public_jwk.json": pair.public_jwk_json(),
    }


def key_id_of(type_: CredentialType, value: str) -> str | None:
    """The key ID reported in status (KeyPair only)."""
    if type_ is not CredentialType.KEY_PAIR:
        return None
    return key_pair_from_private_pem(value).key_id


def template_context(type_: CredentialType, data: Mapping[str, str]) -> dict[str, str]:
    """Variables for secretTemplate.data: every credential key in camelCase, plus
    `clientId` and `clientSecret` for every type (the design's example works for all).
    The `...Previous` variables are "" outside a rotation overlap, so a template that
    uses them renders at all times."""
    layout = LAYOUTS[type_]
    previous_keys = [layout.previous_key(layout.value_key)]
    if type_ is CredentialType.KEY_PAIR:
        previous_keys += [layout.previous_key(key) for key in PUBLIC_KEYS]
    context = {_camel(key): "" for key in previous_keys}
    context.update({_camel(key): value for key, value in data.items()})
    context["clientId"] = data[layout.client_id_key]
    context.setdefault("clientSecret", data[layout.value_key])
    context.setdefault("clientSecretPrevious", context[_camel(previous_keys[0])])
    return context


def _camel(key: str) -> str:
    words = key.replace(".", "_").split("_")
    return words[0] + "".join(word.capitalize() for word in words[1:])


def reserved_keys(type_: CredentialType) -> set[str]:
    """The Secret keys a credential of `type_` writes, which no template may write."""
    layout = LAYOUTS[type_]
    reserved = {layout.client_id_key, layout.value_key, layout.previous_key(layout.value_key)}
    if type_ is CredentialType.KEY_PAIR:
        reserved |= set(PUBLIC_KEYS) | {layout.previous_key(key) for key in PUBLIC_KEYS}
    return reserved


def _secret_variables(layout: Layout) -> tuple[str, str]:
    """The template variables of a layout's current and previous secret value."""
    return _camel(layout.value_key), _camel(layout.previous_key(layout.value_key))


# Template variables that hold secret material (of any type): templates may only output them,
# so that a template's outcome never depends on the value (issuing/templates.py).
SECRET_VARIABLES = frozenset(
    {"clientSecret", "clientSecretPrevious"}
    | {name for layout in LAYOUTS.values() for name in _secret_variables(layout)}
)

# The longest value any parameters of a type can give: what a previous value (issued with
# parameters no longer recorded) is assumed to be.
_MAX_RANDOM_SECRET_CHARS = 32 + MAX_LENGTH + CHECKSUM_LENGTH


def template_placeholders(
    type_: CredentialType, parameters: GenerationParameters, has_previous: bool
) -> dict[str, str]:
    """Stand-ins for the secret variables, as long as the longest value the parameters can
    give: a template's outcome is decided over these, never over the value itself."""
    current_name, previous_name = _secret_variables(LAYOUTS[type_])
    current = placeholder(parameters.max_value_chars())
    longest = (
        max(MAX_PEM_CHARS.values())
        if type_ is CredentialType.KEY_PAIR
        else _MAX_RANDOM_SECRET_CHARS
    )
    previous = placeholder(longest) if has_previous else ""
    return {
        current_name: current,
        "clientSecret": current,
        previous_name: previous,
        "clientSecretPrevious": previous,
    }


def extra_variable_names(extras: Sequence[ExtraSecret]) -> set[str]:
    """The template variables of the extra secrets (and their previous forms)."""
    return {extra_variable(k) for e in extras for k in (e.key, previous_key(e.key))}


def extra_variables(extras: Sequence[ExtraSecret], held: Extras) -> dict[str, tuple[str, str]]:
    """Template variable -> (value, stand-in) for every extra secret and its previous form;
    a previous form is "" outside an overlap, like the credential's own."""
    variables = {}
    for extra in extras:
        longest = len(extra.prefix or "") + extra.length
        variables[extra_variable(extra.key)] = (held.current[extra.key], placeholder(longest))
        old = held.previous.get(extra.key)
        stand_in = placeholder(_MAX_RANDOM_SECRET_CHARS) if old is not None else ""
        variables[extra_variable(previous_key(extra.key))] = (old or "", stand_in)
    return variables
