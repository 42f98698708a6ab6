"""Every API call goes through the user's own kubectl (README.md: why).

kubectl then reads the kubeconfig, runs exec credential plugins, refreshes tokens,
impersonates and prints the server's refusals exactly as it does for `kubectl get`; this
module only adds the user's connection flags and parses `-o json`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class KubectlError(Exception):
    """kubectl failed; `message` is what it printed (the server's own message)."""

    def __init__(self, message: str, returncode: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode


def kubectl_path() -> str:
    """$KUBECTL, else `kubectl` on PATH (where kubectl is when it runs this plugin)."""
    found = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not found:
        raise KubectlError("error: kubectl not found on PATH (or set KUBECTL to its path)")
    return found


def error_message(stderr: str, returncode: int) -> str:
    """What to show for a failed kubectl call: its own words, warnings dropped (they are
    printed by kubectl on success too and say nothing about the failure)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith("Warning: ")] or lines
    return "\n".join(kept) or f"error: kubectl exited with status {returncode}"


@dataclass
class Kubectl:
    """kubectl with the user's global flags (--context, --kubeconfig, --as, ...)."""

    flags: Sequence[str] = ()
    executable: str | None = None  # found when first needed: --help needs no kubectl

    def run(self, *args: str) -> str:
        executable = self.executable or kubectl_path()
        try:
            result = subprocess.run(
                [executable, *self.flags, *args], capture_output=True, text=True, check=False
            )
        except OSError as exc:  # not executable, vanished
            raise KubectlError(f"error: cannot run {executable}: {exc.strerror}") from None
        if result.returncode != 0:
            raise KubectlError(error_message(result.stderr, result.returncode), result.returncode)
        return result.stdout

    def get_json(self, *args: str) -> dict[str, Any]:
        """`kubectl get ARGS -o json`; an empty List when nothing was printed (as with
        --ignore-not-found and no match)."""
        text = self.run("get", *args, "-o", "json")
        if not text.strip():
            return {"apiVersion": "v1", "kind": "List", "items": []}
        found: dict[str, Any] = json.loads(text)
        return found

    def context_namespace(self) -> str:
        """The namespace kubectl uses when no -n is given: the context's, else default."""
        text = self.run("config", "view", "--minify", "-o", "jsonpath={..namespace}")
        return text.strip() or "default"


def items(listed: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of a `get -o json` answer: a List's items or the one object."""
    if listed.get("kind") == "List" or "items" in listed:
        return list(listed.get("items") or [])
    return [listed]
