"""Write every copy of the Argo CD health check from its one source, health.lua.

Argo CD looks a check up by group and kind, so the same script stands in four places
of resource_customizations/ (the layout of Argo CD's own repository), under four keys
of argocd-cm-patch.yaml, and in the argocd-cm block of README.md. `make crds` runs
this; `--check` writes nothing and exits 1 when a file is stale (what
tests/unit/argocd/test_argocd_install.py asserts).

    .venv/bin/python deploy/argocd/generate.py [--check]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ARGOCD_DIR = Path(__file__).resolve().parent
SOURCE = ARGOCD_DIR / "health.lua"
GROUP_DIR = ARGOCD_DIR / "resource_customizations" / "credsmith.io"
PATCH = ARGOCD_DIR / "argocd-cm-patch.yaml"
README = ARGOCD_DIR / "README.md"
KINDS = ("ServiceAccountCredential", "ApiClient", "IdentityProvider", "ClusterIdentityProvider")
KEYS = {kind: f"resource.customizations.health.credsmith.io_{kind}" for kind in KINDS}
REGENERATE = "make crds  (or: .venv/bin/python deploy/argocd/generate.py)"

BEGIN = "<!-- BEGIN argocd-cm (generated from health.lua; do not edit by hand) -->"
END = "<!-- END argocd-cm -->"
README_BLOCK = re.compile(re.escape(BEGIN) + r"\n```yaml\n(.*?)```\n" + re.escape(END), re.S)

_PATCH_HEADER = """\
# Argo CD health checks for credsmith.io ServiceAccountCredential, ApiClient,
# IdentityProvider and ClusterIdentityProvider, as a patch of the argocd-cm ConfigMap
# (see README.md beside this file):
#   kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm-patch.yaml
# Generated from deploy/argocd/health.lua by
#   make crds  (or: .venv/bin/python deploy/argocd/generate.py)
"""


def kind_script(kind: str) -> Path:
    """Where Argo CD's layout keeps the check of `kind`."""
    return GROUP_DIR / kind / "health.lua"


def render_configmap(script: str) -> str:
    """argocd-cm with the script under every kind's key, as a literal block per key."""
    if not script.endswith("\n") or script.endswith("\n\n"):
        raise ValueError("health.lua must end with exactly one newline (YAML `|` keeps one)")
    if "\t" in script or any(line != line.rstrip() for line in script.splitlines()):
        raise ValueError("health.lua must have no tabs and no trailing spaces")
    body = "".join(f"    {line}\n" if line else "\n" for line in script.splitlines())
    lines = [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        "  name: argocd-cm",
        "  namespace: argocd",
        "  labels:",
        "    app.kubernetes.io/name: argocd-cm",
        "    app.kubernetes.io/part-of: argocd",
        "data:",
    ]
    text = "\n".join(lines) + "\n"
    for kind in KINDS:
        text += f"  {KEYS[kind]}: |\n{body}"
    return text


def render_patch(script: str) -> str:
    return _PATCH_HEADER + render_configmap(script)


def readme_block(readme: str) -> str:
    """The YAML between the README's markers."""
    match = README_BLOCK.search(readme)
    if match is None:
        raise ValueError(f"README.md has no block between {BEGIN!r} and {END!r}")
    return match.group(1)


def render_readme(readme: str, script: str) -> str:
    readme_block(readme)  # fails clearly when the markers are missing
    replacement = f"{BEGIN}\n```yaml\n{render_configmap(script)}```\n{END}"
    return README_BLOCK.sub(lambda _: replacement, readme)


def generated() -> dict[Path, str]:
    """Every file this writes, with the content it should have now."""
    script = SOURCE.read_text(encoding="utf-8")
    files = {kind_script(kind): script for kind in KINDS}
    files[PATCH] = render_patch(script)
    files[README] = render_readme(README.read_text(encoding="utf-8"), script)
    return files


def stale() -> list[Path]:
    """The files that differ from what health.lua makes of them (or are missing)."""
    return [
        path
        for path, text in generated().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        found = stale()
        for path in found:
            print(f"stale: {path.relative_to(ARGOCD_DIR)}; run {REGENERATE}")
        return 1 if found else 0
    if argv:
        print(__doc__)
        return 2
    for path, text in generated().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ARGOCD_DIR.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
