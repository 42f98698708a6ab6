"""The provider controller's pure parts: the URL allow-list, the registration memo, which
provider a credential names, and when a provider's clean-up is scheduled (its status:
tests/unit/reconcile/test_provider_status.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from credsmith.api.provider_ref import ProviderKind
from credsmith.providers.base import (
    DesiredClient,
    MarkedClient,
    Marker,
    Owner,
    ProviderError,
    ProviderReason,
)
from credsmith.reconcile.provider_status import CleanupOutcome
from credsmith.reconcile.registration import ProviderRef, Registration
from credsmith.reconcile.snapshots import Decision, ResourceSnapshot
from credsmith.runtime.kinds import Key
from credsmith.runtime.provider_kinds import (
    NamespaceSnapshot,
    ProviderOptions,
    provider_key_of,
    resync_of,
)
from credsmith.runtime.providers import CLEANUP_DEBOUNCE, Providers, _State
from credsmith.runtime.registration import register, restore
from credsmith.runtime.registration_memo import RegistrationMemo
from credsmith.runtime.url_allow import disallowed_url, url_allowed

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "prefixes", "allowed"),
    [
        ("http://10.0.0.1:4445/admin", (), True),  # no allow-list: any URL
        ("https://hydra.example/admin/clients", ("https://hydra.example",), True),
        ("https://hydra.example", ("https://hydra.example/",), True),
        ("https://HYDRA.example:443/x", ("https://hydra.example",), True),  # default port
        ("https://hydra.example.evil.test/", ("https://hydra.example",), False),
        ("https://hydra.example:8443/", ("https://hydra.example",), False),
        ("http://hydra.example/", ("https://hydra.example",), False),
        ("https://hydra.example/adminx", ("https://hydra.example/admin",), False),
        ("https://hydra.example/admin/x", ("https://hydra.example/admin/",), True),
        ("https://hydra.example/admin", ("https://hydra.example/admin",), True),
        ("https://other/", ("https://hydra.example", "https://other"), True),
        ("not a url", ("https://hydra.example",), False),
        ("http://169.254.169.254/latest", ("https://hydra.example",), False),
        # Dot segments are sent as written (yarl, encoded=True) and a server or proxy
        # resolves them: under the prefix as text, outside it as a path.
        ("https://gw.example/a/../b", ("https://gw.example/a",), False),
        ("https://gw.example/a/./../b", ("https://gw.example/a",), False),
        ("https://gw.example/a/%2e%2E/b", ("https://gw.example/a",), False),
        ("https://gw.example/a/..%2fb", ("https://gw.example/a",), False),
        ("https://gw.example/a/%2F../b", ("https://gw.example/a",), False),
        ("https://gw.example/a/..", ("https://gw.example/a",), False),
        ("https://gw.example/a/x..y/b", ("https://gw.example/a",), True),
    ],
)
def test_url_allow_list_compares_by_parts(
    url: str, prefixes: tuple[str, ...], allowed: bool
) -> None:
    assert url_allowed(url, prefixes) is allowed


def test_every_url_of_a_provider_is_checked() -> None:
    spec = {"hydra": {"adminURL": "https://ok/", "publicURL": "http://internal:4444/"}}
    assert disallowed_url(spec, ("https://ok",)) == "http://internal:4444/"
    assert disallowed_url(spec, ("https://ok", "http://internal:4444")) is None
    keycloak = {"keycloak": {"url": "https://kc/", "realm": "r"}}
    assert disallowed_url(keycloak, ("https://ok",)) == "https://kc/"


def _desired(secret: str = "s3cret", provider: str = "p-uid") -> DesiredClient:  # noqa: S107
    owner = Owner("ApiClient", "ns", "name", "o-uid")
    return DesiredClient("client", Marker(provider, owner, 1), "client_secret_basic", secret)


def test_memo_calls_the_provider_on_change_and_at_resync() -> None:
    clock = [1000.0]
    memo = RegistrationMemo(clock=lambda: clock[0])
    desired = _desired()
    assert memo.due(desired, 60)  # never made by this process
    memo.made(desired)
    assert not memo.due(desired, 60)
    assert memo.due(_desired("other"), 60)  # a new secret
    assert memo.next_check(desired, 60) == 1060.0
    clock[0] = 1059.5  # the requeue made for the resync comes a moment early: still due
    assert memo.due(desired, 60)
    memo.made(desired)
    memo.forget_provider("p-uid")
    assert memo.due(desired, 60)
    memo.made(desired)
    memo.forget(desired)
    assert memo.due(desired, 60)


def test_memo_holds_no_secret() -> None:
    memo = RegistrationMemo()
    memo.made(_desired("a-very-recognisable-secret"))
    assert "a-very-recognisable-secret" not in repr(vars(memo))
    # Keyed per process: two processes' fingerprints of one client differ.
    other = RegistrationMemo()
    assert other._fp(_desired()) != memo._fp(_desired())


def _credential(spec: dict[str, object]) -> ResourceSnapshot:
    return ResourceSnapshot(
        "credsmith.io/v1alpha1", "ApiClient", "ns", "c", "uid", 1, {}, {}, spec, {}
    )


def test_provider_key_of_a_credential() -> None:
    assert provider_key_of(_credential({})) is None
    named = _credential({"identityProvider": {"name": "hydra"}})
    assert provider_key_of(named) == ("IdentityProvider", "ns", "hydra")
    cluster = _credential({"identityProvider": {"kind": "ClusterIdentityProvider", "name": "h"}})
    assert provider_key_of(cluster) == ("ClusterIdentityProvider", "", "h")


def test_resync_of_a_provider() -> None:
    provider = _credential({"resync": "1m"})
    assert resync_of(provider) == 60.0
    assert resync_of(_credential({})) == 600.0


def test_a_deleted_credential_schedules_its_providers_clean_up_soon() -> None:
    added: list[Key] = []
    at: list[tuple[Key, float]] = []
    providers = Providers(
        None,  # type: ignore[arg-type]  # no API call in this test
        added.append,
        lambda key, when: at.append((key, when)),
        lambda key: None,
        ProviderOptions(),
    )
    key = ("ApiClient", "ns", "c")
    credential = _credential({"identityProvider": {"name": "hydra"}})
    provider = ("IdentityProvider", "ns", "hydra")
    providers.credential_changed(key, "ADDED", credential)
    assert providers.credentials_of(provider) == [key]
    assert at == []  # nothing to clean up
    before = time.time()
    providers.credential_changed(key, "DELETED", credential)
    assert providers.credentials_of(provider) == []
    assert [k for k, _ in at] == [provider]
    assert before + CLEANUP_DEBOUNCE - 1 <= at[0][1] <= time.time() + CLEANUP_DEBOUNCE
    # Naming another provider lets the first one's client go, too.
    at.clear()
    providers.credential_changed(key, "ADDED", credential)
    other = _credential({"identityProvider": {"kind": "ClusterIdentityProvider", "name": "h"}})
    providers.credential_changed(key, "MODIFIED", other)
    assert [k for k, _ in at] == [provider]
    assert providers.credentials_of(("ClusterIdentityProvider", "", "h")) == [key]
    # A change that keeps the provider schedules nothing.
    at.clear()
    providers.credential_changed(key, "MODIFIED", other)
    assert at == []


class _Recording:
    """Records what it is asked to hold (the runtime's calls, not a provider's behaviour)."""

    holds_two_secrets = False

    def __init__(self) -> None:
        self.ensured: list[DesiredClient] = []

    async def ensure(self, desired: DesiredClient) -> tuple[str, ...]:
        self.ensured.append(desired)
        return ()


def test_a_refused_secret_write_puts_back_what_the_secret_holds() -> None:
    providers = Providers(
        None,  # type: ignore[arg-type]  # no API call in this test
        lambda key: None,
        lambda key, when: None,
        lambda key: None,
        ProviderOptions(),
    )
    recording = _Recording()

    async def client(key: Key) -> _Recording:
        return recording

    providers.client = client  # type: ignore[assignment,method-assign]
    new, old = _desired("new-value"), _desired("old-value")
    registration = Registration(
        ProviderRef(ProviderKind.IDENTITY_PROVIDER, "ns", "hydra", "p-uid"),
        new,
        True,
        _credential({}),
        NOW,
        held=old,
    )
    providers.memo.made(new)  # register() made the provider hold the new value
    decision = Decision(status={}, registration=registration)
    asyncio.run(restore(providers, decision))
    assert [d.secret for d in recording.ensured] == ["old-value"]
    assert providers.memo.due(new, 600)  # the next pass asks the provider again
    # A write that did not change the value has nothing to put back.
    recording.ensured.clear()
    unchanged = replace(registration, changes_value=False, held=None)
    asyncio.run(restore(providers, replace(decision, registration=unchanged)))
    assert recording.ensured == []


class _Marked(_Recording):
    """Lists `marked`; `now` is what a client's marker is when read again (default: as
    listed), `refused` the deletes that fail with that error."""

    def __init__(
        self,
        marked: list[MarkedClient],
        now: dict[str, Marker | None] | None = None,
        refused: dict[str, ProviderError] | None = None,
    ) -> None:
        super().__init__()
        self.marked, self.deleted = marked, list[str]()
        marks: dict[str, Marker | None] = {m.client_id: m.marker for m in marked}
        self.now = marks | (now or {})
        self.refused = refused or {}

    async def list_marked(self, provider_uid: str) -> list[MarkedClient]:
        return self.marked

    async def delete(self, client_id: str) -> None:
        self.deleted.append(client_id)

    async def delete_if(self, client_id: str, doomed: Callable[[Marker | None], bool]) -> bool:
        if not doomed(self.now.get(client_id)):
            return False
        if client_id in self.refused:
            raise self.refused[client_id]
        self.deleted.append(client_id)
        return True


def _providers(added: list[Key]) -> Providers:
    return Providers(
        None,  # type: ignore[arg-type]  # no API call in this test
        added.append,
        lambda key, when: None,
        lambda key: None,
        ProviderOptions(),
    )


def test_a_client_the_clean_up_deleted_is_not_remembered_as_held() -> None:
    # A credential that named another provider for a while and names this one again must
    # have its client created again at once, not at the resync.
    providers = _providers([])
    desired = _desired()
    providers.memo.made(desired)
    provider = _credential({})  # a provider resource: only its uid is read here
    provider = replace(provider, uid="p-uid")
    client = _Marked([MarkedClient("client", desired.marker)])
    asyncio.run(providers._clean_up(("IdentityProvider", "ns", "hydra"), provider, client))  # type: ignore[arg-type]
    assert client.deleted == ["client"]
    assert providers.memo.due(desired, 600)


def _orphans(*client_ids: str) -> list[MarkedClient]:
    owner = Owner("ApiClient", "ns", "gone", "gone-uid")
    return [MarkedClient(client_id, Marker("p-uid", owner, 1)) for client_id in client_ids]


def _clean_up(client: _Marked) -> tuple[int, CleanupOutcome]:
    provider = replace(_credential({}), uid="p-uid")
    key: Key = ("IdentityProvider", "ns", "hydra")
    return asyncio.run(_providers([])._clean_up(key, provider, client))  # type: ignore[arg-type]


def test_the_clean_up_deletes_only_what_is_still_orphaned_when_read_again() -> None:
    adopted = Marker("another-provider-uid", Owner("ApiClient", "ns", "gone", "gone-uid"), 2)
    client = _Marked(_orphans("orphan", "adopted", "taken"), {"adopted": adopted, "taken": None})
    left, outcome = _clean_up(client)
    assert client.deleted == ["orphan"]
    assert (left, outcome) == (2, CleanupOutcome(1, ()))


def test_a_refused_delete_is_the_clean_ups_outcome_and_the_others_still_go() -> None:
    refused = ProviderError(ProviderReason.FORBIDDEN, "DELETE http://hydra/admin/clients/a: 403")
    client = _Marked(_orphans("a", "b"), refused={"a": refused})
    left, outcome = _clean_up(client)
    assert client.deleted == ["b"]
    assert left == 1
    assert outcome.failed
    assert outcome.failures == (("a", "DELETE http://hydra/admin/clients/a: 403"),)


def test_a_provider_gone_mid_clean_up_is_the_providers_failure_not_a_clean_up_outcome() -> None:
    down = ProviderError(ProviderReason.UNREACHABLE, "DELETE http://hydra/admin/clients/a: EOF")
    client = _Marked(_orphans("a", "b"), refused={"a": down})
    with pytest.raises(ProviderError):
        _clean_up(client)


def test_a_provider_pointed_elsewhere_requeues_its_credentials_at_once() -> None:
    added: list[Key] = []
    providers = _providers(added)
    key: Key = ("IdentityProvider", "ns", "hydra")
    credential_key: Key = ("ApiClient", "ns", "c")
    providers.credential_changed(
        credential_key, "ADDED", _credential({"identityProvider": {"name": "hydra"}})
    )

    def provider(url: str) -> ResourceSnapshot:
        return replace(_credential({"hydra": {"adminURL": url}}), kind="IdentityProvider")

    async def scenario() -> None:
        first = provider("http://hydra-a:4445")
        state = await providers._state(key, first)
        await providers._refresh_client(key, first, state)
        assert added == []  # a first build: the credentials' own passes come anyway
        await providers._refresh_client(key, provider("http://hydra-b:4445"), state)
        await providers.close()

    asyncio.run(scenario())
    assert added == [credential_key]


@pytest.mark.parametrize(
    ("labels", "deleted"),
    [
        ({"team": "a"}, []),  # still allowed: kept
        ({"team": "b"}, ["client"]),  # no longer allowed: its client goes
        (None, []),  # the namespace not in the cache: doubt, kept
    ],
)
def test_a_cluster_providers_clean_up_removes_clients_of_namespaces_it_no_longer_allows(
    labels: dict[str, str] | None, deleted: list[str]
) -> None:
    # Closing allowedNamespaces to a namespace makes its credentials Registered=False; a
    # client that stayed would keep accepting what their Secrets hold, for good.
    credential_key: Key = ("ApiClient", "ns", "c")
    credential = replace(
        _credential({"identityProvider": {"kind": "ClusterIdentityProvider", "name": "kc"}}),
        uid="o-uid",
    )
    providers = Providers(
        None,  # type: ignore[arg-type]  # no API call in this test
        lambda key: None,
        lambda key, when: None,
        lambda key: credential if key == credential_key else None,
        ProviderOptions(),
    )
    providers.credential_changed(credential_key, "ADDED", credential)
    if labels is not None:
        providers.namespaces[("", "ns")] = NamespaceSnapshot("ns", labels)
    spec = {
        "hydra": {"adminURL": "http://hydra:4445"},
        "allowedNamespaces": {"matchLabels": {"team": "a"}},
    }
    provider = replace(_credential(spec), kind="ClusterIdentityProvider", namespace="", uid="p-uid")
    client = _Marked([MarkedClient("client", _desired().marker)])
    key: Key = ("ClusterIdentityProvider", "", "kc")
    asyncio.run(providers._clean_up(key, provider, client))  # type: ignore[arg-type]
    assert client.deleted == deleted


class _AppliedButLost(_Recording):
    """Takes the new value, then fails (its answer lost, or a later call refused)."""

    def __init__(self, reason: ProviderReason) -> None:
        super().__init__()
        self.reason = reason

    async def ensure(self, desired: DesiredClient) -> tuple[str, ...]:
        await super().ensure(desired)
        if desired.secret == "new-value":
            raise ProviderError(self.reason, "http://hydra:4445: timed out")
        return ()


@pytest.mark.parametrize(
    ("reason", "put_back"),
    [
        (ProviderReason.UNREACHABLE, True),  # may have been applied: put back
        (ProviderReason.ERROR, True),
        # Keycloak: the secret set, then a scope or audience mapper call refused.
        (ProviderReason.FORBIDDEN, True),
        (ProviderReason.REJECTED, True),
        (ProviderReason.CONFLICT, False),  # not ours: never changed
        (ProviderReason.URL_NOT_ALLOWED, False),  # never called
    ],
)
def test_a_rotation_whose_answer_is_lost_puts_back_what_the_secret_holds(
    reason: ProviderReason, put_back: bool
) -> None:
    # The Secret write is dropped (verifier first); the provider may hold the new value
    # all the same, and Hydra's one secret would then refuse what consumers read.
    providers = _providers([])
    recording = _AppliedButLost(reason)

    async def client(key: Key) -> _Recording:
        return recording

    providers.client = client  # type: ignore[assignment,method-assign]
    registration = Registration(
        ProviderRef(ProviderKind.IDENTITY_PROVIDER, "ns", "hydra", "p-uid"),
        _desired("new-value"),
        True,
        _credential({}),
        NOW,
        held=_desired("old-value"),
    )
    decided = asyncio.run(register(providers, Decision(status={}, registration=registration)))
    assert decided.retry
    assert decided.secret is None
    expected = ["new-value", "old-value"] if put_back else ["new-value"]
    assert [d.secret for d in recording.ensured] == expected
    assert providers.memo.due(_desired("new-value"), 600)  # the retry asks again


def test_a_providers_spec_change_requeues_its_credentials() -> None:
    # allowedNamespaces opened (or closed) to a namespace: its credentials' Registered must
    # follow now, not whenever something else touches them (a refused one waits for nothing).
    added: list[Key] = []
    providers = _providers(added)
    credential_key: Key = ("ApiClient", "ns", "c")
    providers.credential_changed(
        credential_key,
        "ADDED",
        _credential({"identityProvider": {"kind": "ClusterIdentityProvider", "name": "h"}}),
    )
    key: Key = ("ClusterIdentityProvider", "", "h")
    provider = replace(_credential({}), kind="ClusterIdentityProvider", namespace="", name="h")
    providers._provider_changed(key[0], "ADDED", provider)
    providers._states[key] = _State(provider.uid)  # its first pass has run
    added.clear()
    providers._provider_changed(key[0], "MODIFIED", replace(provider, resource_version="2"))
    assert added == [key]  # a change of status or metadata: the provider only
    added.clear()
    changed = replace(provider, generation=2, resource_version="3")
    providers._provider_changed(key[0], "MODIFIED", changed)
    assert sorted(added) == sorted([key, credential_key])


def test_the_re_check_before_each_delete_looks_up_its_owner_not_every_credential() -> None:
    # A namespace of many credentials deleted at once dooms as many clients; reading every
    # living credential again for each one (a ClusterIdentityProvider's allowedNamespaces
    # parsed for each) is minutes on the event loop, the leader Lease not renewed meanwhile.
    living = 40
    provider_ref: dict[str, object] = {
        "identityProvider": {"kind": "ClusterIdentityProvider", "name": "kc"}
    }
    credentials = {
        ("ApiClient", "ns", f"c{i}"): replace(
            _credential(provider_ref), name=f"c{i}", uid=f"uid-{i}"
        )
        for i in range(living)
    }
    looked_up: list[Key] = []

    def credential(key: Key) -> ResourceSnapshot | None:
        looked_up.append(key)
        return credentials.get(key)

    providers = Providers(
        None,  # type: ignore[arg-type]  # no API call in this test
        lambda key: None,
        lambda key, when: None,
        credential,
        ProviderOptions(),
    )
    for living_key, found in credentials.items():
        providers.credential_changed(living_key, "ADDED", found)
    spec: dict[str, object] = {"hydra": {"adminURL": "http://hydra:4445"}}
    provider = replace(_credential(spec), kind="ClusterIdentityProvider", namespace="", uid="p-uid")
    # As many clients of gone credentials, and one client of each living one.
    orphans = _orphans(*(f"orphan-{i}" for i in range(living)))
    kept = [
        MarkedClient(f"kept-{i}", Marker("p-uid", Owner("ApiClient", "ns", f"c{i}", f"uid-{i}")))
        for i in range(living)
    ]
    client = _Marked(orphans + kept)
    key: Key = ("ClusterIdentityProvider", "", "kc")
    asyncio.run(providers._clean_up(key, provider, client))  # type: ignore[arg-type]
    assert sorted(client.deleted) == sorted(m.client_id for m in orphans)
    # The list once, then at most one look-up a client: not one a client per credential.
    assert len(looked_up) <= living + len(orphans) + len(kept)


def test_a_client_deleted_while_its_living_owner_took_it_elsewhere_is_made_again_at_once() -> None:
    # Hydra has no conditional delete: between the re-read and the delete, the owner's new
    # provider resource (same Hydra) may have adopted the client. Deleted all the same, it
    # must be registered again now, not at the new provider's resync.
    added: list[Key] = []
    credential_key: Key = ("ApiClient", "ns", "name")
    credential = replace(_credential({"identityProvider": {"name": "hydra2"}}), uid="o-uid")
    providers = Providers(
        None,  # type: ignore[arg-type]  # no API call in this test
        added.append,
        lambda key, when: None,
        lambda key: credential if key == credential_key else None,
        ProviderOptions(),
    )
    providers.credential_changed(credential_key, "ADDED", credential)
    other = replace(_credential({}), kind="IdentityProvider", name="hydra2", uid="p2-uid")
    providers.resources["IdentityProvider"][("ns", "hydra2")] = other
    adopted = _desired(provider="p2-uid")
    providers.memo.made(adopted)  # the new provider made the provider hold it
    added.clear()
    # Listed and read again under the old provider's marker: its owner names it no more.
    client = _Marked([MarkedClient("client", _desired(provider="p-uid").marker)])
    provider = replace(_credential({}), uid="p-uid")
    asyncio.run(providers._clean_up(("IdentityProvider", "ns", "hydra"), provider, client))  # type: ignore[arg-type]
    assert client.deleted == ["client"]
    assert providers.memo.due(adopted, 600)
    assert added == [credential_key]
