"""How large a document (registry Secret, JWK Set ConfigMap) may grow. Pure.

The API server refuses a Secret or ConfigMap whose data values add up to more than 1 MiB
(`data: Too long`; keys, metadata and the base64 of a Secret's values are not counted, and
the stored object, a bit larger, is well under etcd's 1.5 MiB request limit). The documents
count exactly that, the values' bytes, so no margin is needed: a document at the limit is
accepted. A set of members that would pass it keeps the earliest created that fit (the
order used for duplicate client IDs); the rest are left out and told how to split.
"""

from __future__ import annotations

from credsmith.api.status import Reason
from credsmith.reconcile.published import Unpublished

DATA_LIMIT = 1024 * 1024  # bytes of data values in one Secret or ConfigMap


class SizeBudget:
    """Admits members in order while the data stays within the limit; once one does not
    fit, every later one is refused too (so the earliest created always keep their place,
    and a member left out stays out until an earlier one leaves or shrinks)."""

    def __init__(self, base: int, limit: int = DATA_LIMIT) -> None:
        self.used, self.limit, self.full = base, limit, False

    def admit(self, cost: int) -> bool:
        if self.full or self.used + cost > self.limit:
            self.full = True
            return False
        self.used += cost
        return True


def registry_full(registry: str) -> Unpublished:
    return Unpublished(
        Reason.REGISTRY_FULL,
        f"registry {registry} would pass the 1 MiB limit of a Secret with this client "
        "(the clients created earlier fill it): name another registry in spec.registry.name "
        "for some of its clients, or shorten their roles",
    )


def jwks_full(jwks: str) -> Unpublished:
    return Unpublished(
        Reason.JWKS_FULL,
        f"JWK Set {jwks} would pass the 1 MiB limit of a ConfigMap with this credential's "
        "keys (the credentials created earlier fill it): name another JWK Set in "
        "spec.keyPair.jwks.name for some of its credentials",
    )
