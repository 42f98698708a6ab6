"""One line for each way the `credsmith` command meets a cluster it cannot use.

A refusal (403), a missing object (404), no kubeconfig, or a server that does not answer
is the user's situation, not a bug: it gets kubectl's wording and a non-zero exit, not a
traceback. Anything else is left to raise.
"""

from __future__ import annotations

import json
import os

from kubernetes.client.exceptions import ApiException
from kubernetes.config import ConfigException
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError

from credsmith.runtime.session import ApiError

# What describe() knows how to say in one line.
EXPECTED: tuple[type[BaseException], ...] = (ApiException, ApiError, ConfigException, Urllib3Error)


def server_message(body: object) -> str:
    """The `message` of a Kubernetes Status body, else the body as text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        status = json.loads(text)
    except ValueError:
        return " ".join(text.split())
    message = status.get("message") if isinstance(status, dict) else None
    return str(message) if message else " ".join(text.split())


def describe(exc: BaseException, kubeconfig: str | None = None) -> str:
    """The line to print for one of EXPECTED's errors."""
    if isinstance(exc, ApiException):
        if exc.status == 0 or exc.status is None:  # the client's own failure, no response
            return f"cannot reach the API server: {exc.reason}"
        return f"Error from server ({exc.reason}): {server_message(exc.body) or exc.status}"
    if isinstance(exc, ApiError):
        if exc.status == 0:
            return f"cannot reach the API server ({exc.message})"
        return f"Error from server ({exc.reason}): {exc.message}"
    if isinstance(exc, ConfigException):
        where = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        return f"no usable kubeconfig ({where}): {exc}"
    if isinstance(exc, MaxRetryError):
        pool = exc.pool
        server = f"{pool.scheme}://{pool.host}:{pool.port}" if pool is not None else "?"
        reason = str(exc.reason or exc).rsplit(": ", 1)[-1]
        return f"cannot reach the API server at {server}: {reason}"
    return f"cannot reach the API server: {type(exc).__name__}"
