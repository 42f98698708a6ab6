"""The image, built without Docker: the Dockerfile's steps, run here.

No Docker engine runs in CI, so this test reads the Dockerfile and does what it
does: lays out the build context the builder stage COPYs (filtered by
.dockerignore), runs the builder's RUN command with its paths mapped into a temporary
directory (a wheel with `pip wheel --no-deps`, a clean venv, `pip install` of the
wheel with its dependencies from PyPI as binary wheels only, pip removed), then runs
the final stage's ENTRYPOINT from that venv. Static checks cover the rest: a
numeric non-root USER that matches the chart, no build tools, only the venv copied.
It needs network access to PyPI (pip's cache makes reruns quick).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "Dockerfile"
VENV = "/opt/credsmith"  # where the image keeps the venv
WHEELS = "/wheels"  # where the builder keeps the wheel
# Paths that must stay out of the build context.
LEFT_OUT = (
    ".venv/bin/python",
    ".git/HEAD",
    ".dev/kubeconfig",
    "tests/e2e/conftest.py",
    "charts/credsmith/values.yaml",
    "operator/credsmith/__pycache__/cli.cpython-311.pyc",
    "operator/credsmith.egg-info/PKG-INFO",
    "operator/stray.pyc",
    "verifier/tests/test_verify_hashes.py",
    "verifier/src/credsmith_verify.egg-info/PKG-INFO",
)
BUILD_TOOLS = ("gcc", "g++", "clang", "build-essential", "make ", "cmake", "rustc", "cargo")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions (continuations joined, comments dropped, ARGs
    declared before the first FROM substituted into FROM)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "ARG" and not stages:
            name, _, default = args.partition("=")
            global_args[name] = default
        elif instruction == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], args)
            parts = re.split(r"\s+as\s+", base, flags=re.I)
            image, stage_name = parts[0], (parts[1] if len(parts) > 1 else None)
            stages.append(Stage(image, stage_name))
        else:
            stages[-1].instructions.append((instruction, args))
    return stages


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` out of the context (last match wins; a
    pattern matching a parent directory matches everything below it)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def dockerignore_patterns() -> list[str]:
    text = (ROOT / ".dockerignore").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


# ---- the Dockerfile as written -------------------------------------------------------


def test_two_stages_on_python_311_slim(stages: list[Stage]) -> None:
    assert [stage.base for stage in stages] == ["python:3.11-slim", "python:3.11-slim"]
    assert stages[0].name == "builder"


def test_final_stage_runs_as_numeric_non_root_user(stages: list[Stage]) -> None:
    final = stages[-1]
    users = final.all("USER")
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit(), "numeric, so the kubelet can verify runAsNonRoot"
    assert gid.isdigit()
    assert int(uid) != 0
    assert int(gid) != 0
    # The chart and deploy/ run the pod as the same user.
    values = yaml.safe_load((ROOT / "charts/credsmith/values.yaml").read_text(encoding="utf-8"))
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    # USER is the last word on the user: nothing after it switches back.
    names = [name for name, _ in final.instructions]
    assert names.index("USER") > max(i for i, n in enumerate(names) if n in ("COPY", "RUN", "ADD"))


def test_final_stage_has_no_build_tools(stages: list[Stage]) -> None:
    final = stages[-1]
    # Its one RUN removes the base's installers (the official base's pip); it adds nothing.
    for run in final.all("RUN"):
        assert " install " not in f" {run} ", "the final stage installs nothing"
        assert "pip uninstall" in run
    assert final.all("ADD") == []
    assert final.all("COPY") == [f"--from=builder {VENV} {VENV}"], "only the venv"
    text = DOCKERFILE.read_text(encoding="utf-8").lower()
    for instruction, args in [i for stage in stages for i in stage.instructions]:
        for tool in BUILD_TOOLS:
            assert tool not in f" {args.lower()} ", f"{instruction} {args} mentions {tool}"
    assert "apt-get" not in text
    assert "apk add" not in text


def test_entrypoint_is_the_venv_console_script(stages: list[Stage]) -> None:
    final = stages[-1]
    assert [json.loads(e) for e in final.all("ENTRYPOINT")] == [[f"{VENV}/bin/credsmith"]]
    assert [json.loads(c) for c in final.all("CMD")] == [["run"]]


def test_dockerignore_sends_only_what_the_builder_copies(stages: list[Stage]) -> None:
    patterns = dockerignore_patterns()
    sources = [s for args in stages[0].all("COPY") for s in args.split()[:-1]]
    assert sources == ["pyproject.toml", "README.md", "operator/", "verifier/"]
    for source in sources:
        assert not dockerignored(source.rstrip("/"), patterns), source
    for path in LEFT_OUT:
        assert dockerignored(path, patterns), path


# ---- the Dockerfile's steps, run here ------------------------------------------------


def _build_context(stages: list[Stage], context: Path) -> None:
    """The files the builder stage COPYs into its WORKDIR, as Docker would send them."""
    patterns = dockerignore_patterns()
    for args in stages[0].all("COPY"):
        *sources, destination = args.split()
        for source in sources:
            origin = ROOT / source
            files = [origin] if origin.is_file() else sorted(origin.rglob("*"))
            for path in files:
                relative = path.relative_to(ROOT).as_posix()
                if path.is_dir() or dockerignored(relative, patterns):
                    continue
                if origin.is_file():
                    target = context / destination / path.name
                else:
                    target = context / destination / path.relative_to(origin)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def _run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, check=False, timeout=900
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_image_steps_build_a_working_venv(stages: list[Stage], tmp_path: Path) -> None:
    context, venv, wheels = tmp_path / "src", tmp_path / "venv", tmp_path / "wheels"
    _build_context(stages, context)
    assert (context / "pyproject.toml").is_file()
    assert (context / "operator/credsmith").is_dir()
    assert (context / "verifier/src/credsmith_verify").is_dir()
    assert not list(context.rglob("__pycache__"))
    assert not list(context.rglob("*.egg-info"))

    # The builder's RUN, with the image's paths mapped here and `python` being this
    # interpreter (a 3.11 like the image's).
    runs = stages[0].all("RUN")
    assert len(runs) == 1
    command = runs[0].replace(VENV, str(venv)).replace(WHEELS, str(wheels))
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python").symlink_to(sys.executable)
    env = {
        "PATH": f"{shims}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": os.environ.get("HOME", str(tmp_path)),  # pip's cache
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    output = _run(["bash", "-euo", "pipefail", "-c", command], env, cwd=context)
    assert "credsmith 0.1.0" in output

    built = sorted(w.name for w in wheels.glob("*.whl"))
    assert built == [
        "credsmith-0.1.0-py3-none-any.whl",
        "credsmith_verify-0.1.0-py3-none-any.whl",  # verifier/, which the operator requires
    ]
    with zipfile.ZipFile(wheels / built[0]) as wheel:
        names = "\n".join(wheel.namelist())
    assert "credsmith/py.typed" in names
    assert "credsmith/cli.py" in names
    assert "tests/" not in names
    assert "conftest" not in names
    with zipfile.ZipFile(wheels / built[1]) as wheel:
        names = "\n".join(wheel.namelist())
    assert "credsmith_verify/py.typed" in names
    assert "credsmith_verify/registry.py" in names
    assert "tests/" not in names

    # The final image: the venv alone, no pip, the ENTRYPOINT as the command.
    assert not (venv / "bin" / "pip").exists(), "pip is removed from the image's venv"
    # Only what `credsmith run` imports: not kubernetes/aio (68 MB, never imported), no pip.
    site = next(venv.glob("lib/python*/site-packages"))
    assert sorted({"pip", "setuptools"} & {path.name for path in site.iterdir()}) == []
    assert not (site / "kubernetes" / "aio").exists()
    _run([str(venv / "bin" / "python"), "-c", "import credsmith.runtime.operator"], {})
    image_env = {"PATH": f"{venv}/bin{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": "/"}
    entrypoint = [str(venv / "bin" / "credsmith")]
    usage = _run([*entrypoint, "--help"], image_env)
    assert usage.startswith("usage: credsmith")
    assert all(f"    {command} " in usage for command in ("run", "crds", "dev", "rotate"))
    run_help = _run([*entrypoint, "run", "--help"], image_env)
    for flag in ("--namespace", "--metrics-port", "--liveness-port", "--leader-elect"):
        assert flag in run_help

    # `credsmith crds` prints exactly the files in crds/.
    printed = _run([*entrypoint, "crds"], image_env)
    files = sorted(p.read_text(encoding="utf-8") for p in (ROOT / "crds").glob("*.yaml"))
    header = files[0].splitlines(keepends=True)[0]
    documents = sorted(header + chunk for chunk in printed.split(header) if chunk)
    assert documents == files

    # Every module imports from the venv (all runtime dependencies are installed), and
    # none from this checkout.
    probe = (
        "import importlib, pkgutil, credsmith, credsmith_verify\n"
        "for m in pkgutil.walk_packages(credsmith.__path__, 'credsmith.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert credsmith_verify.__file__.startswith(credsmith.__file__.rsplit('/', 2)[0])\n"
        "print(credsmith.__file__)\n"
    )
    location = _run([str(venv / "bin" / "python"), "-I", "-c", probe], image_env)
    assert location.startswith(str(venv)), location
    assert fnmatch.fnmatch(location.strip(), f"{venv}/lib/python3.11/site-packages/credsmith/*")
