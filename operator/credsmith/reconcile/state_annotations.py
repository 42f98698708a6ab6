"""The names of what credsmith stores on a Secret: the one place its `credsmith.io/*`
annotations are spelled, and the shapes their values must have (secret_state.py tells
what they mean).
"""

from __future__ import annotations

import re

from credsmith import GROUP

PREFIX = f"{GROUP}/"
OWNER = f"{GROUP}/owner"
STATE_VERSION = f"{GROUP}/state-version"
REVISION = f"{GROUP}/revision"
ISSUED_AT = f"{GROUP}/issued-at"
ROTATED_AT = f"{GROUP}/rotated-at"
PARAMETERS = f"{GROUP}/parameters"
ROTATE_REQUEST = f"{GROUP}/rotate-request"
CLIENT_UUID = f"{GROUP}/id"
FINGERPRINT = f"{GROUP}/fingerprint"
PREVIOUS_FINGERPRINT = f"{GROUP}/previous-fingerprint"
PREVIOUS_EXPIRES_AT = f"{GROUP}/previous-expires-at"
SECRET_HASH = f"{GROUP}/secret-hash"
PREVIOUS_SECRET_HASH = f"{GROUP}/previous-secret-hash"
SECRET_HASH_BINDING = f"{GROUP}/secret-hash-binding"
PREVIOUS_SECRET_HASH_BINDING = f"{GROUP}/previous-secret-hash-binding"
# The secretTemplate label and annotation keys last applied, so that removing one from the
# template removes it from the Secret while others' keys are kept.
TEMPLATE_KEYS = f"{GROUP}/template-keys"
# ApiClient with registry.formats Htpasswd: a bcrypt hash of the current secret.
HTPASSWD_HASH = f"{GROUP}/htpasswd-hash"
HTPASSWD_HASH_BINDING = f"{GROUP}/htpasswd-hash-binding"
BCRYPT = "Bcrypt"  # the algorithm name recorded in the htpasswd hash's binding
# spec.extraSecrets as issued: per key its parameters and fingerprints (JSON).
EXTRA_SECRETS = f"{GROUP}/extra-secrets"
# The MAC of the state record (see `state_message`): the operator's word for all of the above.
STATE_MAC = f"{GROUP}/state-mac"
# Version 1 only: "<algorithm>:<fingerprint of the hashed value>".
LEGACY_SECRET_HASH_OF = f"{GROUP}/secret-hash-of"
LEGACY_PREVIOUS_SECRET_HASH_OF = f"{GROUP}/previous-secret-hash-of"

VERSION = 2
VERSION_2_ONLY = (
    FINGERPRINT,
    PREVIOUS_FINGERPRINT,
    SECRET_HASH_BINDING,
    PREVIOUS_SECRET_HASH_BINDING,
    HTPASSWD_HASH_BINDING,
)
FINGERPRINT_RE = re.compile(r"sha256:[0-9a-f]{16}")
BINDING_RE = re.compile(r"([A-Za-z0-9]+):([0-9a-f]{64})")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
MAX_HASH_CHARS = 512

# What records a previous value (any version): without_previous removes them all.
PREVIOUS_ANNOTATIONS = frozenset(
    {
        PREVIOUS_FINGERPRINT,
        PREVIOUS_EXPIRES_AT,
        PREVIOUS_SECRET_HASH,
        PREVIOUS_SECRET_HASH_BINDING,
        LEGACY_PREVIOUS_SECRET_HASH_OF,
    }
)


def is_state_annotation(key: str) -> bool:
    """Whether an annotation is ours to write (template annotations may not pose as ours)."""
    return key.startswith(PREFIX)
