"""The operator image: built from the Dockerfile, then run the way a kubelet would.

`tests/image/build.sh` builds the image with buildah (chroot isolation, no Docker
engine) on a Debian base made by debootstrap, skipping what is current. No OCI runtime
can start containers in this sandbox, so the test runs the image's filesystem itself,
with the constraints the chart asks of the kubelet:

- the root filesystem read-only (a bind mount of `buildah mount`, remounted ro), a
  tmpfs at /tmp (the chart's emptyDir), /proc, and a /dev of the usual device nodes;
- the image's USER (65532:65532) and ENTRYPOINT with the Deployment's args, no new
  privileges (`setpriv --no-new-privs`), no capabilities (a non-root exec drops them);
- host network, `KUBERNETES_SERVICE_HOST/PORT` and a token of the chart's
  ServiceAccount projected at /var/run/secrets/kubernetes.io/serviceaccount, with
  ca.crt and namespace: the in-cluster configuration is what runs (no kubeconfig).

It must issue a credential, answer /healthz and /metrics, and on SIGTERM release its
Lease and exit 0.
Needs root, buildah and debootstrap (`.ci/run` installs them); skipped without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from tests.e2e.cluster import Cluster, Exposure, Operator, manifest, wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "credsmith"
BUILD = ROOT / "tests" / "image" / "build.sh"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Names of compilers, linkers and installers that must not be in the image.
TOOLS = re.compile(
    r"^(cc|c\+\+|cpp|gcc|g\+\+|clang|clang\+\+|tcc|ld|ld\.(bfd|gold|lld)|as|make|pip\d?(\.\d+)?)$"
)

MISSING = [
    tool
    for tool in ("buildah", "debootstrap", "unshare", "setpriv", "chroot")
    if shutil.which(tool) is None
]
pytestmark = [
    pytest.mark.skipif(
        bool(MISSING),
        reason=f"needs {', '.join(MISSING)} to build and run the image "
        "(apt-get install buildah debootstrap; .ci/run does)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="buildah, chroot and mounts need root"),
]


def _run(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(args, capture_output=True, text=True, check=False, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def image() -> str:
    """The image, built (or found current) by tests/image/build.sh."""
    start = time.monotonic()
    result = subprocess.run(
        ["bash", str(BUILD)], capture_output=True, text=True, check=False, timeout=1800
    )
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"tests/image/build.sh: {time.monotonic() - start:.0f}s\n{result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    """The image's OCI config: User, Entrypoint, Cmd, Env."""
    found: dict[str, Any] = json.loads(_run("buildah", "inspect", "--type", "image", image))
    return dict(found["OCIv1"]["config"])


@pytest.fixture(scope="module")
def rootfs(image: str) -> Iterator[Path]:
    """The image's filesystem: a working container's mount (a writable layer over the
    image, which is what a runtime creates mount points in)."""
    container = _run("buildah", "from", "--pull-never", image).strip()
    try:
        yield Path(_run("buildah", "mount", container).strip())
    finally:
        subprocess.run(["buildah", "umount", container], capture_output=True, check=False)
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def test_image_size_is_reported(image: str, capsys: pytest.CaptureFixture[str]) -> None:
    size = _run("buildah", "images", "--format", "{{.Size}}", image).splitlines()[0]
    with capsys.disabled():
        print(f"\n{image}: {size} (uncompressed, as buildah reports it)")
    number, unit = size.split()
    assert unit == "MB"
    assert 50 < float(number) < 500


