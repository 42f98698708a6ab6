"""Verify ApiClient credentials in an API server written in Python.

The verifier lives in the credsmith-verify distribution (`credsmith_verify`), which needs
only `cryptography`, so an API server need not install the operator and its dependencies.
This module re-exports it so existing imports (``from credsmith.registry import
ClientRegistry``) keep working.
"""

from credsmith_verify.registry import (
    DOCUMENT_FILE,
    DOCUMENT_KIND,
    ClientRegistry,
    RegisteredClient,
    Role,
    parse_document,
)

__all__ = [
    "DOCUMENT_FILE",
    "DOCUMENT_KIND",
    "ClientRegistry",
    "RegisteredClient",
    "Role",
    "parse_document",
]
