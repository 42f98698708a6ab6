"""credsmith's two kinds as kubectl names them, and NAME arguments resolved to one of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from credsmith_kubectl import GROUP
from credsmith_kubectl.flags import UsageError


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short: str  # as `status` shows it: sacred/x, apiclient/x

    @property
    def resource(self) -> str:  # fully qualified, so no other group's "apiclients" matches
        return f"{self.plural}.{GROUP}"


SERVICE_ACCOUNT_CREDENTIAL = Kind("ServiceAccountCredential", "serviceaccountcredentials", "sacred")
API_CLIENT = Kind("ApiClient", "apiclients", "apiclient")
KINDS = (SERVICE_ACCOUNT_CREDENTIAL, API_CLIENT)
ALL_KINDS = ",".join(kind.resource for kind in KINDS)  # one kubectl argument for both
BY_KIND = {kind.kind: kind for kind in KINDS}
# Every spelling kubectl accepts for our kinds (singular, plural, short, qualified).
ALIASES = {
    alias: kind
    for kind in KINDS
    for name in (kind.plural, kind.kind.lower(), kind.short)
    for alias in (name, f"{name}.{GROUP}")
}


def kind_of(text: str) -> Kind:
    found = ALIASES.get(text.lower())
    if found is None:
        known = ", ".join(sorted({kind.short for kind in KINDS} | {k.plural for k in KINDS}))
        raise UsageError(f'unknown kind "{text}": one of {known}')
    return found


def split_name(argument: str) -> tuple[Kind | None, str]:
    """`sacred/x` -> (ServiceAccountCredential, x); a bare `x` -> (None, x)."""
    kind, slash, name = argument.rpartition("/")
    if not slash:
        return None, argument
    if not name:
        raise UsageError(f'"{argument}" names no object')
    return kind_of(kind), name


def one_named(name: str, found: Iterable[Mapping[str, Any]]) -> Kind:
    """The kind of the one credential called `name` among both kinds' objects of that name;
    none or two are the user's to resolve."""
    kinds = [BY_KIND[str(obj.get("kind"))] for obj in found if obj.get("kind") in BY_KIND]
    if not kinds:
        raise LookupError(
            f'error: no credential named "{name}": neither '
            f"{SERVICE_ACCOUNT_CREDENTIAL.resource} nor {API_CLIENT.resource}"
        )
    if len(kinds) > 1:
        choices = " or ".join(f"{kind.short}/{name}" for kind in kinds)
        raise UsageError(f'"{name}" names more than one credential: say which, {choices}')
    return kinds[0]
