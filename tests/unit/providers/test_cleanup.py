"""The clean-up decision (providers/cleanup.py): which marked clients go. Pure."""

from credsmith.providers.base import MarkedClient, Marker, Owner
from credsmith.providers.cleanup import (
    claimed_client_ids,
    clients_to_delete,
    still_serves,
    still_to_delete,
)

PROVIDER = "uid-provider"
WATCHED = {"team-a", "team-b"}


def client(client_id, owner_uid, namespace="team-a", provider=PROVIDER):
    owner = Owner("ServiceAccountCredential", namespace, f"name-{owner_uid}", owner_uid)
    return MarkedClient(client_id, Marker(provider, owner, revision=1))


def decide(marked, live):
    owners = live if isinstance(live, dict) else dict.fromkeys(live)
    return clients_to_delete(marked, PROVIDER, owners, lambda ns: ns in WATCHED)


def recheck(marker, live=(), client_id="c1"):
    owners = live if isinstance(live, dict) else dict.fromkeys(live)
    return still_to_delete(client_id, marker, PROVIDER, owners, lambda ns: ns in WATCHED)


def test_read_again_before_delete_a_client_still_ours_and_orphaned_goes():
    assert recheck(client("c1", "dead").marker) is True


def test_read_again_before_delete_a_client_gone_or_unmarked_meanwhile_is_left():
    # None: deleted by someone else, or a person took it over and removed our marker.
    assert recheck(None) is False


def test_read_again_before_delete_a_client_adopted_by_another_provider_is_left():
    # Re-marked between the list and the delete (its owner's new provider resource).
    assert recheck(client("c1", "dead", provider="uid-new-provider").marker) is False


def test_read_again_before_delete_a_client_re_marked_for_a_live_owner_is_left():
    # The list said owner "dead"; now it carries a live owner's UID.
    assert recheck(client("c1", "alive").marker, live=["alive"]) is False


def test_read_again_before_delete_a_client_moved_to_an_unwatched_namespace_is_left():
    assert recheck(client("c1", "dead", namespace="team-z").marker) is False


def test_a_client_whose_owner_is_gone_is_deleted():
    assert decide([client("c1", "dead")], live=[]) == ["c1"]


def test_a_client_of_a_live_owner_is_kept():
    assert decide([client("c1", "alive")], live=["alive"]) == []


def test_a_recreated_owner_of_the_same_name_is_another_owner():
    # Names are reused; the UID decides: the old client goes, the new one stays.
    old, new = client("c-old", "uid-1"), client("c-new", "uid-2")
    assert decide([old, new], live=["uid-2"]) == ["c-old"]


def test_another_provider_resources_clients_are_kept():
    assert decide([client("c1", "dead", provider="uid-other")], live=[]) == []


def test_a_client_of_an_unwatched_namespace_is_kept():
    assert decide([client("c1", "dead", namespace="team-z")], live=[]) == []


def test_sorted_and_once():
    marked = [client("b", "dead"), client("a", "dead2"), client("b", "dead")]
    assert decide(marked, live=[]) == ["a", "b"]


def test_a_cluster_provider_still_serves_only_what_its_selector_selects():
    spec = {
        "hydra": {"adminURL": "http://hydra:4445"},
        "allowedNamespaces": {"matchLabels": {"t": "a"}},
    }
    assert still_serves(spec, {"t": "a"})
    assert not still_serves(spec, {"t": "b"})  # closed to it: its credentials count as gone
    assert not still_serves({"hydra": {"adminURL": "http://hydra:4445"}}, {"t": "a"})  # none
    assert still_serves(spec, None)  # a namespace not known: doubt keeps
    assert still_serves({"hydra": {}}, {"t": "b"})  # a spec that does not parse: doubt keeps


def test_a_living_owners_other_client_goes_once_its_client_id_is_on_record():
    # Killed after the provider accepted "c-first" and before anything was written: the
    # restarted operator registered "c-second" and recorded it. "c-first" is an orphan.
    first, second = client("c-first", "alive"), client("c-second", "alive")
    assert decide([first, second], live={"alive": frozenset({"c-second"})}) == ["c-first"]


def test_a_living_owner_with_no_client_id_on_record_keeps_every_client():
    # A first registration may be under way: nothing recorded yet, nothing deleted.
    assert decide([client("c1", "alive"), client("c2", "alive")], live={"alive": None}) == []


def test_claimed_client_ids_are_the_recorded_the_providers_and_the_specs():
    assert claimed_client_ids({}, {}) is None
    assert claimed_client_ids({"clientId": {"value": "next"}}, {}) is None  # nothing recorded
    assert claimed_client_ids({}, {"clientId": "c1"}) == frozenset({"c1"})
    status = {"clientId": "c1", "identityProvider": {"clientId": "c1-at-provider"}}
    spec = {"clientId": {"value": "c2"}}  # being moved to another client ID
    assert claimed_client_ids(spec, status) == frozenset({"c1", "c1-at-provider", "c2"})
