"""Start and stop an Ory Hydra on loopback: the identity provider of the tests
(tests/providers/hydra.py) and of `credsmith dev --identity-provider hydra`.

Hydra is built from its Go module by tests/cluster/build.sh (`hydra` in the bin directory)
and runs as `hydra serve all --dev` with an in-memory database: nothing outlives the
process, and it is ready in about a second. `--dev` allows plain HTTP on loopback.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from credsmith.dev.process import StartedInWith, free_port, spawn, terminate, wait_until_ready

HYDRA_BINARY = "hydra"


class HydraError(RuntimeError):
    """Hydra could not be started."""


@dataclass
class LocalHydra(StartedInWith):
    """One `hydra serve all --dev` process with DSN=memory. Stopping it loses every
    client; starting it again on the same ports is a fresh, empty Hydra."""

    binary: Path
    log_path: Path
    public_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def public_url(self) -> str:
        """The issuer, where /oauth2/token is."""
        return f"http://127.0.0.1:{self.public_port}"

    @property
    def token_url(self) -> str:
        return f"{self.public_url}/oauth2/token"

    def start(self, timeout: float = 60.0) -> None:
        if self.process and self.process.poll() is None:
            return
        environment = {
            **os.environ,
            "DSN": "memory",
            # Encrypts what Hydra stores; random per start (the store is in memory anyway).
            "SECRETS_SYSTEM": secrets.token_urlsafe(32),
            "URLS_SELF_ISSUER": f"{self.public_url}/",
            "SERVE_PUBLIC_HOST": "127.0.0.1",
            "SERVE_PUBLIC_PORT": str(self.public_port),
            "SERVE_ADMIN_HOST": "127.0.0.1",
            "SERVE_ADMIN_PORT": str(self.admin_port),
            "LOG_LEVEL": "warn",
        }
        self.process = spawn(
            [str(self.binary), "serve", "all", "--dev"], self.log_path, environment
        )
        wait_until_ready(
            self.process,
            lambda: _ready(self.admin_url) and _ready(self.public_url),
            timeout=timeout,
            name="hydra",
            log_path=self.log_path,
            error=HydraError,
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (Hydra shuts down gracefully); SIGKILL only if it does not stop in time."""
        process, self.process = self.process, None
        terminate(process, timeout)


# Hydra's own default ports, so that examples/identity-providers/hydra.yaml names them.
DEV_PUBLIC_PORT = 4444
DEV_ADMIN_PORT = 4445
# What `credsmith dev --identity-provider hydra` applies, and the credential its token
# command uses.
HYDRA_EXAMPLE = Path("examples/identity-providers/hydra.yaml")
TOKEN_EXAMPLE = ("reports-exporter", "reports.read")


def hydra_banner(hydra: LocalHydra) -> str:
    """Where the dev Hydra is (the IdentityProvider of HYDRA_EXAMPLE names these URLs)."""
    return (
        "credsmith dev: Ory Hydra is running (in memory: gone when dev stops)\n"
        f"  admin API (hydra.adminURL):  {hydra.admin_url}\n"
        f"  public (issuer, token):      {hydra.public_url}"
    )


def token_command(hydra: LocalHydra) -> str:
    """One shell line that gets a token from Hydra with what the example's Secret holds:
    the value is read by the user's kubectl, never printed by us."""
    secret, scope = TOKEN_EXAMPLE
    read = "kubectl get secret " + secret + " -o jsonpath='{.data.%s}' | base64 -d"
    return (
        f'curl -s -u "$({read % "client_id"}):$({read % "client_secret"})" '
        f"-d grant_type=client_credentials -d scope={scope} {hydra.token_url}"
    )


def _ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/health/ready", timeout=2) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
