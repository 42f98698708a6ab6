"""Debian's nginx, started by a test on loopback, as a real gateway or JWKS endpoint."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.cluster import wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MISSING = not Path(NGINX).exists()
WHY_MISSING = "nginx is not installed (.ci/run installs Debian's)"


@contextmanager
def nginx(root: Path, locations: str) -> Iterator[str]:
    """nginx serving `root`/html with the given `location` blocks; yields its base URL."""
    (root / "html").mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (root / "nginx.conf").write_text(
        f"""
user root;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/html;
        {locations}
    }}
}}
"""
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(lambda: _answers(url), 20, what="nginx to listen")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (loopback, built here)
            return True
    except urllib.error.HTTPError:
        return True  # any status: it listens
    except OSError:
        return False
