"""What the runtime saw of a credential's spec.consumers in one pass, entry by entry: the
workloads it found, the entries it could not read, the rollouts the API server refused.
Pure data: the plan is made from it in consumers.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from credsmith.api.enums import WorkloadKind
from credsmith.reconcile.rollouts import Workload

# HTTP statuses of a refusal: RBAC (403) or an admission policy's denial (403, or 422 with
# its message). Any other error is a failure of its own (e.g. 400 for a selector).
FORBIDDEN = (403, 422)
# `refused` names this many failures, each cut to MAX_FAILURE characters, and counts the rest.
REFUSALS_SHOWN = 5
MAX_FAILURE = 1024


@dataclass(frozen=True)
class Failure:
    """The API server's refusal of one request: its HTTP status and what it said."""

    status: int
    message: str

    @property
    def forbidden(self) -> bool:
        return self.status in FORBIDDEN


@dataclass(frozen=True)
class Unread:
    """A spec.consumers entry the API server would not let us read: its workloads are
    unknown (they may all still run the previous value), except a named one that does not
    exist (404)."""

    kind: WorkloadKind
    name: str | None  # a named consumer
    selector: str | None  # or a selector's consumers, in labelSelector syntax
    status: int  # the API server's HTTP status (0: unreachable)
    message: str

    @property
    def ref(self) -> str:
        return (
            f"{self.kind.value}/{self.name}" if self.name else f"{self.kind.value} {self.selector}"
        )

    @property
    def missing(self) -> bool:
        return self.name is not None and self.status == 404


@dataclass(frozen=True)
class ConsumersSeen:
    """What the runtime found of a credential's spec.consumers in this pass: each entry
    read on its own, each workload rolled on its own."""

    workloads: tuple[Workload, ...] = ()
    unread: tuple[Unread, ...] = ()
    # The workloads the API server would not let us roll this pass: (kind, name) -> why.
    roll_failures: Mapping[tuple[str, str], Failure] = field(default_factory=dict)
    secret_name: str = ""  # the credential's Secret (what a workload must use to be rolled)
    # The workloads whose rollout the runtime holds to make it at once with other credentials
    # that use them and rotate now (shared_rollouts.py): (kind, name) -> rolled by then.
    roll_held: Mapping[tuple[str, str], datetime] = field(default_factory=dict)

    @property
    def missing(self) -> tuple[str, ...]:
        """Named consumers that do not exist ("Deployment/web")."""
        return tuple(u.ref for u in self.unread if u.missing)

    @property
    def refused(self) -> str | None:
        """Why some consumers could not be read or rolled (they may still run the previous
        value), or None."""
        failures = [f"{u.ref}: {u.message}" for u in self.unread if not u.missing]
        failures += [
            f"{kind}/{name}: {f.message}" for (kind, name), f in self.roll_failures.items()
        ]
        if not failures:
            return None
        # Bounded: a selector's hundreds of refused rollouts, each with the API server's
        # message, would pass what a condition's message may hold (and fail the pass).
        shown = [_cut(failure) for failure in failures[:REFUSALS_SHOWN]]
        more = len(failures) - len(shown)
        return "; ".join(shown) + (f"; and {more} more" if more else "")

    def with_roll_failures(self, failures: Mapping[tuple[str, str], Failure]) -> ConsumersSeen:
        return replace(self, roll_failures={**self.roll_failures, **failures})

    def with_roll_held(self, held: Mapping[tuple[str, str], datetime]) -> ConsumersSeen:
        return replace(self, roll_held={**self.roll_held, **held})


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FAILURE else text[: MAX_FAILURE - 3] + "..."
