"""Status: metav1-style conditions and the fields both kinds report.

Conditions follow metav1.Condition and kstatus (Ready, Reconciling, Stalled), so
`kubectl wait --for=condition=Ready`, Argo CD and Flux read them. Status never holds a
secret value: only its fingerprint.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field

from credsmith.api.base import ObjectName, WireModel
from credsmith.api.common import ROTATE_ANNOTATION, ClientIdValue
from credsmith.api.consumers import MAX_CONSUMER_STATUSES, ConsumerStatus
from credsmith.providers.base import ProviderReason


class ConditionType(StrEnum):
    READY = "Ready"
    # kstatus: work is under way (e.g. waiting for a Secret write to settle).
    RECONCILING = "Reconciling"
    # kstatus: no progress without a change by a person (invalid spec, conflict).
    STALLED = "Stalled"
    # spec.consumers: whether every consumer has rolled out to the current revision.
    CONSUMERS_ROLLED_OUT = "ConsumersRolledOut"
    # spec.identityProvider: whether the provider holds the client as the Secret does.
    REGISTERED = "Registered"
    # On a provider: whether its last clean-up deleted every client it had to.
    CLEANED_UP = "CleanedUp"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    ISSUED = "Issued"
    ROTATED = "Rotated"
    # The Secret was deleted, stripped of its keys or edited so that its value could no
    # longer be trusted, and a new credential was issued.
    REISSUED = "Reissued"
    INVALID_SPEC = "InvalidSpec"
    INVALID_TEMPLATE = "InvalidTemplate"
    SECRET_CONFLICT = "SecretConflict"
    # Another client of the same registry, created earlier, has the same client ID.
    DUPLICATE_CLIENT_ID = "DuplicateClientId"
    # A document the credential is published in cannot be written: its name is taken by a
    # Secret (registry) or ConfigMap (JWK Set) credsmith does not manage. A refusal of the
    # document's write shows with the refusal's reason (SecretWriteDenied, QuotaExceeded...).
    REGISTRY_CONFLICT = "RegistryConflict"
    JWKS_CONFLICT = "JwksConflict"
    # The document would pass the API server's 1 MiB limit on a Secret's (registry) or a
    # ConfigMap's (JWK Set) data with this credential: the latest created are left out.
    REGISTRY_FULL = "RegistryFull"
    JWKS_FULL = "JwksFull"
    # The API server refused the Secret write for good (runtime/refusals.py):
    # RBAC or an admission policy, an exhausted ResourceQuota, an immutable Secret,
    # or a Secret the server finds invalid (e.g. annotations too large).
    SECRET_WRITE_DENIED = "SecretWriteDenied"
    QUOTA_EXCEEDED = "QuotaExceeded"
    SECRET_IMMUTABLE = "SecretImmutable"
    SECRET_INVALID = "SecretInvalid"
    # Transient: retried with backoff, shown as Reconciling=True meanwhile.
    THROTTLED = "Throttled"
    API_SERVER_UNAVAILABLE = "ApiServerUnavailable"
    WRITE_CONFLICT = "WriteConflict"
    TRANSIENT_ERROR = "TransientError"
    # Reconciling=True (Ready stays True): a rotation came due while the previous value is
    # still promised (previousExpiresAt), or a requested one within the 1m floor; it waits.
    ROTATION_WAITING = "RotationWaiting"
    # Stalled=True: the revision cannot go past 2^31 - 1 (what the Secret's state accepts);
    # issuing again would make a value the next pass rejects, so nothing is issued.
    REVISION_EXHAUSTED = "RevisionExhausted"
    # ConsumersRolledOut's reasons (they never touch Ready).
    ROLLED_OUT = "RolledOut"
    ROLLING_OUT = "RollingOut"
    # A consumer holds the previous value past previousExpiresAt (at most twice the overlap).
    CONSUMERS_LAGGING = "ConsumersLagging"
    # The previous value retired at twice the overlap while a consumer still had not finished.
    PREVIOUS_RETIRED_WHILE_LAGGING = "PreviousRetiredWhileLagging"
    # The API server refused to let the operator read or patch a consumer (RBAC, admission).
    CONSUMERS_FORBIDDEN = "ConsumersForbidden"
    # The API server failed a read or patch of a consumer otherwise (e.g. 400 for a selector
    # it rejects, 5xx): that consumer's status.consumers entry says how.
    CONSUMERS_FAILED = "ConsumersFailed"
    # Identity providers (spec.identityProvider; IdentityProvider/ClusterIdentityProvider).
    # Registered=True: the provider holds the client as the Secret does.
    REGISTERED = "Registered"
    # Registered=True, but the provider holds one client secret (Hydra): during a rotation
    # overlap the previous value stops working at the provider at once.
    OVERLAP_UNSUPPORTED = "OverlapUnsupported"
    # Registered=False: the named provider does not exist, or (a ClusterIdentityProvider) its
    # allowedNamespaces does not select the credential's namespace.
    PROVIDER_NOT_FOUND = "ProviderNotFound"
    PROVIDER_NOT_ALLOWED = "ProviderNotAllowed"
    # A provider's Ready=False (and its credentials' Registered=False): its URL is outside
    # the operator's allow-list (--identity-provider-url-allow).
    URL_NOT_ALLOWED = "URLNotAllowed"
    # A provider's Ready=True: reached and authenticated.
    PROVIDER_READY = "Connected"
    # A provider's CleanedUp condition (and the Warning Event of a failed clean-up).
    CLEANED_UP = "CleanedUp"
    CLEANUP_FAILED = "CleanupFailed"
    # A provider call failed (providers/base.py ProviderReason, the one source of these).
    PROVIDER_UNREACHABLE = ProviderReason.UNREACHABLE.value
    PROVIDER_TLS_ERROR = ProviderReason.TLS_ERROR.value
    PROVIDER_LOGIN_REFUSED = ProviderReason.LOGIN_REFUSED.value
    PROVIDER_FORBIDDEN = ProviderReason.FORBIDDEN.value
    PROVIDER_CONFLICT = ProviderReason.CONFLICT.value
    PROVIDER_REJECTED = ProviderReason.REJECTED.value
    PROVIDER_ERROR = ProviderReason.ERROR.value


# Cached: a pass formats the same few instants (issuedAt, rotatedAt, now) several times.
@lru_cache(maxsize=4096)
def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time writes it."""
    if moment.tzinfo is None:
        raise ValueError("a timestamp needs a time zone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# The instants a timestamp read back may name: anyone may write one (a Secret's annotation,
# a pod template's), and one at datetime's ends overflows in a change of time zone or a
# period added (OverflowError, where a ValueError says "malformed").
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (with "T" and a time zone) into an aware datetime in UTC;
    ValueError for any other text, and for an instant outside the years 1970 to 2999."""
    moment = datetime.fromisoformat(value)
    if "T" not in value.upper() or moment.tzinfo is None:
        raise ValueError("not an RFC 3339 timestamp with a time zone")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("not an instant of the years 1970 to 2999") from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ValueError("not an instant of the years 1970 to 2999")
    return moment


# Revisions are status integers (int32): 1 to MAX_REVISION, written in ASCII digits.
MAX_REVISION = 2**31 - 1
_REVISION_TEXT = re.compile(r"[0-9]{1,10}")


def parse_revision(text: object) -> int | None:
    """A revision read back from text (an annotation), as we write it; None for anything
    else: str.isdigit() takes "²", which int() refuses, and int() refuses past 4300 digits."""
    if not isinstance(text, str) or not _REVISION_TEXT.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_REVISION else None


def _check_timestamp(value: str) -> str:
    parse_timestamp(value)
    return value


Timestamp = Annotated[
    str,
    Field(max_length=64, json_schema_extra={"format": "date-time"}),
    AfterValidator(_check_timestamp),
]
# metav1.Condition's own bounds and patterns.
ConditionTypeName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=316,
        pattern=(
            r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
            r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
        ),
    ),
]
ReasonName = Annotated[
    str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
]
Generation = Annotated[int, Field(ge=0)]


def _metav1_required(schema: dict[str, Any]) -> None:
    # lastTransitionTime is optional in Python (set_condition fills it in) but, as in
    # metav1.Condition, required on the wire.
    schema["required"] = ["type", "status", "lastTransitionTime", "reason", "message"]


class Condition(WireModel):
    """One aspect of the resource's state (metav1.Condition)."""

    model_config = ConfigDict(json_schema_extra=_metav1_required)

    type: ConditionTypeName = Field(description="The condition's type, e.g. Ready.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    observed_generation: Generation | None = Field(
        None, description="The metadata.generation this condition was set for."
    )
    last_transition_time: Timestamp | None = Field(
        None, description="When status last changed (RFC 3339)."
    )
    reason: ReasonName = Field(description="Why, in one CamelCase word, e.g. SecretConflict.")
    message: Annotated[str, Field(max_length=32768)] = Field(
        "", description="Why, for people. Never contains a secret value."
    )


def stored_conditions(status: Mapping[str, Any]) -> list[Condition]:
    """The valid conditions of a status read back; anyone who may write status may write
    one that is not (a lastTransitionTime the CRD's date-time admits and we do not read),
    and it is not ours to keep."""
    found = []
    for raw in status.get("conditions") or ():
        try:
            found.append(Condition.model_validate(raw))
        except ValueError:  # pydantic's ValidationError too
            continue
    return found


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of the given type, if present."""
    return next((c for c in conditions if c.type == type_), None)


def set_condition(
    conditions: Sequence[Condition], new: Condition, now: datetime
) -> list[Condition]:
    """Return conditions with `new` set in place of the one of its type (or appended).

    metav1 semantics (apimachinery's meta.SetStatusCondition): lastTransitionTime
    changes only when status changes; then it is new's, or `now` if new has none.
    Reason, message and observedGeneration are always new's. The input is not changed.
    """
    stamp = new.last_transition_time or format_timestamp(now)
    old = find_condition(conditions, new.type)
    if old is not None and old.status == new.status and old.last_transition_time:
        stamp = old.last_transition_time
    updated = new.model_copy(update={"last_transition_time": stamp})
    if old is None:
        return [*conditions, updated]
    return [updated if c.type == new.type else c for c in conditions]


Fingerprint = Annotated[str, Field(max_length=23, pattern=r"^sha256:[0-9a-f]{16}$")]


class ExtraSecretStatus(WireModel):
    """One extra secret as issued: its key and a fingerprint, never the value."""

    key: Annotated[str, Field(min_length=1, max_length=200)] = Field(description="The Secret key.")
    fingerprint: Fingerprint = Field(description="`sha256:` and 16 hex digits of the value.")


class RegistrationStatus(WireModel):
    """spec.identityProvider as the provider holds it."""

    registered: bool = Field(
        description="Whether the provider holds the client with the value the Secret holds."
    )
    client_id: ClientIdValue | None = Field(None, description="The provider's client ID.")
    revision: Annotated[int, Field(ge=0)] | None = Field(
        None, description="The credential revision the provider last accepted."
    )


class CredentialStatus(WireModel):
    """What the operator did, as both kinds report it. Derived from the Secret."""

    observed_generation: Generation | None = Field(
        None, description="The metadata.generation the operator last acted on."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        description=(
            "Ready (always present), Reconciling and Stalled, as metav1.Condition; "
            "ConsumersRolledOut with spec.consumers; Registered with spec.identityProvider."
        ),
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    client_id: ClientIdValue | None = Field(None, description="The issued client ID.")
    secret_name: ObjectName | None = Field(
        None, description="The Secret that holds the credential."
    )
    revision: Annotated[int, Field(ge=0)] | None = Field(
        None, description="1 on first issue, +1 on every rotation or re-issue."
    )
    issued_at: Timestamp | None = Field(None, description="When the credential was first issued.")
    rotated_at: Timestamp | None = Field(
        None, description="When the current value was issued (first issue, rotation or re-issue)."
    )
    next_rotation_at: Timestamp | None = Field(
        None, description="When the next scheduled rotation is due; absent without rotation.period."
    )
    previous_expires_at: Timestamp | None = Field(
        None, description="When the previous value stops being valid; absent outside an overlap."
    )
    fingerprint: Fingerprint | None = Field(
        None,
        description=(
            "`sha256:` and the first 16 hex digits of the SHA-256 of the current secret, for audit."
        ),
    )
    extra_secrets: list[ExtraSecretStatus] | None = Field(
        None,
        max_length=16,
        description="The spec.extraSecrets keys in the Secret, each with a fingerprint.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key"]},
    )
    consumers: list[ConsumerStatus] | None = Field(
        None,
        max_length=MAX_CONSUMER_STATUSES,
        description=(
            "The workloads found among spec.consumers: the revision each was last rolled to "
            "and whether that rollout has completed; with a message, a workload not rolled "
            "(it does not use the Secret, or the API server refused) or an entry that could "
            "not be read (not found, refused, a selector the API server rejects)."
        ),
        # Atomic: an entry of a selector that could not be read has no name to key it by.
        json_schema_extra={"x-kubernetes-list-type": "atomic"},
    )
    identity_provider: RegistrationStatus | None = Field(
        None,
        description=(
            "With spec.identityProvider: whether the provider holds the client, its client ID "
            "and the revision it last accepted (condition Registered says why not)."
        ),
    )
    last_rotate_request: Annotated[str, Field(max_length=4096)] | None = Field(
        None,
        description=f"The last value of the {ROTATE_ANNOTATION} annotation acted upon.",
    )
    pending_rotate_request: Annotated[str, Field(max_length=4096)] | None = Field(
        None,
        description=(
            f"A value of the {ROTATE_ANNOTATION} annotation seen while a rotation waits "
            "(Reconciling, RotationWaiting): the rotation happens once when the wait ends, "
            "even if the annotation is removed meanwhile."
        ),
    )
