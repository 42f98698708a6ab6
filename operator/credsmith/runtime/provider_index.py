"""Which credentials name which provider: kept from the credentials' watch events.

The provider controller (runtime/providers.py) asks it which credentials to queue again
when a provider changes, and its clean-up asks which credentials still own clients (the
owners it must not delete clients of). Split from runtime/providers.py, which runs the
providers' passes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from credsmith.providers.cleanup import LiveOwners, claimed_client_ids
from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.kinds import Key
from credsmith.runtime.provider_kinds import provider_key_of


class CredentialIndex:
    def __init__(self, credential: Callable[[Key], ResourceSnapshot | None]) -> None:
        self._credential = credential  # the credentials' informer cache, read only
        # Credential -> the provider it names; provider -> its credentials.
        self._named: dict[Key, Key] = {}
        self._credentials: defaultdict[Key, set[Key]] = defaultdict(set)
        # Credential UID -> its key, and back: the clean-up's re-check of one client looks
        # up its owner alone (reading every credential again for each is O(n^2)).
        self._by_uid: dict[str, Key] = {}
        self._uid_of: dict[Key, str] = {}

    def changed(self, key: Key, type_: str, resource: ResourceSnapshot) -> Key | None:
        """A credential's watch event. Returns the provider it named before when it names
        it no longer (deleted, or names another now): that one's client goes."""
        old = self._named.pop(key, None)
        if (old_uid := self._uid_of.pop(key, None)) is not None:
            self._by_uid.pop(old_uid, None)
        if type_ != "DELETED":
            self._uid_of[key], self._by_uid[resource.uid] = resource.uid, key
        if old is not None:
            self._credentials[old].discard(key)
            if not self._credentials[old]:
                del self._credentials[old]
        new = None if type_ == "DELETED" else provider_key_of(resource)
        if new is not None:
            self._named[key] = new
            self._credentials[new].add(key)
        return old if old is not None and old != new else None

    def credentials_of(self, provider: Key) -> list[Key]:
        return sorted(self._credentials.get(provider, ()))

    def naming(self, kind: str, namespace: str) -> list[Key]:
        """The credentials of `namespace` that name a provider of `kind`."""
        return [
            credential
            for credential, provider in self._named.items()
            if provider[0] == kind and credential[1] == namespace
        ]

    def provider_of(self, credential: Key) -> Key | None:
        return self._named.get(credential)

    def with_uid(self, uid: str) -> Key | None:
        return self._by_uid.get(uid)

    def live_owners(self, provider: Key, serves: Callable[[str], bool]) -> LiveOwners:
        """The credentials that exist and name `provider` (informer cache), by UID, with the
        client IDs each may hold; `serves(namespace)`: the provider still serves it."""
        return {
            found.uid: claimed_client_ids(found.spec, found.status)
            for credential in self.credentials_of(provider)
            if (found := self._credential(credential)) is not None and serves(found.namespace)
        }

    def live_owner(self, provider: Key, uid: str, serves: Callable[[str], bool]) -> LiveOwners:
        """live_owners, of the one credential with `uid` (empty: none such lives)."""
        credential = self._by_uid.get(uid)
        if credential is None or self._named.get(credential) != provider:
            return {}
        found = self._credential(credential)
        if found is None or found.uid != uid or not serves(found.namespace):
            return {}
        return {uid: claimed_client_ids(found.spec, found.status)}
