"""htpasswd lines for gateways: `clientId:<bcrypt>`, what ingress-nginx, Traefik,
oauth2-proxy, nginx and Apache read for HTTP Basic authentication.

bcrypt (`$2b$`, the current OpenBSD form, which nginx through libxcrypt, Apache, Traefik
and oauth2-proxy (Go's x/crypto) accept) reads at most 72 bytes of the password; the API
refuses a secret that does not fit (ApiClient spec), and `htpasswd_hash` refuses it too
rather than cut it.
"""

import bcrypt

BCRYPT_MAX_BYTES = 72
# Cost 10, as `htpasswd -B` by default: ~50-100 ms per hash, paid once per value.
BCRYPT_ROUNDS = 10


def htpasswd_hash(secret: str) -> str:
    data = secret.encode("utf-8")
    if len(data) > BCRYPT_MAX_BYTES:
        raise ValueError(f"bcrypt reads only {BCRYPT_MAX_BYTES} bytes; the secret is longer")
    return bcrypt.hashpw(data, bcrypt.gensalt(rounds=BCRYPT_ROUNDS, prefix=b"2b")).decode()


def htpasswd_line(user: str, made: str) -> str:
    if ":" in user or "\n" in user or "\n" in made:
        raise ValueError("an htpasswd user has no ':' and a line no newline")
    return f"{user}:{made}"


def render_htpasswd(lines: list[str]) -> str:
    """The `auth` file: one line per client, sorted, so an unchanged set is no write."""
    return "".join(line + "\n" for line in sorted(lines))
