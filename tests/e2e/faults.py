"""The fault harness: toxiproxy between an operator and the API server, and identities.

Toxiproxy (built by tests/cluster/build.sh) listens on loopback and forwards TCP to
the API server; its HTTP API adds and removes toxics (latency, timeout, reset_peer,
...) and disables a proxy (a cut: connections closed, new ones refused). The
operator gets a kubeconfig whose server is the proxy; the API server's certificate
names 127.0.0.1, which the proxy's address also is, so TLS verifies unchanged.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.e2e.cluster import Cluster


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Toxiproxy:
    """One toxiproxy server process and its HTTP API."""

    binary: Path
    log_path: Path
    api_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "-host", "127.0.0.1", "-port", str(self.api_port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while True:
            try:
                self._call("GET", "/version")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            payload = response.read()
        try:
            return json.loads(payload) if payload.strip() else None
        except ValueError:
            return payload.decode(errors="replace")  # /version answers in plain text

    def proxy(self, name: str, upstream: str) -> Proxy:
        port = free_port()
        self._call(
            "POST",
            "/proxies",
            {"name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream, "enabled": True},
        )
        return Proxy(self, name, port)


@dataclass
class Proxy:
    server: Toxiproxy
    name: str
    port: int

    def add(self, toxic: str, type_: str, stream: str = "downstream", **attributes: Any) -> None:
        self.server._call(
            "POST",
            f"/proxies/{self.name}/toxics",
            {"name": toxic, "type": type_, "stream": stream, "toxicity": 1.0,
             "attributes": attributes},
        )  # fmt: skip

    def remove(self, toxic: str) -> None:
        self.server._call("DELETE", f"/proxies/{self.name}/toxics/{toxic}")

    @contextmanager
    def toxic(self, type_: str, stream: str = "downstream", **attributes: Any) -> Iterator[None]:
        name = f"{type_}-{stream}"
        self.add(name, type_, stream, **attributes)
        try:
            yield
        finally:
            self.remove(name)

    def enable(self, enabled: bool) -> None:
        """Disabled: every connection is closed and new ones are refused (a cut)."""
        self.server._call("POST", f"/proxies/{self.name}", {"enabled": enabled})

    def kubeconfig(self, source: Path, target: Path, token: str | None = None) -> Path:
        """`source`'s kubeconfig pointed at this proxy (and with `token`, if given)."""
        return kubeconfig_with(source, target, token, port=self.port)


def kubeconfig_with(
    source: Path, target: Path, token: str | None = None, port: int | None = None
) -> Path:
    """A copy of a kubeconfig with another user's token, or through a proxy's port."""
    config = yaml.safe_load(source.read_text())
    if port is not None:
        for entry in config["clusters"]:
            entry["cluster"]["server"] = f"https://127.0.0.1:{port}"
    if token is not None:
        for user in config["users"]:
            user["user"] = {"token": token}
    target.write_text(yaml.safe_dump(config))
    return target


def upstream_of(kubeconfig: Path) -> str:
    config = yaml.safe_load(kubeconfig.read_text())
    server = urlparse(config["clusters"][0]["cluster"]["server"])
    return f"{server.hostname}:{server.port}"


@pytest.fixture
def toxiproxy(cluster: Cluster, tmp_path: Path) -> Iterator[Toxiproxy]:
    """A toxiproxy server for this test (its proxies go with it)."""
    server = Toxiproxy(cluster.bin_dir / "toxiproxy-server", tmp_path / "toxiproxy.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()  # also when it never answered


@pytest.fixture
def api_proxy(toxiproxy: Toxiproxy, cluster: Cluster) -> Proxy:
    """A proxy to the API server."""
    return toxiproxy.proxy("apiserver", upstream_of(cluster.kubeconfig))


def service_account_token(cluster: Cluster, namespace: str, name: str) -> str:
    """A token of a new ServiceAccount bound to cluster-admin: a second identity that
    the audit log and API Priority and Fairness tell apart from the tests' admin
    (whose group, system:masters, APF exempts)."""
    cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    cluster.kubectl(
        "create", "clusterrolebinding", f"{namespace}-{name}"[:63], "--clusterrole=cluster-admin",
        f"--serviceaccount={namespace}:{name}",
    )  # fmt: skip
    token = cluster.kubectl("create", "token", name, "-n", namespace, "--duration=2h")
    return token.stdout.strip()


def audit_events(log: Path, username: str) -> list[dict[str, Any]]:
    """The audit log's write events by `username`, in order."""
    events = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if (event.get("user") or {}).get("username") == username:
            events.append(event)
    return events
