"""registry.formats Htpasswd against a real gateway: Debian's nginx, on loopback, with
`auth_basic_user_file` pointing at the registry's `auth` key written out as kubelet mounts
it. nginx reads the file on every request, as it does from a mounted Secret."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, present, wait_for
from tests.e2e.nginx import MISSING, WHY_MISSING, nginx
from tests.e2e.test_api_client import api_client
from tests.e2e.test_service_account_credential import apply, read_secret

pytestmark = pytest.mark.skipif(MISSING, reason=WHY_MISSING)
FORMATS = ["ClientsJSON", "Htpasswd"]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """nginx guarding a static file with HTTP Basic auth from `auth` (a `return 200` would
    answer before auth_basic runs, so it serves a file)."""
    root = tmp_path / "gateway"
    root.mkdir()
    auth = root / "auth"
    auth.write_text("")
    locations = f"""
        location / {{
            auth_basic "credsmith";
            auth_basic_user_file {auth};
            try_files /index.html =404;
        }}"""
    with nginx(root, locations) as url:
        (root / "html" / "index.html").write_text("ok\n")
        yield url, auth


def _status(url: str, user: str, password: str) -> int | None:
    request = urllib.request.Request(url)  # noqa: S310 (http on loopback, built here)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def mount(core: client.CoreV1Api, namespace: str, auth: Path) -> str:
    """Write the registry's `auth` key where nginx reads it, atomically as kubelet does."""
    secret = core.read_namespaced_secret("gateway-users", namespace)
    text = base64.b64decode(present(secret.data)["auth"]).decode()
    staged = auth.with_suffix(".new")
    staged.write_text(text)
    staged.replace(auth)
    return text


def test_nginx_admits_exactly_the_listed_clients_and_follows_rotation_and_deletion(
    cluster: Cluster,
    core: client.CoreV1Api,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    gateway: tuple[str, Path],
) -> None:
    url, auth = gateway
    for name in ("alpha", "beta"):
        body = api_client(name, "gateway-users")
        body["spec"]["registry"]["formats"] = FORMATS
        apply(cluster, namespace, body)

    def creds(name: str) -> tuple[str, str]:
        data, _ = read_secret(core, exposure, namespace, name)
        return data["client_id"], data["client_secret"]

    def lines() -> int:
        try:
            return mount(core, namespace, auth).count("\n")
        except (client.ApiException, KeyError):
            return 0

    wait_for(lambda: lines() == 2, 90, what="two lines in the registry's auth key")
    (alpha_id, alpha_secret), (beta_id, beta_secret) = creds("alpha"), creds("beta")
    assert _status(url, alpha_id, alpha_secret) == 200
    assert _status(url, beta_id, beta_secret) == 200
    assert _status(url, alpha_id, beta_secret) == 401
    assert _status(url, alpha_id, alpha_secret[:-1] + "!") == 401
    assert _status(url, "unknown-client", alpha_secret) == 401

    # Rotation: the gateway takes the new secret once the registry has it (and only it:
    # nginx checks one line per user, so the previous secret cannot stay valid there).
    cluster.kubectl("annotate", "-n", namespace, "apiclient/alpha", "credsmith.io/rotate=r1")
    wait_for(lambda: creds("alpha")[1] != alpha_secret, 60, what="alpha to rotate")
    new_secret = creds("alpha")[1]

    def admits_new() -> bool:
        mount(core, namespace, auth)
        return _status(url, alpha_id, new_secret) == 200

    wait_for(admits_new, 60, interval=1, what="the gateway to admit the rotated secret")
    assert _status(url, alpha_id, alpha_secret) == 401

    # Deletion: the client leaves the registry, and the gateway turns it away.
    cluster.kubectl("delete", "-n", namespace, "apiclient/beta", "--wait=false")
    wait_for(lambda: lines() == 1, 60, what="beta to leave the registry")
    assert _status(url, beta_id, beta_secret) == 401
    assert _status(url, alpha_id, new_secret) == 200


def test_every_client_is_in_auth_whichever_client_asked_for_it(
    cluster: Cluster,
    core: client.CoreV1Api,
    exposure: Exposure,
    operator: Operator,
    namespace: str,
    gateway: tuple[str, Path],
) -> None:
    """Formats are the registry's: one client asks for Htpasswd, the other only names the
    registry, and nginx admits both."""
    url, auth = gateway
    asks = api_client("asks", "gateway-users")
    asks["spec"]["registry"]["formats"] = FORMATS
    apply(cluster, namespace, asks)
    apply(cluster, namespace, api_client("plain", "gateway-users"))

    def lines() -> int:
        try:
            return mount(core, namespace, auth).count("\n")
        except (client.ApiException, KeyError):
            return 0

    wait_for(lambda: lines() == 2, 90, what="both clients in the registry's auth key")
    for name in ("asks", "plain"):
        data, _ = read_secret(core, exposure, namespace, name)
        assert _status(url, data["client_id"], data["client_secret"]) == 200
        assert _status(url, data["client_id"], data["client_secret"] + "x") == 401
