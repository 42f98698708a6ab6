"""After a failed pass: when to try the key again, and whether status should say so.

Pure decisions (the controller carries them out): a refusal that needs a person is
re-checked on a short-capped backoff, as its cause can go without any event on our
objects; the server's Retry-After is a floor no pass of the key may undercut; a
namespace being deleted or gone ends the key's retries.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TypeVar

from credsmith.api.status import Reason
from credsmith.runtime.backoff import RetryLimiter
from credsmith.runtime.refusals import Refusal, SecretWriteRefused, classify, transient
from credsmith.runtime.session import ApiError, describe

K = TypeVar("K", bound=Hashable)

# A refusal that needs a person (a policy, a quota) is re-checked at least this
# often: its cause can go away without any event on the objects we watch.
REFUSAL_RECHECK = 16.0
# Transient failures in a row before status shows Reconciling (a single 409 or a
# blip is routine and not worth a status write).
RECONCILING_AFTER = 3


class RecheckLater(Exception):
    """Nothing failed, but the key must be looked at again on a backoff."""

    def __init__(self, cap: float) -> None:
        super().__init__(f"recheck within {cap:.0f}s")
        self.cap = cap


@dataclass(frozen=True)
class Retry:
    delay: float  # seconds until the next pass
    # The server's Retry-After: no pass before `delay`, whatever queues the key.
    hold: bool = False
    refusal: Refusal | None = None  # None: a recheck, not a failure
    failures: int = 0  # in a row, this one included
    show: bool = False  # status (and a bounded Event) should show the refusal
    retry_after: float = 0.0


def plan_retry(retries: RetryLimiter[K], key: K, exc: Exception) -> Retry | None:
    """The next pass of `key` after `exc`; None when there is none to make."""
    if isinstance(exc, RecheckLater):
        return Retry(retries.when(key, cap=exc.cap))
    if isinstance(exc, ApiError) and (exc.namespace_terminating or exc.namespace_gone):
        retries.forget(key)  # the namespace, and the resource with it, is going or gone
        return None
    if isinstance(exc, SecretWriteRefused):
        refusal = classify(exc, exc.values)
    elif isinstance(exc, ApiError):
        refusal = transient(exc)
    else:
        refusal = Refusal(Reason.TRANSIENT_ERROR, describe(exc), permanent=False)
    floor = (exc.retry_after or 0.0) if isinstance(exc, ApiError) else 0.0
    delay = retries.when(key, floor=floor, cap=REFUSAL_RECHECK if refusal.permanent else None)
    failures = retries.failures(key)
    # Not under throttling: a status write now would be a retry sooner than the
    # server's Retry-After allows (and more load where there is too much).
    show = refusal.permanent or (failures >= RECONCILING_AFTER and not floor)
    return Retry(delay, bool(floor), refusal, failures, show, floor)
