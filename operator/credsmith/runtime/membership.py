"""Which ApiClients name which registry Secret, kept from the watch events.

It lets a deleted ApiClient still update its registry (the object is gone, its
last known registry name is here), and gives a registry its members without
scanning every resource.
"""

from __future__ import annotations

from collections import defaultdict


class RegistryMembership:
    def __init__(self) -> None:
        self._registry_of: dict[tuple[str, str], str] = {}
        self._members: defaultdict[tuple[str, str], set[str]] = defaultdict(set)

    def update(self, namespace: str, client: str, registry: str | None) -> set[str]:
        """Record the client's registry (None: none, or deleted); return the registries
        whose documents this changes (the old one and the new one)."""
        old = self._registry_of.pop((namespace, client), None)
        if old is not None:
            self._members[(namespace, old)].discard(client)
            if not self._members[(namespace, old)]:
                del self._members[(namespace, old)]
        if registry is not None:
            self._registry_of[(namespace, client)] = registry
            self._members[(namespace, registry)].add(client)
        return {name for name in (old, registry) if name is not None}

    def registry_of(self, namespace: str, client: str) -> str | None:
        return self._registry_of.get((namespace, client))

    def members(self, namespace: str, registry: str) -> list[str]:
        return sorted(self._members.get((namespace, registry), ()))
