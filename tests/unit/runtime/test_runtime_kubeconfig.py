"""Reading a kubeconfig and the pod's own configuration (runtime/kubeconfig.py).

A token with CA data and the in-cluster configuration also run end to end: every e2e test's
operator reads the local control plane's kubeconfig, and tests/e2e/test_image.py runs the
image in-cluster with a projected token.
"""

from __future__ import annotations

import base64
import ssl
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from credsmith.runtime import kubeconfig
from credsmith.runtime.kubeconfig import ConfigError, from_kubeconfig, in_cluster, load_config


def certificate(name: str) -> tuple[str, str]:
    """A self-signed certificate and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_kubeconfig(path: Path, user: dict[str, object], cluster: dict[str, object]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://k:6443/", **cluster}}],
                "users": [{"name": "other", "user": {"token": "no"}}, {"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def test_a_token_and_ca_data(tmp_path: Path) -> None:
    ca, _ = certificate("ca")
    config = from_kubeconfig(
        write_kubeconfig(
            tmp_path / "config", {"token": "t0k"}, {"certificate-authority-data": b64(ca)}
        )
    )
    assert config.host == "https://k:6443"
    assert config.auth_headers() == {"Authorization": "Bearer t0k"}
    context = config.ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ca"),),)]


def test_relative_files_are_read_from_the_kubeconfig_directory(tmp_path: Path) -> None:
    ca, _ = certificate("ca")
    (tmp_path / "ca.crt").write_text(ca)
    (tmp_path / "token").write_text("from-file\n")
    config = from_kubeconfig(
        write_kubeconfig(
            tmp_path / "config", {"tokenFile": "token"}, {"certificate-authority": "ca.crt"}
        )
    )
    assert config.auth_headers() == {"Authorization": "Bearer from-file"}
    assert len(config.ssl_context().get_ca_certs()) == 1


def test_client_certificate_data_and_a_key_that_does_not_match(tmp_path: Path) -> None:
    cert, key = certificate("admin")
    _, other_key = certificate("other")
    good = from_kubeconfig(
        write_kubeconfig(
            tmp_path / "good",
            {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            {"insecure-skip-tls-verify": True},
        )
    )
    assert good.ssl_context().verify_mode == ssl.CERT_NONE
    assert good.auth_headers() == {}
    bad = from_kubeconfig(
        write_kubeconfig(
            tmp_path / "bad",
            {"client-certificate-data": b64(cert), "client-key-data": b64(other_key)},
            {},
        )
    )
    with pytest.raises(ssl.SSLError):
        bad.ssl_context()


def test_basic_auth(tmp_path: Path) -> None:
    config = from_kubeconfig(
        write_kubeconfig(tmp_path / "config", {"username": "a", "password": "b"}, {})
    )
    assert config.auth_headers() == {"Authorization": f"Basic {b64('a:b')}"}


def test_an_exec_plugin_runs_until_its_token_expires(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os, pathlib, sys\n"
        f"calls = pathlib.Path({str(calls)!r})\n"
        "calls.write_text(calls.read_text() + 'x' if calls.exists() else 'x')\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "status = {'token': os.environ['PREFIX'] + str(len(calls.read_text()))}\n"
        "if sys.argv[1] != 'none': status['expirationTimestamp'] = sys.argv[1]\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'status': status}))\n"
    )
    later = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    past = "2020-01-01T00:00:00Z"
    for expiry, tokens in ((later, ["p-1", "p-1"]), (past, ["p-2", "p-3"])):
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": sys.executable,
                "args": [str(plugin), expiry],
                "env": [{"name": "PREFIX", "value": "p-"}],
            }
        }
        config = from_kubeconfig(write_kubeconfig(tmp_path / "config", user, {}))
        assert [config.auth_headers()["Authorization"] for _ in range(2)] == [
            f"Bearer {t}" for t in tokens
        ]


def test_a_failing_exec_plugin_is_a_config_error(tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "false"}}
    config = from_kubeconfig(write_kubeconfig(tmp_path / "config", user, {}))
    with pytest.raises(ConfigError, match="exited 1"):
        config.auth_headers()


def test_in_cluster_reads_the_token_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca, _ = certificate("cluster")
    (tmp_path / "ca.crt").write_text(ca)
    (tmp_path / "token").write_text("one")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setattr(kubeconfig, "TOKEN_TTL", 0.0)
    config = in_cluster(tmp_path)
    assert config.host == "https://[fd00::1]:443"
    assert config.auth_headers() == {"Authorization": "Bearer one"}
    (tmp_path / "token").write_text("two")
    assert config.auth_headers() == {"Authorization": "Bearer two"}
    (tmp_path / "token").unlink()  # between two renewals: the last token stays in use
    assert config.auth_headers() == {"Authorization": "Bearer two"}


def test_where_the_configuration_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("pod")
    (tmp_path / "ca.crt").write_text(certificate("c")[0])
    named = write_kubeconfig(tmp_path / "named", {"token": "named"}, {})
    listed = write_kubeconfig(tmp_path / "listed", {"token": "listed"}, {})
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setenv("KUBECONFIG", f"{listed}:{named}")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert load_config(str(named)).auth_headers()["Authorization"] == "Bearer named"
    assert load_config(None).auth_headers()["Authorization"] == "Bearer pod"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert load_config(None).auth_headers()["Authorization"] == "Bearer listed"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file"),
        ("- a list", "not a kubeconfig"),
        ("{current-context: x}", "no context named 'x'"),
        ("{}", "no current-context"),
    ],
)
def test_an_unusable_kubeconfig_says_why(tmp_path: Path, content: str | None, problem: str) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=problem):
        from_kubeconfig(path)


def test_the_operator_runs_without_the_kubernetes_package() -> None:
    """The image leaves the `kubernetes` client out (Dockerfile): nothing `credsmith run`
    imports may need it."""
    code = (
        "import sys, credsmith.cli, credsmith.runtime.operator\n"
        "assert 'kubernetes' not in sys.modules, sorted(m for m in sys.modules if 'kube' in m)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
