"""The enumerations of the credsmith API. Their values are the API's spelling.

(Values like "Token" or "ClientSecret" name kinds of credential; they are no secrets,
hence the S105 exemptions.)
"""

from enum import StrEnum


class ClientIdFormat(StrEnum):
    UUID = "UUID"
    TOKEN = "Token"


class SecretAlphabet(StrEnum):
    ALPHANUMERIC = "Alphanumeric"
    URL_SAFE = "URLSafe"
    HEX = "Hex"
    BASE64 = "Base64"
    PRINTABLE = "Printable"


class CredentialType(StrEnum):
    CLIENT_SECRET = "ClientSecret"
    API_KEY = "APIKey"
    KEY_PAIR = "KeyPair"
    BASIC_AUTH = "BasicAuth"


class KeyAlgorithm(StrEnum):
    ED25519 = "Ed25519"
    ECDSA_P256 = "ECDSA-P256"
    ECDSA_P384 = "ECDSA-P384"
    RSA_2048 = "RSA-2048"
    RSA_3072 = "RSA-3072"
    RSA_4096 = "RSA-4096"


class HashAlgorithm(StrEnum):
    SHA256 = "SHA256"
    ARGON2ID = "Argon2id"
    PBKDF2_SHA256 = "PBKDF2SHA256"


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    ORPHAN = "Orphan"


class RegistryFormat(StrEnum):
    CLIENTS_JSON = "ClientsJSON"
    HTPASSWD = "Htpasswd"


class WorkloadKind(StrEnum):
    """The workloads a credential's consumers can be (apps/v1)."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
