"""Verify what the credsmith operator issues, with nothing but `cryptography`.

- `ClientRegistry`: ApiClient secrets against the registry document (``clients.json``).
- `JwkSet`: ``private_key_jwt`` assertions and signatures of KeyPair credentials against a
  JWK Set (``jwks.json``), each key verifying only for the client its ``client_id`` names.
- `verify_secret`: one secret against one hash string (SHA-256, PBKDF2, Argon2id).
"""

from credsmith_verify.hashes import verify_secret
from credsmith_verify.jwks import JsonWebKey, JwkSet
from credsmith_verify.registry import (
    DOCUMENT_FILE,
    DOCUMENT_KIND,
    ClientRegistry,
    RegisteredClient,
    Role,
)

__all__ = [
    "DOCUMENT_FILE",
    "DOCUMENT_KIND",
    "ClientRegistry",
    "JsonWebKey",
    "JwkSet",
    "RegisteredClient",
    "Role",
    "verify_secret",
]
__version__ = "0.1.0"
