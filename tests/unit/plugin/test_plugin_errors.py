"""A failed kubectl call reaches the user as kubectl printed it (the server's message),
with a non-zero exit and no traceback. kubectl here is a stand-in script that prints what
kubectl prints for a refusal: the behaviour under test is the plugin's handling of it;
tests/e2e/test_kubectl_plugin.py shows the real kubectl's refusals passing through."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from credsmith_kubectl.kubectl import Kubectl, KubectlError, error_message
from credsmith_kubectl.main import main

FORBIDDEN = (
    'Error from server (Forbidden): serviceaccountcredentials.credsmith.io "x" is forbidden: '
    'User "system:serviceaccount:a:nobody" cannot patch resource "serviceaccountcredentials" '
    'in API group "credsmith.io" in the namespace "a"'
)


def fake_kubectl(tmp_path: Path, stderr: str, code: int) -> Path:
    script = tmp_path / "kubectl"
    script.write_text(f"#!/bin/sh\ncat >&2 <<'END'\n{stderr}\nEND\nexit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_warnings_are_dropped_and_the_error_kept() -> None:
    stderr = f"Warning: v1alpha1 is deprecated\n{FORBIDDEN}\n"
    assert error_message(stderr, 1) == FORBIDDEN
    assert error_message("", 2) == "error: kubectl exited with status 2"
    assert error_message("Warning: only a warning\n", 1) == "Warning: only a warning"


@pytest.mark.parametrize(
    "argv",
    [
        ["rotate", "sacred/x", "-n", "a"],
        ["status", "-n", "a"],
        ["status", "x", "-o", "json"],
        ["inspect", "secret", "x"],
        ["check"],
        ["version"],
    ],
)
def test_every_command_prints_kubectls_error_and_exits_non_zero(
    argv: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KUBECTL", str(fake_kubectl(tmp_path, FORBIDDEN, 1)))
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert FORBIDDEN in captured.err.splitlines()
    assert "Traceback" not in captured.err


def test_kubectls_exit_status_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECTL", str(fake_kubectl(tmp_path, "error: boom", 3)))
    assert main(["status"]) == 3


def test_no_kubectl(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KUBECTL", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["status"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: kubectl not found on PATH (or set KUBECTL to its path)"
    )
    # The plugin's own version needs no kubectl.
    assert main(["version", "--client"]) == 0


def test_flags_reach_kubectl_before_the_command(tmp_path: Path) -> None:
    script = tmp_path / "kubectl"
    script.write_text('#!/bin/sh\necho "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    kubectl = Kubectl(["--context=b", "--kubeconfig=/k"], str(script))
    assert kubectl.run("get", "x").split() == ["--context=b", "--kubeconfig=/k", "get", "x"]
    with pytest.raises(KubectlError, match="cannot run"):
        Kubectl([], str(tmp_path / "missing")).run("get")
