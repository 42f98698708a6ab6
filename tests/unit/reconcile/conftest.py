"""A harness for the reconcile tests: a fake API server holding one credential resource and
the Secrets of its namespace, which applies each Decision the way runtime/credential_pass.py does
(Secret first: create, or replace at the read resourceVersion; then status if it differs;
then Events) and checks, on every pass, what must always hold:

- no secret value (or a piece of it, or its base64) in status, Events, the summary, or the
  repr of the Decision or of a SecretSnapshot;
- status has the shape the CRD accepts (round-trips through the status model unchanged, so
  the apiserver prunes nothing and the next pass sees exactly what was written);
- Ready is present; the Secret manifest is well-formed, written only where it belongs,
  created only when absent, replaced only at the current resourceVersion, never retyped;
- requeue_at, when set, lies in the future (no busy loop);
- reconcile changed none of its inputs.

Tests reach the harness through the `world`, `deterministic` and `leaks` fixtures.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from credsmith import API_VERSION
from credsmith.api.alphabets import ALPHABETS
from credsmith.api.api_client import ApiClientStatus
from credsmith.api.common import ROTATE_ANNOTATION
from credsmith.api.enums import CredentialType, KeyAlgorithm
from credsmith.api.service_account_credential import ServiceAccountCredentialStatus
from credsmith.api.status import parse_timestamp
from credsmith.issuing.random_secret import with_checksum
from credsmith.reconcile.credential import (
    DEFAULT_GENERATORS,
    Generators,
    KindRules,
    reconcile,
)
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL, secret_name_of
from credsmith.reconcile.layout import LAYOUTS
from credsmith.reconcile.registration import (
    ProviderSeen,
    Registration,
    RegistrationOutcome,
    apply_outcome,
)
from credsmith.reconcile.secret_state import STATE_MAC, StateScope, sealed
from credsmith.reconcile.snapshots import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    Decision,
    Event,
    ResourceSnapshot,
    SecretSnapshot,
)
from credsmith.reconcile.state_mac import StateKey
from tests.state_key import TEST_STATE_KEY

# Not on a whole second: timestamps are written with second precision, which must not
# make a converged pass differ from the one before it.
T0 = datetime(2025, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)
NAMESPACE = "team-a"
STATUS_MODELS: dict[str, Any] = {
    SERVICE_ACCOUNT_CREDENTIAL.kind: ServiceAccountCredentialStatus,
    API_CLIENT.kind: ApiClientStatus,
}


# ---- finding secret values -----------------------------------------------------------


def _windows(text: str, size: int, step: int = 1) -> set[str]:
    if len(text) <= size:
        return {text}
    return {text[i : i + size] for i in range(0, len(text) - size + 1, step)}


def needles(value: str) -> set[str]:
    """What betrays a secret value: the value, any 16 consecutive characters of it (for a PEM:
    any line of its body), and runs of its base64 encoding."""
    found = {value}
    if "PRIVATE KEY" in value:
        body = [line for line in value.splitlines() if line and not line.startswith("-----")]
        found.update(line for line in body if len(line) >= 16)
        found.update(_windows("".join(body), 24, 8))
    else:
        found.update(_windows(value, 16))
    found.update(_windows(base64.b64encode(value.encode()).decode(), 20, 4))
    return found


def leaks(values: Iterable[str], places: Mapping[str, str]) -> list[str]:
    """Where (by place name, never quoting the value) any of the values shows up."""
    problems = []
    for number, value in enumerate(values):
        pieces = needles(value)
        for place, text in places.items():
            if any(piece in text for piece in pieces):
                problems.append(f"secret value #{number} appears in {place}")
    return problems


# ---- deterministic generators ---------------------------------------------------------


class Deterministic:
    """Predictable client IDs, UUIDs and secret values (KeyPair: real keys, they must parse)."""

    def __init__(self) -> None:
        self.counter = 0

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def client_id(self, spec: Any) -> str:
        return f"client-{self._next():03d}"

    def client_uuid(self) -> str:
        return str(uuid.UUID(int=self._next(), version=4))

    def value(self, spec: Any, type_: CredentialType, algorithm: KeyAlgorithm | None) -> str:
        if type_ is CredentialType.KEY_PAIR:
            return DEFAULT_GENERATORS.value(spec, type_, algorithm)
        # Of the shape the spec asks for: the reconciler checks every value it reads back.
        rng = random.Random(self._next())
        chars = ALPHABETS[spec.secret.alphabet]
        body = (spec.secret.prefix or "") + "".join(
            rng.choice(chars) for _ in range(spec.secret.length)
        )
        return with_checksum(body) if spec.secret.checksum else body

    def generators(self) -> Generators:
        return Generators(client_id=self.client_id, value=self.value, client_uuid=self.client_uuid)


# ---- the fake API server --------------------------------------------------------------


@dataclass(repr=False)
class World:
    rules: KindRules
    resource: dict[str, Any]
    generate: Generators
    now: datetime = T0
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    secret_writes: int = 0
    status_writes: int = 0
    values: list[str] = field(default_factory=list)  # every secret value ever generated
    resource_version: int = 100
    # What the runtime says of the registry: it holds Htpasswd for this client.
    registry_htpasswd: bool = False
    # The key the operator holds (a test may swap it: a lost key, a restarted operator).
    state_key: StateKey = TEST_STATE_KEY
    # spec.identityProvider: what the runtime found (None: missing), and the provider's
    # answer to each registration (default: it holds the client, nothing drifted), called
    # where the runtime calls client.ensure; every registration asked for, in order.
    provider: ProviderSeen | None = None
    answer: Callable[[Registration], RegistrationOutcome] = lambda registration: (
        RegistrationOutcome()
    )
    registrations: list[Registration] = field(default_factory=list)

    def __repr__(self) -> str:  # short, and without the Secrets
        return f"World({self.rules.kind}, now={self.now.isoformat()})"

    # -- reading

    @property
    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.resource["spec"]
        return spec

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.resource.setdefault("status", {})
        return status

    @property
    def generation(self) -> int:
        return int(self.resource["metadata"]["generation"])

    @property
    def uid(self) -> str:
        return str(self.resource["metadata"]["uid"])

    def snapshot(self) -> ResourceSnapshot:
        return ResourceSnapshot.from_api(copy.deepcopy(self.resource))

    @property
    def secret_name(self) -> str:
        return secret_name_of(self.snapshot())

    @property
    def secret(self) -> dict[str, Any] | None:
        return self.secrets.get(self.secret_name)

    def secret_snapshot(self) -> SecretSnapshot | None:
        stored = self.secret
        return None if stored is None else SecretSnapshot.from_api(copy.deepcopy(stored))

    def data(self) -> dict[str, str]:
        """The Secret's data, decoded."""
        stored = self.secret
        assert stored is not None, "no Secret"
        return {k: base64.b64decode(v).decode() for k, v in stored.get("data", {}).items()}

    def condition(self, type_: str = "Ready") -> dict[str, Any] | None:
        for condition in self.status.get("conditions", ()):
            if condition["type"] == type_:
                found: dict[str, Any] = condition
                return found
        return None

    @property
    def credential_type(self) -> CredentialType:
        if self.rules is API_CLIENT:
            return CredentialType.CLIENT_SECRET
        try:
            return CredentialType(self.spec.get("type", "ClientSecret"))
        except ValueError:  # an invalid spec
            return CredentialType.CLIENT_SECRET

    # -- changes others make

    def edit_spec(self, change: Callable[[dict[str, Any]], None]) -> None:
        """A spec edit: the apiserver bumps metadata.generation."""
        change(self.spec)
        self.resource["metadata"]["generation"] += 1

    def request_rotation(self, value: str | None) -> None:
        """A person sets the rotate annotation, once the 1m floor since the last rotation
        allows one (a request within it waits: test_reconcile_promises.py)."""
        rotated = self.status.get("rotatedAt")
        if rotated and self.now < parse_timestamp(rotated) + timedelta(minutes=1):
            self.advance(timedelta(minutes=1))
        self.annotate(ROTATE_ANNOTATION, value)

    def annotate(self, key: str, value: str | None) -> None:
        """Annotations are metadata: no new generation."""
        notes = self.resource["metadata"].setdefault("annotations", {})
        if value is None:
            notes.pop(key, None)
        else:
            notes[key] = value

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def store_secret(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Someone (not the operator) creates or replaces a Secret."""
        stored = copy.deepcopy(dict(manifest))
        stored.setdefault("apiVersion", "v1")
        stored.setdefault("kind", "Secret")
        meta = stored.setdefault("metadata", {})
        meta.setdefault("namespace", NAMESPACE)
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        self.resource_version += 1
        meta["resourceVersion"] = str(self.resource_version)
        self.secrets[meta["name"]] = stored
        return stored

    def foreign_secret(self, name: str | None = None, **metadata: Any) -> dict[str, Any]:
        data = {"password": base64.b64encode(b"hunter2-not-ours").decode()}
        return self.store_secret(
            {"metadata": {"name": name or self.secret_name, **metadata}, "data": data}
        )

    def delete_secret(self, name: str | None = None) -> None:
        del self.secrets[name or self.secret_name]

    def edit_secret(self, change: Callable[[dict[str, Any]], None]) -> None:
        stored = copy.deepcopy(self.secret)
        assert stored is not None
        change(stored)
        self.store_secret(stored)

    def edit_secret_as_operator(self, change: Callable[[dict[str, Any]], None]) -> None:
        """An edit with the state's MAC made anew under the operator's key: what an operator
        (an earlier version, another replica) could have written."""

        def sealed_change(secret: dict[str, Any]) -> None:
            change(secret)
            scope = StateScope(
                self.rules.kind, NAMESPACE, self.resource["metadata"]["name"], self.secret_name
            )
            notes = secret["metadata"]["annotations"]
            notes[STATE_MAC] = sealed(notes, self.state_key, scope)[STATE_MAC]

        self.edit_secret(sealed_change)

    def remove_keys(self, *keys: str) -> None:
        """Someone removes data keys from the Secret."""

        def remove(secret: dict[str, Any]) -> None:
            for key in keys:
                del secret["data"][key]

        self.edit_secret(remove)

    def lose_status(self) -> None:
        """As after a crash between writing the Secret and writing status."""
        self.resource["status"] = {}

    # -- the operator's pass

    def step(self, advance: timedelta | None = None) -> Decision:
        if advance is not None:
            self.advance(advance)
        resource = self.snapshot()
        secret = self.secret_snapshot()
        before = (copy.deepcopy(self.resource), copy.deepcopy(self.secret))
        decision = reconcile(
            self.rules,
            resource,
            secret,
            self.now,
            generate=self._recording(),
            registry_htpasswd=self.registry_htpasswd,
            state_key=self.state_key,
            provider=self.provider,
        )
        if decision.registration is not None:  # verifier first: before anything is written
            self.registrations.append(decision.registration)
            decision = apply_outcome(decision, self.answer(decision.registration))
        assert (resource, secret) == (self.snapshot(), self.secret_snapshot())
        assert before == (self.resource, self.secret), "reconcile changed its input"
        self._check(decision, resource, secret)
        self._apply(decision)
        self.decisions.append(decision)
        return decision

    def converge(self, passes: int = 4) -> Decision:
        """Run passes until one changes nothing; that one must also post no Event."""
        for _ in range(passes):
            writes, status = self.secret_writes, copy.deepcopy(self.status)
            decision = self.step()
            if self.secret_writes == writes and self.status == status:
                assert decision.events == ()
                return decision
        raise AssertionError(f"no convergence in {passes} passes")

    def _recording(self) -> Generators:
        def value(spec: Any, type_: CredentialType, algorithm: KeyAlgorithm | None) -> str:
            new = self.generate.value(spec, type_, algorithm)
            self.values.append(new)
            return new

        def extra(spec: Any) -> str:
            new = self.generate.extra(spec)  # noqa: S610 (not Django)
            self.values.append(new)
            return new

        return Generators(
            client_id=self.generate.client_id,
            value=value,
            client_uuid=self.generate.client_uuid,
            extra=extra,
        )

    def secret_values(self) -> list[str]:
        """Every secret value generated so far, and any found in stored Secrets."""
        found = list(self.values)
        layout = LAYOUTS[self.credential_type]
        keys = {layout.value_key, layout.previous_key(layout.value_key)}
        for stored in self.secrets.values():
            for key, encoded in (stored.get("data") or {}).items():
                raw = base64.b64decode(encoded)
                if key in keys and len(raw) >= 8:  # not the garbage tests put there
                    found.append(raw.decode(errors="replace"))
        return found

    def _check(
        self, decision: Decision, resource: ResourceSnapshot, secret: SecretSnapshot | None
    ) -> None:
        # Secrecy.
        places = {
            "status": json.dumps(decision.status),
            "summary": decision.summary,
            "repr(Decision)": repr(decision),
            "str(Decision)": str(decision),
            "repr(SecretSnapshot)": repr(secret),
        }
        for i, event in enumerate(decision.events):
            places[f"event {i}"] = f"{event.type} {event.reason} {event.message} {event!r}"
        if decision.secret is not None:
            places["repr(written SecretSnapshot)"] = repr(SecretSnapshot.from_api(decision.secret))
        assert leaks(self.secret_values(), places) == []

        # Status: accepted by the CRD as it is, Ready present, condition types unique.
        model = STATUS_MODELS[resource.kind]
        status = dict(decision.status)
        assert model.model_validate(status).to_wire() == status
        types = [c["type"] for c in status["conditions"]]
        assert "Ready" in types
        assert len(types) == len(set(types))
        assert status["observedGeneration"] == resource.generation
        for condition in status["conditions"]:
            if condition["type"] in ("Ready", "Stalled", "Reconciling"):
                assert condition["observedGeneration"] == resource.generation

        for event in decision.events:
            assert event.type in ("Normal", "Warning")
            assert event.reason.isalnum()
            assert event.reason[0].isupper()

        if decision.requeue_at is not None:
            assert decision.requeue_at.tzinfo is not None
            assert decision.requeue_at > self.now, "requeue_at not in the future: a busy loop"

        # The Secret manifest.
        manifest = decision.secret
        if manifest is None:
            return
        meta = manifest["metadata"]
        assert manifest["apiVersion"] == "v1"
        assert manifest["kind"] == "Secret"
        assert meta["name"] == secret_name_of(resource)
        assert meta["namespace"] == resource.namespace
        assert meta["labels"][MANAGED_BY_LABEL] == MANAGED_BY
        assert all(isinstance(v, str) for v in meta["annotations"].values())
        assert "finalizers" not in meta
        for encoded in manifest["data"].values():
            base64.b64decode(encoded, validate=True)
        if decision.create:
            assert secret is None, "create over an existing Secret (409)"
            assert "resourceVersion" not in meta
        else:
            assert secret is not None, "replace of a Secret that is not there (404)"
            assert meta["resourceVersion"] == secret.resource_version
            assert manifest["type"] == secret.type, "a Secret's type is immutable"

    def _apply(self, decision: Decision) -> None:
        if decision.secret is not None:
            stored = copy.deepcopy(dict(decision.secret))
            stored["metadata"].pop("resourceVersion", None)
            self.store_secret(stored)
            self.secret_writes += 1
        if decision.status != self.status:
            self.resource["status"] = copy.deepcopy(dict(decision.status))
            self.status_writes += 1
        self.events.extend(decision.events)


def resource_manifest(
    rules: KindRules,
    spec: Mapping[str, Any],
    name: str = "billing",
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": rules.kind,
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rules.kind}/{name}")),
            "generation": 1,
            "resourceVersion": "7",
            "annotations": dict(annotations or {}),
        },
        "spec": copy.deepcopy(dict(spec)),
    }


MakeWorld = Callable[..., World]


@pytest.fixture(name="leaks")
def leaks_fixture() -> Callable[[Iterable[str], Mapping[str, str]], list[str]]:
    """The secret-value scanner the harness uses on every pass."""
    return leaks


@pytest.fixture
def deterministic() -> Deterministic:
    return Deterministic()


@pytest.fixture
def world(deterministic: Deterministic) -> MakeWorld:
    """world(spec, rules=SERVICE_ACCOUNT_CREDENTIAL, name=..., annotations=..., real=False):
    a World with the resource created; `real=True` uses the operator's own generators."""

    def make(
        spec: Mapping[str, Any],
        rules: KindRules = SERVICE_ACCOUNT_CREDENTIAL,
        name: str = "billing",
        annotations: Mapping[str, str] | None = None,
        real: bool = False,
    ) -> World:
        return World(
            rules=rules,
            resource=resource_manifest(rules, spec, name, annotations),
            generate=DEFAULT_GENERATORS if real else deterministic.generators(),
        )

    return make
