"""What one reconcile pass knows, handed from stage to stage. Pure.

A pass is a pipeline (credential.STAGES): each stage takes the `Pass` so far and returns
either the next `Pass` (a copy with what it found or decided) or a `Decision`, which ends the
pass early (an invalid spec, a conflict, a template that does not render). A new capability
adds a stage and the fields it fills in, not a branch in the others.

Fields a later stage relies on are reached through properties that fail loudly when an
earlier stage has not set them (a stage out of order is a bug, not a state).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

from credsmith.reconcile.snapshots import Decision, Event, ResourceSnapshot, SecretSnapshot

if TYPE_CHECKING:
    from credsmith.api.common import CredentialSpec
    from credsmith.api.enums import CredentialType
    from credsmith.api.status import Reason
    from credsmith.reconcile.consumers import ConsumerPlan, ConsumersSeen
    from credsmith.reconcile.credential import KindRules
    from credsmith.reconcile.extras import Extras
    from credsmith.reconcile.parameters import GenerationParameters
    from credsmith.reconcile.policy import Generators
    from credsmith.reconcile.registration import ProviderSeen, Registration
    from credsmith.reconcile.secret_state import SecretState, StateScope
    from credsmith.reconcile.state_mac import StateKey
    from credsmith.reconcile.trust import Credential, Untrusted


T = TypeVar("T")


class StageOrderError(RuntimeError):
    """A stage read what no earlier stage had set."""


@dataclass(frozen=True)
class Valid:
    """The spec, validated, and what follows from it alone."""

    spec: CredentialSpec
    secret_name: str
    type: CredentialType
    parameters: GenerationParameters


@dataclass(frozen=True)
class Waiting:
    """A rotation that came due and waits (policy.decide_value): until when, and why."""

    until: datetime
    message: str


@dataclass(frozen=True)
class Pass:
    # The inputs: what the runtime read, and the time.
    rules: KindRules
    resource: ResourceSnapshot
    secret: SecretSnapshot | None
    now: datetime
    generate: Generators
    # The operator's key that authenticates the state it writes on a Secret (trust.py).
    state_key: StateKey
    duplicate_of: str | None = None
    # The registry holds Htpasswd (another client asked) and this client fits it: keep a
    # bcrypt hash too.
    registry_htpasswd: bool = False
    # What the runtime found of spec.consumers; None when the spec has none.
    seen: ConsumersSeen | None = None
    # What the runtime found of spec.identityProvider; None when the provider does not
    # exist (or the spec names none).
    provider: ProviderSeen | None = None
    # validate
    valid_: Valid | None = None
    # read_and_check
    request: str | None = None
    # repr=False here and below: a Credential holds values; a traceback must not show them.
    found: Credential | Untrusted | None = field(default=None, repr=False)
    spread: timedelta = timedelta(0)
    # decide_value, then narrowed by the stages after it (retirement, hashes)
    credential_: Credential | None = field(default=None, repr=False)
    change: Reason | None = None
    waiting: Waiting | None = None
    # settle_extras
    extras_: Extras | None = None
    # follow_consumers
    had_previous: bool = False
    followers: ConsumerPlan | None = None
    # render: the Secret's data (values: repr=False keeps them out of any traceback)
    data: Mapping[str, str] = field(default_factory=dict, repr=False)
    # register: what the identity provider must hold (verifier first)
    registration: Registration | None = None
    # write
    manifest: Mapping[str, Any] | None = field(default=None, repr=False)
    written: SecretState | None = None
    write: bool = False
    events: tuple[Event, ...] = ()

    @property
    def owner(self) -> str:
        return f"{self.resource.kind}/{self.resource.name}"

    @property
    def scope(self) -> StateScope:
        """What the state MAC binds: the owner and the Secret's name."""
        from credsmith.reconcile.trust import scope_of

        return scope_of(self.resource, self.secret.name if self.secret is not None else "")

    @property
    def posing(self) -> bool:
        """The Secret is labelled and annotated as ours, but no operator made it and status
        records no credential (trust.posing_as_ours): not ours to adopt or write."""
        from credsmith.reconcile.trust import posing_as_ours

        return self.secret is not None and posing_as_ours(
            self.secret, self.resource.status, self.state_key, self.scope
        )

    @property
    def valid(self) -> Valid:
        return _needed(self.valid_, "valid")

    @property
    def spec(self) -> CredentialSpec:
        return self.valid.spec

    @property
    def credential(self) -> Credential:
        return _needed(self.credential_, "credential")

    @property
    def extras(self) -> Extras:
        return _needed(self.extras_, "extras")

    @property
    def checked(self) -> Credential | None:
        """The credential as found in the Secret, if it passed its checks."""
        from credsmith.reconcile.trust import Credential

        return self.found if isinstance(self.found, Credential) else None

    def with_events(self, *events: Event) -> tuple[Event, ...]:
        return (*self.events, *events)


# A stage: the pass so far -> the next pass, or the Decision that ends it.
Stage: TypeAlias = Callable[[Pass], "Pass | Decision"]


def untrusted(secret_name: str, warnings: tuple[str, ...]) -> tuple[Event, ...]:
    """Warnings for what was found wrong on the Secret and mended without a re-issue."""
    return tuple(Event("Warning", "Untrusted", f"Secret {secret_name}: {w}") for w in warnings)


def _needed(value: T | None, name: str) -> T:
    if value is None:
        raise StageOrderError(f"{name} is read before a stage set it")
    return value
