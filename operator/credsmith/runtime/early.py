"""Which passes may run before every cache holds its first listing.

After a restart the listings of 50,000 credentials and their Secrets take tens of seconds;
a credential created or changed meanwhile should not wait for them. A pass reads its
resource (listed: it is how the key came), its Secret (asked of the API server while the
Secrets are not all listed: a 404 there means missing, an absence from a half-filled cache
does not), and, for some credentials, what other caches hold: the members of its registry
or JWK Set, its identity provider, the other credentials that share a consumer. Those
wait for the listings, as every pass did before.
"""

from __future__ import annotations

from credsmith.reconcile.snapshots import ResourceSnapshot
from credsmith.runtime.kinds import KindConfig
from credsmith.runtime.provider_kinds import provider_key_of


def passes_before_sync(config: KindConfig, resource: ResourceSnapshot) -> bool:
    """Whether the resource's pass reads nothing but itself and its own Secret."""
    body = {"spec": resource.spec}
    for document_of in (config.registry_of, config.jwks_of):
        if document_of is not None and document_of(body) is not None:
            return False  # a registry or JWK Set: built from every member
    if provider_key_of(resource) is not None:
        return False  # the provider's cache, and its client
    # Consumers shared with other credentials are rolled once for all of them.
    return not resource.spec.get("consumers")
