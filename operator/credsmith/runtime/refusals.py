"""What a failed write means for the user: a reason, a message, and whether it passes.

A refusal that will not pass by itself (RBAC or an admission policy, an exhausted
quota, an immutable Secret, a 422) becomes Ready=False and Stalled=True with a
precise reason and the API server's message; anything else is transient and shows
as Reconciling=True while it is retried. kstatus reads Reconciling and Stalled
before Ready. Neither kind of status is the end: the key is re-checked on a
backoff (an admission policy or a quota change is no event on our objects), and
the next successful pass clears both conditions.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from credsmith.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    find_condition,
    set_condition,
    stored_conditions,
)
from credsmith.runtime.session import ApiError

MESSAGE_LIMIT = 512  # characters of the server's message kept in status and Events
# Characters of any refusal's message in a condition: a backstop far below the condition's
# limit (32768), which a longer message would fail in the worker that shows it.
MAX_REFUSAL_MESSAGE = 4096
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Refusal:
    reason: Reason
    message: str
    permanent: bool


class SecretWriteRefused(ApiError):
    """The API server refused a write of one of our Secrets: an ApiError (code that
    handles those still works) that knows it was a Secret write, and what it carried."""

    values: tuple[str, ...] = ()

    @classmethod
    def of(cls, error: ApiError, values: Iterable[str]) -> SecretWriteRefused:
        refused = cls(
            error.status, error.reason, error.message, error.causes,
            kind=error.kind, retry_after=error.retry_after,
        )  # fmt: skip
        # The values the refused write carried, to scrub from the server's message.
        refused.values = tuple(values)
        return refused


def classify(error: ApiError, values: Iterable[str] = ()) -> Refusal:
    """The refusal an API error of a Secret write stands for."""
    text = error.message.lower()
    message = _clean(error.message, values)
    if error.status == 403 and "exceeded quota" in text:
        return Refusal(Reason.QUOTA_EXCEEDED, message, permanent=True)
    if "denied request" in text or "denied the request" in text:
        # ValidatingAdmissionPolicy (422 by default, or 403) and webhooks (403).
        return Refusal(Reason.SECRET_WRITE_DENIED, message, permanent=True)
    if error.status == 403 and not error.namespace_terminating:
        return Refusal(Reason.SECRET_WRITE_DENIED, message, permanent=True)
    if error.status == 422 and "immutable" in text:
        return Refusal(Reason.SECRET_IMMUTABLE, message, permanent=True)
    if error.status in (400, 413, 422):
        return Refusal(Reason.SECRET_INVALID, message, permanent=True)
    return transient(error, values)


def transient(error: ApiError, values: Iterable[str] = ()) -> Refusal:
    """A failure that is retried as it is: of a Secret write that is not refused for
    good, or of any other call (a refused status patch cannot be shown in status)."""
    message = _clean(error.message, values)
    if error.status == 429:
        return Refusal(Reason.THROTTLED, message, permanent=False)
    if error.status == 409:
        return Refusal(Reason.WRITE_CONFLICT, message, permanent=False)
    if error.status == 0 or error.status >= 500:
        return Refusal(Reason.API_SERVER_UNAVAILABLE, message, permanent=False)
    return Refusal(Reason.TRANSIENT_ERROR, message, permanent=False)


def secret_values(body: Mapping[str, Any]) -> list[str]:
    """The values a Secret body carries (to keep them out of refusal messages)."""
    values = [str(v) for v in (body.get("stringData") or {}).values()]
    for encoded in (body.get("data") or {}).values():
        values.append(str(encoded))
        try:
            values.append(base64.b64decode(str(encoded)).decode())
        except (ValueError, UnicodeDecodeError):
            continue
    return values


def _clean(message: str, values: Iterable[str]) -> str:
    """The server's message, truncated, with anything we sent as a value removed (an
    admission policy's messageExpression could quote the object it refused)."""
    for value in values:
        if len(value) >= 8:  # short strings (e.g. "true") are not secrets, and too common
            for form in (value, base64.b64encode(value.encode()).decode()):
                message = message.replace(form, REDACTED)
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 1] + "…"
    return message


def refused_status(
    status: Mapping[str, Any], generation: int, refusal: Refusal, now: datetime
) -> dict[str, Any]:
    """`status` with the refusal shown; everything else (revision, fingerprint: what
    the Secret still holds) stays as it is.

    Permanent: Ready=False and Stalled=True with the reason, Reconciling removed.
    Transient: Reconciling=True with the reason; Ready as it was (the credential in
    the Secret is still valid), or Unknown if there is none yet.
    """
    conditions = stored_conditions(status)

    def put(type_: ConditionType, state: ConditionStatus) -> None:
        nonlocal conditions
        condition = Condition(
            type=type_.value,
            status=state,
            observed_generation=generation,
            reason=refusal.reason.value,
            message=refusal.message[:MAX_REFUSAL_MESSAGE],
        )
        conditions = set_condition(conditions, condition, now)

    if refusal.permanent:
        put(ConditionType.READY, ConditionStatus.FALSE)
        put(ConditionType.STALLED, ConditionStatus.TRUE)
        conditions = [c for c in conditions if c.type != ConditionType.RECONCILING]
    else:
        put(ConditionType.RECONCILING, ConditionStatus.TRUE)
        if find_condition(conditions, ConditionType.READY) is None:
            put(ConditionType.READY, ConditionStatus.UNKNOWN)
    return {
        **status,
        "observedGeneration": generation,
        "conditions": [c.to_wire() for c in conditions],
    }


def without_reconciling(status: Mapping[str, Any]) -> Mapping[str, Any]:
    """A completed pass ends the runtime's Reconciling condition (from a transient failure);
    the reconcilers' own (a rotation that waits, RotationWaiting) stays."""
    conditions = status.get("conditions") or ()
    kept = [
        c
        for c in conditions
        if c.get("type") != ConditionType.RECONCILING.value
        or c.get("reason") == Reason.ROTATION_WAITING.value
    ]
    if len(kept) == len(conditions):
        return status
    return {**status, "conditions": kept}