def test_image_has_no_compiler_and_no_pip(rootfs: Path) -> None:
    found = [
        str(path.relative_to(rootfs))
        for path in rootfs.rglob("*")
        if TOOLS.match(path.name)
        and (path.is_file() or path.is_symlink())
        and not path.is_relative_to(rootfs / "proc")
    ]
    assert found == [], f"build tools in the image: {found}"
    assert not list(rootfs.rglob("pip-*.whl")), "ensurepip's wheel could install pip"
    assert not list(rootfs.glob("**/site-packages/pip")), "a pip package is installed"
    # Each Python in the image, as the image's user: the stdlib imports (so the probe
    # works), pip does not.
    pythons = ["/usr/bin/python3", "/opt/credsmith/bin/python", "/usr/bin/python"]
    for python in pythons:
        assert os.path.lexists(rootfs / python.lstrip("/")), python  # links are absolute
        for module, importable in (("ssl", True), ("pip", False)):
            probe = subprocess.run(
                [
                    str(shutil.which("chroot")),
                    "--userspec=65532:65532",
                    str(rootfs),
                    python,
                    "-c",
                    f"import {module}",
                ],
                capture_output=True,
                text=True,
                check=False,
                env={"PATH": "/usr/bin:/bin"},
            )
            assert (probe.returncode == 0) is importable, (python, module, probe.stderr)
        assert "No module named 'pip'" in probe.stderr, probe.stderr


def test_entrypoint_and_user(config: dict[str, Any]) -> None:
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/opt/credsmith/bin/credsmith"]
    assert config["Cmd"] == ["run"]


# ---- running it ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a local URL)
        return int(response.status), response.read().decode()


def project_token(cluster: Cluster, namespace: str, account: str, into: Path) -> Path:
    """What the kubelet projects for a pod of `account`: token, ca.crt, namespace."""
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h")
    root_ca = wait_for(
        lambda: (
            cluster.kubectl(
                "get",
                "configmap",
                "kube-root-ca.crt",
                "-n",
                namespace,
                "-o",
                "jsonpath={.data.ca\\.crt}",
                check=False,
            ).stdout
        ),
        what="kube-root-ca.crt",
    )
    into.mkdir(mode=0o755)
    for name, text in (
        ("token", token.stdout.strip()),
        ("ca.crt", root_ca),
        ("namespace", namespace),
    ):
        (into / name).write_text(text)
        (into / name).chmod(0o644)
    return into


# Inside a private mount namespace: bind the root filesystem onto itself, mount the
# token, /tmp, /proc and a /dev with a runtime's usual device nodes under it, make the
# root read-only, then start the entrypoint chrooted as the image's user with
# no_new_privs. Every step execs the next, so the process the test signals is the
# operator itself.
LAUNCH = r"""
root=$1 tokens=$2 target=$3 user=$4; shift 4
mount --bind "$root" "$root"
mount --bind -o ro "$tokens" "$root$target"
mount -t tmpfs -o size=64m,mode=1777 tmpfs "$root/tmp"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=755,size=64k tmpfs "$root/dev"
for node in null zero full random urandom tty; do
  touch "$root/dev/$node" && mount --bind "/dev/$node" "$root/dev/$node"
done
mount -o remount,bind,ro "$root"
exec setpriv --no-new-privs chroot --userspec="$user" --groups="${user#*:}" "$root" "$@"
"""


def deployment_args(cluster: Cluster, namespace: str, release: str) -> list[str]:
    """The operator container's args as the chart installed them, with $(POD_NAMESPACE)
    expanded as the kubelet expands it."""
    deployment = json.loads(
        cluster.kubectl(
            "get", "deployment", f"{release}-credsmith", "-n", namespace, "-o", "json"
        ).stdout
    )
    args: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return [arg.replace("$(POD_NAMESPACE)", namespace) for arg in args]


