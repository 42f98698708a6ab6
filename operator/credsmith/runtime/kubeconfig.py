"""Where the API server is and how to authenticate to it: a kubeconfig or the pod's own.

The operator's only use of a Kubernetes client library was this; reading it here keeps the
`kubernetes` package (about 120 MB installed, and every API model imported at start) out of
the image. What is read, as client-go reads it:

- in a pod (KUBERNETES_SERVICE_HOST and a ServiceAccount token mounted): the server from the
  environment, the mounted CA, and the token file, read again as the kubelet renews it;
- otherwise a kubeconfig (the path given, else the first file of $KUBECONFIG, else
  ~/.kube/config), its current context: the cluster's `server`, `certificate-authority(-data)`,
  `insecure-skip-tls-verify`; the user's `token`, `tokenFile`,
  `client-certificate(-data)` with `client-key(-data)`, `username`/`password`, or an `exec`
  credential plugin (client.authentication.k8s.io), whose token is kept until it expires.

Relative paths in a kubeconfig are relative to its directory. Legacy `auth-provider` plugins
(removed from kubectl in 1.26) are not supported.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_TTL = 60.0  # seconds a token file's content is reused
EXEC_TIMEOUT = 60.0
EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)


class ConfigError(Exception):
    """No usable configuration: the message says what is missing or wrong."""


@dataclass
class _Exec:
    command: str
    args: list[str]
    env: dict[str, str]
    api_version: str
    directory: Path
    token: str | None = None
    expires: float | None = None  # time.time() when the token expires

    def current_token(self) -> str:
        if self.token is not None and (self.expires is None or time.time() < self.expires - 10):
            return self.token
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {}}
        try:
            result = subprocess.run(
                [self.command, *self.args],
                env={**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)},
                cwd=self.directory,
                capture_output=True,
                text=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ConfigError(f"exec credential plugin {self.command}: {exc}") from None
        if result.returncode != 0:
            raise ConfigError(f"exec credential plugin {self.command} exited {result.returncode}")
        try:
            status = json.loads(result.stdout)["status"]
            self.token = str(status["token"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(
                f"exec credential plugin {self.command}: no token in its output"
            ) from None
        expiry = status.get("expirationTimestamp")
        self.expires = datetime.fromisoformat(expiry).timestamp() if expiry else None
        return self.token


@dataclass
class ClusterConfig:
    """The API server's address, TLS settings and credentials."""

    host: str
    ca_file: str | None = None
    ca_data: str | None = None  # PEM
    verify_ssl: bool = True
    cert_file: str | None = None
    key_file: str | None = None
    cert_data: str | None = None  # PEM
    key_data: str | None = None  # PEM
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    exec_plugin: _Exec | None = None
    _file_token: tuple[float, str] | None = field(default=None, repr=False)

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header for the next requests (a token file or plugin is
        consulted again when its token may have changed)."""
        token = self.token
        if self.exec_plugin is not None:
            token = self.exec_plugin.current_token()
        elif self.token_file:
            token = self._read_token_file(self.token_file)
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.username is not None and self.password is not None:
            pair = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        return {}

    def _read_token_file(self, path: str) -> str:
        now = time.monotonic()
        if self._file_token is None or now - self._file_token[0] > TOKEN_TTL:
            try:
                self._file_token = (now, Path(path).read_text().strip())
            except OSError as exc:
                if self._file_token is None:
                    raise ConfigError(f"token file {path}: {exc.strerror}") from None
        return self._file_token[1]

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_data and self.key_data:
            _load_cert_chain_data(context, self.cert_data, self.key_data)
        if not self.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


def _load_cert_chain_data(context: ssl.SSLContext, cert: str, key: str) -> None:
    # ssl reads a certificate chain from files only: one that exists for this call alone.
    with tempfile.TemporaryDirectory(prefix="credsmith-tls-") as directory:
        cert_path, key_path = Path(directory, "tls.crt"), Path(directory, "tls.key")
        cert_path.write_text(cert)
        key_path.touch(mode=0o600)
        key_path.write_text(key)
        context.load_cert_chain(cert_path, key_path)


def load_config(kubeconfig: str | None = None) -> ClusterConfig:
    """The configuration from `kubeconfig`, else the pod's own, else $KUBECONFIG or
    ~/.kube/config (client-go's order for a controller)."""
    if kubeconfig:
        return from_kubeconfig(Path(kubeconfig))
    if os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").exists():
        return in_cluster()
    paths = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return from_kubeconfig(Path(paths[0]) if paths else Path.home() / ".kube" / "config")


def in_cluster(directory: Path | None = None) -> ClusterConfig:
    """The pod's own: the service's address and the mounted ServiceAccount token and CA."""
    directory = directory or SERVICE_ACCOUNT_DIR
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("not in a pod: KUBERNETES_SERVICE_HOST is not set")
    if ":" in host:  # IPv6
        host = f"[{host}]"
    config = ClusterConfig(
        host=f"https://{host}:{port}",
        ca_file=str(directory / "ca.crt"),
        token_file=str(directory / "token"),
    )
    config.auth_headers()  # a missing token fails here, not on the first request
    return config


def from_kubeconfig(path: Path) -> ClusterConfig:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"kubeconfig {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"kubeconfig {path}: not valid YAML") from None
    if not isinstance(document, dict):
        raise ConfigError(f"kubeconfig {path}: not a kubeconfig")
    current = document.get("current-context")
    if not current:
        raise ConfigError(f"kubeconfig {path}: no current-context")
    context = _named(document, "contexts", current, "context", path)
    cluster = _named(document, "clusters", context.get("cluster"), "cluster", path)
    user = (
        _named(document, "users", context.get("user"), "user", path) if context.get("user") else {}
    )
    if not cluster.get("server"):
        raise ConfigError(f"kubeconfig {path}: cluster {context.get('cluster')} has no server")
    directory = path.parent

    def file(value: Any) -> str | None:
        return str(directory / str(value)) if value else None

    config = ClusterConfig(
        host=str(cluster["server"]).rstrip("/"),
        ca_file=file(cluster.get("certificate-authority")),
        ca_data=_decode(cluster.get("certificate-authority-data")),
        verify_ssl=not cluster.get("insecure-skip-tls-verify", False),
        cert_file=file(user.get("client-certificate")),
        key_file=file(user.get("client-key")),
        cert_data=_decode(user.get("client-certificate-data")),
        key_data=_decode(user.get("client-key-data")),
        token=user.get("token"),
        token_file=file(user.get("tokenFile")),
        username=user.get("username"),
        password=user.get("password"),
    )
    if exec_spec := user.get("exec"):
        config.exec_plugin = _exec_plugin(exec_spec, directory, path)
    if user.get("auth-provider"):
        raise ConfigError(f"kubeconfig {path}: auth-provider plugins are not supported; use exec")
    return config


def _named(
    document: Mapping[str, Any], section: str, name: Any, key: str, path: Path
) -> dict[str, Any]:
    for entry in document.get(section) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            return dict(entry.get(key) or {})
    raise ConfigError(f"kubeconfig {path}: no {key} named {name!r}")


def _decode(data: Any) -> str | None:
    return base64.b64decode(str(data)).decode() if data else None


def _exec_plugin(spec: Mapping[str, Any], directory: Path, path: Path) -> _Exec:
    api_version = spec.get("apiVersion", EXEC_API_VERSIONS[0])
    if api_version not in EXEC_API_VERSIONS or not spec.get("command"):
        raise ConfigError(f"kubeconfig {path}: exec needs a command and one of {EXEC_API_VERSIONS}")
    command = str(spec["command"])
    if "/" in command and not Path(command).is_absolute():
        command = str(directory / command)  # relative to the kubeconfig, as client-go does
    env = {str(e["name"]): str(e["value"]) for e in spec.get("env") or () if "name" in e}
    args = [str(a) for a in spec.get("args") or ()]
    return _Exec(command, args, env, api_version, directory)
