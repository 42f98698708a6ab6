"""Helpers for e2e tests: kubectl, the operator as a process, and waiting on watches."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from kubernetes import client, config

T = TypeVar("T")

GROUP, VERSION = "credsmith.io", "v1alpha1"
PLURALS = {"ServiceAccountCredential": "serviceaccountcredentials", "ApiClient": "apiclients"}


@dataclass
class Cluster:
    """A cluster the tests talk to: a kubeconfig and the kubectl/helm built for it."""

    kubeconfig: Path
    bin_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            **extra,
        }

    def kubectl(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env or self.env(),
            check=False,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        config.load_kube_config(str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)


# The state key Secret (runtime/state_key.py) in `default`: every operator process of a test
# session shares it, as the replicas of one installation do.
STATE_KEY_NAMESPACE = "default"
STATE_KEY_NAME = "credsmith-state-key"
OPERATOR_ARGS = (
    "--metrics-port=0",
    "--liveness-port=0",
    f"--state-key-namespace={STATE_KEY_NAMESPACE}",
)
# Where a session keeps its Exposure and its operator's log directory (tests/conftest.py
# hands them from xdist workers to the controller for the secrecy check).
EXPOSURE = pytest.StashKey["Exposure"]()
OPERATOR_LOGS = pytest.StashKey[Path]()


@dataclass
class Operator:
    """`credsmith run` as a separate process, logging at DEBUG into a file per start."""

    cluster: Cluster
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    # Given to every start (the `operator` fixture: the test's namespace), before `args`.
    default_args: tuple[str, ...] = ()

    @property
    def log_files(self) -> list[Path]:
        return sorted(self.log_dir.glob("operator-*.log"))

    def start(self, *args: str, env: dict[str, str] | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        log = (self.log_dir / f"operator-{self.starts:03d}.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "credsmith.cli",
                "run",
                "--log-level=DEBUG",
                *OPERATOR_ARGS,
                *self.default_args,
                *args,
            ],
            env=self.cluster.env(**self.extra_env, **(env or {})),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def wait_watching(self, timeout: float = 120) -> None:
        """Until this start's caches hold their first listings ("Watching:" is logged)."""
        log = self.log_dir / f"operator-{self.starts:03d}.log"

        def watching() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the operator exited early:\n{log.read_text()[-3000:]}")
            return "Watching:" in log.read_text(errors="replace")

        wait_for(watching, timeout, interval=0.1, what="the operator watching")

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.log_files)


@dataclass
class Exposure:
    """Issued secret values, and the text of everything users and logs can see."""

    values: set[str] = field(default_factory=set)
    shown: list[str] = field(default_factory=list)

    def record_secret(self, secret: dict[str, Any]) -> dict[str, str]:
        """Remember the secret values of one of our Secrets; return its decoded data."""
        data = decode_data(secret)
        for key, value in data.items():
            if any(word in key for word in SECRET_KEYS):
                self.values.add(value)
        return data

    def record_namespace(self, cluster: Cluster, namespace: str) -> None:
        for what in ("events", "serviceaccountcredentials", "apiclients", "identityproviders"):
            result = cluster.kubectl("get", what, "-n", namespace, "-o", "json", check=False)
            self.shown.append(result.stdout)
        # Our Secrets too, to catch values issued by paths the test did not read.
        secrets = cluster.kubectl(
            "get", "secrets", "-n", namespace, "-l", "app.kubernetes.io/managed-by=credsmith",
            "-o", "json", check=False,
        )  # fmt: skip
        if secrets.returncode == 0:
            for item in json.loads(secrets.stdout)["items"]:
                self.record_secret(item)

    def leaks(self, text: str) -> list[str]:
        """Descriptions (never the values) of issued values found in `text`."""
        found = []
        for value in self.values:
            for form in _forms(value):
                if form in text:
                    found.append(
                        f"a value of {len(value)} characters (fingerprint {_digest(value)})"
                    )
                    break
        return found


# Keys whose values are secret: client_secret, api_key, password, private_key.pem and
# their _previous twins. client_id, key_id and public keys are not secret.
SECRET_KEYS = ("secret", "api_key", "password", "private_key")


def _forms(value: str) -> list[str]:
    """The value as it could appear in text: as is, base64, and each long line of a PEM."""
    forms = [value, b64(value)]
    forms += [line for line in value.splitlines() if len(line) >= 40 and "-----" not in line]
    return forms


def _digest(value: str) -> str:
    import hashlib

    return hashlib.sha256(value.encode()).hexdigest()[:12]


def load_registry(core: Any, namespace: str, name: str, directory: Path) -> Any:
    """The registry Secret's clients.json as an API server would mount and load it."""
    from credsmith.registry import ClientRegistry

    secret = core.read_namespaced_secret(name, namespace)
    path = directory / f"{name}-{time.monotonic_ns()}.json"
    path.write_bytes(base64.b64decode(secret.data["clients.json"]))
    return ClientRegistry.load(path)


def registry_if_written(core: Any, namespace: str, name: str, directory: Path) -> Any:
    """As load_registry, or None while the registry Secret does not exist yet: its first
    write may come after the members' status (document writes are coalesced)."""
    from kubernetes.client import ApiException

    try:
        return load_registry(core, namespace, name, directory)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def present(value: T | None) -> T:
    """A field the test reads that the API server sets (metadata, status) but the client types
    optional: None fails here as reading from it would."""
    assert value is not None
    return value


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def decode_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def wait_for(
    predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll a cheap predicate (tests only; the operator never polls)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def holds_for(predicate: Callable[[], Any], seconds: float = 3, what: str = "") -> None:
    """Assert a cheap predicate stays true for `seconds`: an absence (no such Event) checked
    once could only mean the operator had not got that far yet."""
    deadline = time.monotonic() + seconds
    while True:
        assert predicate(), f"no longer true: {what or predicate}"
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)


def ready_condition(obj: dict[str, Any]) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def manifest(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, **metadata},
        "spec": spec,
    }


def to_json(obj: Any) -> str:
    return json.dumps(obj)


def deny_policy(
    name: str,
    namespace: str,
    resource_rule: dict[str, Any],
    message: str,
    reason: str | None = None,
    expression: str = "false",
) -> str:
    """A ValidatingAdmissionPolicy and its Binding that deny the writes `resource_rule`
    matches in `namespace` (CEL `false`, or where `expression` is false): a real refusal
    from the API server, no webhook. `reason` (e.g. Forbidden) sets the HTTP status;
    default 422 Invalid."""
    validation: dict[str, Any] = {"expression": expression, "message": message}
    if reason is not None:
        validation["reason"] = reason
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [resource_rule]},
            "validations": [validation],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            "validationActions": ["Deny"],
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
            },
        },
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [policy, binding]})


def delete_deny_policy(cluster: Cluster, name: str) -> None:
    """Removes a deny_policy's policy and binding (already gone is fine)."""
    kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy"
    cluster.kubectl("delete", kinds, name, "--ignore-not-found")


def annotation_refused(cluster: Cluster, namespace: str, ref: str) -> bool:
    """The API server refuses a write to `ref` (e.g. deployment/web): probed with an
    annotation in a server-side dry run, so nothing changes."""
    result = cluster.kubectl(
        "annotate", "-n", namespace, ref, "probe=1", "--dry-run=server", check=False
    )
    return result.returncode != 0


def wait_policy_in_force(cluster: Cluster, namespace: str, ref: str, timeout: float = 30) -> None:
    """A deny_policy just applied refuses writes to `ref` a moment later: wait for that."""
    wait_for(lambda: annotation_refused(cluster, namespace, ref), timeout, what="policy in force")