def test_image_runs_as_the_kubelet_would_and_issues(
    cluster: Cluster,
    core: client.CoreV1Api,
    operator: Operator,
    namespace: str,
    exposure: Exposure,
    rootfs: Path,
    config: dict[str, Any],
    tmp_path: Path,
) -> None:
    operator.stop()  # the session's operator; the fixture restarts it afterwards
    release = f"img-{uuid.uuid4().hex[:6]}"
    metrics_port, health_port = free_port(), free_port()
    values = (
        f"--set=watchNamespaces={{{namespace}}}",
        f"--set=metrics.port={metrics_port}",
        f"--set=health.port={health_port}",
    )
    helm = str(cluster.bin_dir / "helm")
    install = ("install", release, str(CHART), "-n", namespace, "--skip-crds", *values)
    installed = subprocess.run([helm, *install], env=cluster.env(), capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    try:
        account = f"{release}-credsmith"
        tokens = project_token(cluster, namespace, account, tmp_path / "serviceaccount")
        # The mount point, made in the container's writable layer as a runtime does;
        # resolved inside the image (/var/run is a symlink there).
        subprocess.run(["chroot", str(rootfs), "mkdir", "-p", TOKEN_DIR], check=True)
        target = _run("chroot", str(rootfs), "readlink", "-f", TOKEN_DIR).strip()
        server = urlsplit(
            yaml.safe_load(cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        )
        pod_name = f"{release}-pod-0"
        env = dict(item.split("=", 1) for item in config["Env"])
        env |= {
            "KUBERNETES_SERVICE_HOST": str(server.hostname),
            "KUBERNETES_SERVICE_PORT": str(server.port),
            "POD_NAME": pod_name,
            "POD_NAMESPACE": namespace,
        }
        command = [*config["Entrypoint"], *deployment_args(cluster, namespace, release)]
        log_path = tmp_path / "image.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-euc",
                    LAUNCH,
                    "sh",
                    str(rootfs),
                    str(tokens),
                    target,
                    config["User"],
                    *command,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _check_running(
                process,
                cluster,
                core,
                namespace=namespace,
                pod_name=pod_name,
                health_port=health_port,
                metrics_port=metrics_port,
                exposure=exposure,
            )
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                code = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            logs = log_path.read_text(errors="replace")
            exposure.shown.append(logs)
        assert code == 0, f"exit {code} on SIGTERM:\n{logs[-3000:]}"
        assert "Traceback" not in logs, logs[-3000:]
        assert "forbidden" not in logs.lower(), logs[-3000:]
        # A clean stop hands the Lease over at once rather than letting it expire.
        leases = json.loads(cluster.kubectl("get", "lease", "-n", namespace, "-o", "json").stdout)
        assert [item["spec"].get("holderIdentity") or "" for item in leases["items"]] == [""]
    finally:
        subprocess.run(
            [helm, "uninstall", release, "-n", namespace],
            env=cluster.env(),
            check=False,
            capture_output=True,
        )


def _status_of(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def _check_running(
    process: subprocess.Popen[bytes],
    cluster: Cluster,
    core: client.CoreV1Api,
    *,
    namespace: str,
    pod_name: str,
    health_port: int,
    metrics_port: int,
    exposure: Exposure,
) -> None:
    def healthy() -> bool:
        assert process.poll() is None, "the image's entrypoint exited"
        try:
            return http_get(f"http://127.0.0.1:{health_port}/healthz")[0] == 200
        except OSError:
            return False

    wait_for(healthy, timeout=60, what="/healthz")
    # The constraints, as the kernel sees the process.
    status = _status_of(process.pid)
    assert status["Uid"].split() == ["65532"] * 4, status["Uid"]
    assert status["Gid"].split() == ["65532"] * 4, status["Gid"]
    assert status["NoNewPrivs"] == "1"
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapPrm"], 16) == 0
    mounts = [
        line.split() for line in Path(f"/proc/{process.pid}/mountinfo").read_text().splitlines()
    ]
    root_options = next(fields[5] for fields in mounts if fields[4] == "/")
    assert root_options.split(",")[0] == "ro", root_options
    env = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
    assert not any(item.startswith(b"KUBECONFIG=") for item in env)

    # It issues, with only the chart's identity.
    body = manifest("ServiceAccountCredential", "from-image", {"serviceAccount": "image"})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))
    cluster.kubectl(
        "wait", "--for=condition=Ready", "--timeout=90s", "-n", namespace, "sacred/from-image"
    )
    secret = client.ApiClient().sanitize_for_serialization(
        core.read_namespaced_secret("from-image", namespace)
    )
    assert set(exposure.record_secret(secret)) == {"client_id", "client_secret"}
    lease = json.loads(cluster.kubectl("get", "lease", "-n", namespace, "-o", "json").stdout)
    assert [item["spec"]["holderIdentity"] for item in lease["items"]] == [pod_name]

    code, metrics = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert code == 200
    issued = re.search(
        r'^credsmith_issued_total\{kind="ServiceAccountCredential"\} (\S+)$', metrics, re.M
    )
    assert issued, metrics[:2000]
    assert float(issued.group(1)) >= 1
