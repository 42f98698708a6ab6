"""`credsmith` meets a cluster it cannot use: one line on stderr, exit 1, no traceback.

Missing kubeconfig and an unreachable server happen here for real; a 403 and a 404 are the
client's exceptions as the kubernetes client raises them (tests/e2e/test_kubectl_plugin.py
gets a real 403 from the API server).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from credsmith.cli import main
from credsmith.cli_errors import describe, server_message
from credsmith.runtime.session import ApiError


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens once the probe is closed


def kubeconfig_for(server: str, path: Path) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err.strip()


def test_rotate_without_a_kubeconfig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    assert main(["rotate", "sacred/x", "--kubeconfig", str(missing)]) == 1
    assert one_line(capsys) == (
        f"credsmith rotate: no usable kubeconfig ({missing}): "
        "Invalid kube-config file. No configuration found."
    )


def test_run_without_a_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert main(["run", "--metrics-port=0", "--liveness-port=0", "--no-leader-elect"]) == 1
    assert one_line(capsys).startswith(
        f"credsmith run: no usable kubeconfig ({tmp_path / 'missing'}): Invalid kube-config"
    )


def test_rotate_with_an_unreachable_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    config = kubeconfig_for(f"http://127.0.0.1:{port}", tmp_path / "config")
    assert main(["rotate", "sacred/x", "-n", "a", "--kubeconfig", str(config)]) == 1
    line = one_line(capsys)
    server = f"http://127.0.0.1:{port}"
    assert line.startswith(f"credsmith rotate: cannot reach the API server at {server}: ")
    assert "refused" in line.lower()


def status_body(code: int, reason: str, message: str) -> str:
    return json.dumps(
        {"kind": "Status", "status": "Failure", "message": message, "reason": reason, "code": code}
    )


def test_refusals_carry_the_servers_message() -> None:
    forbidden = ApiException(status=403, reason="Forbidden")
    # Bytes on purpose (typed str): server_message also reads a body left undecoded.
    forbidden.body = status_body(  # type: ignore[assignment]
        403,
        "Forbidden",
        'serviceaccountcredentials.credsmith.io "x" is forbidden: User "u" cannot patch '
        'resource "serviceaccountcredentials"',
    ).encode()
    assert describe(forbidden) == (
        'Error from server (Forbidden): serviceaccountcredentials.credsmith.io "x" is '
        'forbidden: User "u" cannot patch resource "serviceaccountcredentials"'
    )
    missing = ApiException(status=404, reason="Not Found")
    missing.body = status_body(404, "NotFound", 'namespaces "gone" not found')
    assert describe(missing) == 'Error from server (Not Found): namespaces "gone" not found'
    assert server_message("<html>bad\n gateway</html>") == "<html>bad gateway</html>"
    refused = ApiError(403, "Forbidden", 'leases "credsmith-operator" is forbidden')
    assert describe(refused) == (
        'Error from server (Forbidden): leases "credsmith-operator" is forbidden'
    )
    assert describe(ApiError(0, "Unreachable", "ClientConnectorError")) == (
        "cannot reach the API server (ClientConnectorError)"
    )


def test_a_bug_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> tuple[str, str]:
        raise ZeroDivisionError

    monkeypatch.setattr("credsmith.runtime.rotate.request_rotation", broken)
    with pytest.raises(ZeroDivisionError):
        main(["rotate", "sacred/x"])
