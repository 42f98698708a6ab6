"""Keycloak for the tests: the distribution tests/cluster/keycloak.sh installs into the
tool cache, run as `kc.sh start-dev` on loopback ports with its H2 database in a tmp
directory, and set up as an operator of credsmith would: a realm, and a confidential
client whose service account has realm-management's `manage-clients` (the client
credsmith signs in with, never the master admin).

Fixtures (import keycloak_server_fixture and keycloak_realm_fixture into the test module
or a conftest; they are named without `_fixture`, so a test's parameter shadows no import):

- `keycloak_server`: one Keycloak per pytest process. It starts in 15 s on a quiet
  machine and in one to two and a half minutes on this busy one, so the test modules that
  use it are listed in tests/conftest.py's ONE_WORKER_MODULES: under xdist (`make test`)
  one worker runs them all, and one Keycloak starts per run. Another worker that needs
  one gets its own (free ports, its own database): safe, only slow.
- `keycloak_realm`: a realm of that server with credsmith's admin client.

$CREDSMITH_TEST_KEYCLOAK_URL points the fixtures at a running Keycloak instead (its
master admin admin/admin), for quick iterations: each session makes a realm of its own.

Token requests (tests/providers/tokens.py, imported from here too) return (status, JSON
body): a refused request is an answer, not an exception.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from credsmith.dev.process import free_port as free_port  # tests import it from here
from tests.providers.tokens import call
from tests.providers.tokens import token_with_assertion as token_with_assertion  # tests import
from tests.providers.tokens import token_with_secret as token_with_secret  # them from here

INSTALL_SCRIPT = Path(__file__).resolve().parents[1] / "cluster" / "keycloak.sh"
MASTER_ADMIN = ("admin", "admin")  # the bootstrap admin of a throwaway dev server
START_TIMEOUT = 300.0  # seconds; ~15 s alone, much more on a loaded 2-core machine


def install_keycloak() -> Path:
    """The installed distribution (tests/cluster/keycloak.sh; skipped when current)."""
    if shutil.which("java") is None:
        pytest.skip("Keycloak needs java (apt-get install openjdk-17-jre-headless)")
    done = subprocess.run([str(INSTALL_SCRIPT)], check=True, capture_output=True, text=True)
    if not done.stdout.strip():
        pytest.skip(f"Keycloak not installed: {done.stderr.strip()[-300:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class KeycloakServer:
    """`kc.sh start-dev` on free loopback ports, its database under `workdir`."""

    def __init__(self, home: Path, workdir: Path) -> None:
        self.home = home
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "keycloak.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Started and answering. The first start-dev of an installation writes its build
        (lib/quarkus) there: starts in several processes take turns on a lock beside it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with (self.home.parent / f"{self.home.name}.start.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._start()

    def _start(self) -> None:
        self.port = self.port or free_port()
        env = {
            **os.environ,
            "KC_BOOTSTRAP_ADMIN_USERNAME": MASTER_ADMIN[0],
            "KC_BOOTSTRAP_ADMIN_PASSWORD": MASTER_ADMIN[1],
            # Runtime options only (a build option would make start-dev rebuild the
            # shared installation): the H2 file of dev mode goes to our tmp directory.
            "KC_DB_URL": f"jdbc:h2:file:{self.workdir}/h2/keycloakdb;NON_KEYWORDS=VALUE",
        }
        command = [
            str(self.home / "bin" / "kc.sh"),
            "start-dev",
            f"--http-port={self.port}",
            "--http-host=127.0.0.1",
            # Its management interface would take 9000 on every instance.
            f"--http-management-port={free_port()}",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"Keycloak exited: {self.log.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                if call("GET", f"{self.url}/realms/master", timeout=5)[0] == 200:
                    return
            time.sleep(1)
        raise RuntimeError(
            f"Keycloak not ready in {START_TIMEOUT}s: {self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        """SIGTERM to kc.sh, which passes it on to its java and waits for it; after a minute
        SIGKILL to every process of the session kc.sh leads (java runs in a process group
        of its own, so a kill of kc.sh's group would miss it)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            for pid in _session_members(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait()

    def master_token(self) -> str:
        status, body = call(
            "POST",
            f"{self.url}/realms/master/protocol/openid-connect/token",
            form={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": MASTER_ADMIN[0],
                "password": MASTER_ADMIN[1],
            },
        )
        assert status == 200, (status, body)
        token: str = body["access_token"]
        return token

    def admin(self, method: str, path: str, json_body: Any = None) -> tuple[int, Any]:
        """A call of the master admin to /admin/realms{path} (setting up, tampering)."""
        headers = {"Authorization": f"Bearer {self.master_token()}"}
        return call(method, f"{self.url}/admin/realms{path}", json_body=json_body, headers=headers)


def _session_members(session: int) -> list[int]:
    """The processes of a session (the sixth field of /proc/PID/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == session:
                members.append(int(stat.parent.name))
    return members


@dataclass
class KeycloakRealm:
    """A realm and credsmith's admin client of it (manage-clients only)."""

    server: KeycloakServer
    realm: str
    admin_client_id: str
    admin_client_secret: str = field(repr=False)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/realms/{self.realm}/protocol/openid-connect/token"

    def admin(self, method: str, path: str, json_body: Any = None) -> tuple[int, Any]:
        """The master admin on this realm: what a person editing Keycloak would do."""
        return self.server.admin(method, f"/{self.realm}{path}", json_body)

    def client(self, client_id: str) -> dict[str, Any] | None:
        status, found = self.admin("GET", f"/clients?clientId={urllib.parse.quote(client_id)}")
        assert status == 200, status
        return next((c for c in found if c["clientId"] == client_id), None)

    def add_admin_client(self, client_id: str, roles: tuple[str, ...]) -> str:
        """A confidential client whose service account has these realm-management roles;
        returns its secret."""
        secret = secrets.token_urlsafe(24)
        status, _ = self.admin(
            "POST",
            "/clients",
            {
                "clientId": client_id,
                "secret": secret,
                "publicClient": False,
                "serviceAccountsEnabled": True,
                "standardFlowEnabled": False,
            },
        )
        assert status == 201, status
        client = self.client(client_id)
        assert client is not None
        realm_management = self.client("realm-management")
        assert realm_management is not None
        status, user = self.admin("GET", f"/clients/{client['id']}/service-account-user")
        assert status == 200, status
        status, all_roles = self.admin("GET", f"/clients/{realm_management['id']}/roles")
        assert status == 200, status
        wanted = [role for role in all_roles if role["name"] in roles]
        assert len(wanted) == len(roles), (roles, [role["name"] for role in all_roles])
        status, _ = self.admin(
            "POST", f"/users/{user['id']}/role-mappings/clients/{realm_management['id']}", wanted
        )
        assert status == 204, status
        return secret


def create_realm(server: KeycloakServer, realm: str) -> KeycloakRealm:
    """A realm with credsmith's admin client, as an operator of credsmith sets it up."""
    status, _ = server.admin("POST", "", {"realm": realm, "enabled": True})
    assert status == 201, status
    found = KeycloakRealm(server, realm, "credsmith-operator", "")
    # manage-clients alone is enough: it lists and reads clients and client scopes too.
    found.admin_client_secret = found.add_admin_client("credsmith-operator", ("manage-clients",))
    return found


@pytest.fixture(scope="session", name="keycloak_server")
def keycloak_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeycloakServer]:
    """This pytest process's Keycloak (see the module's docstring for xdist)."""
    if running := os.environ.get("CREDSMITH_TEST_KEYCLOAK_URL"):
        server = KeycloakServer(Path(), tmp_path_factory.mktemp("keycloak"))
        server.port = int(running.rsplit(":", 1)[1].rstrip("/"))
        yield server
        return
    server = KeycloakServer(install_keycloak(), tmp_path_factory.mktemp("keycloak"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", name="keycloak_realm")
def keycloak_realm_fixture(keycloak_server: KeycloakServer) -> KeycloakRealm:
    return create_realm(keycloak_server, f"credsmith-{uuid.uuid4().hex[:8]}")
