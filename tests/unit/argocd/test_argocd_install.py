"""The argocd-cm snippet users install stays equal to the tested health.lua.

deploy/argocd/argocd-cm-patch.yaml and the YAML block in deploy/argocd/README.md
carry the script inline, under the two `resource.customizations.health.*` keys.
Both are generated from health.lua; after changing the script, regenerate them with

    .venv/bin/python tests/unit/argocd/test_argocd_install.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
ARGOCD_DIR = ROOT / "deploy" / "argocd"
GROUP_DIR = ARGOCD_DIR / "resource_customizations" / "credsmith.io"
PATCH = ARGOCD_DIR / "argocd-cm-patch.yaml"
README = ARGOCD_DIR / "README.md"
KINDS = ("ServiceAccountCredential", "ApiClient", "IdentityProvider", "ClusterIdentityProvider")
KEYS = {kind: f"resource.customizations.health.credsmith.io_{kind}" for kind in KINDS}
REGENERATE = ".venv/bin/python tests/unit/argocd/test_argocd_install.py"

BEGIN = "<!-- BEGIN argocd-cm (generated from health.lua; do not edit by hand) -->"
END = "<!-- END argocd-cm -->"
_README_BLOCK = re.compile(re.escape(BEGIN) + r"\n```yaml\n(.*?)```\n" + re.escape(END), re.S)

_PATCH_HEADER = f"""\
# Argo CD health checks for credsmith.io ServiceAccountCredential, ApiClient,
# IdentityProvider and ClusterIdentityProvider, as a patch of the argocd-cm ConfigMap
# (see README.md beside this file):
#   kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm-patch.yaml
# Generated from resource_customizations/credsmith.io/*/health.lua by
#   {REGENERATE}
"""


def health_script(kind: str) -> str:
    return (GROUP_DIR / kind / "health.lua").read_text(encoding="utf-8")


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
    match = _README_BLOCK.search(readme)
    assert match is not None, f"README.md has no block between {BEGIN!r} and {END!r}"
    return match.group(1)


def test_patch_file_is_generated_from_health_lua() -> None:
    expected = render_patch(health_script(KINDS[0]))
    assert PATCH.read_text(encoding="utf-8") == expected, f"stale: run {REGENERATE}"


def test_patch_keys_hold_each_health_lua_exactly() -> None:
    # Independent of the renderer: what a YAML parser (and so Argo CD) reads.
    configmap = yaml.safe_load(PATCH.read_text(encoding="utf-8"))
    assert (configmap["apiVersion"], configmap["kind"]) == ("v1", "ConfigMap")
    assert configmap["metadata"]["name"] == "argocd-cm"
    assert set(configmap["data"]) == set(KEYS.values())
    for kind in KINDS:
        assert configmap["data"][KEYS[kind]] == health_script(kind), kind


def test_readme_snippet_equals_the_patch() -> None:
    block = readme_block(README.read_text(encoding="utf-8"))
    assert block == render_configmap(health_script(KINDS[0])), f"stale: run {REGENERATE}"
    assert yaml.safe_load(block) == yaml.safe_load(PATCH.read_text(encoding="utf-8"))


def test_readme_says_no_ignore_differences_is_needed() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "ignoreDifferences" in readme
    assert "useOpenLibs" in readme


def _write() -> None:
    script = health_script(KINDS[0])
    for kind in KINDS[1:]:
        if health_script(kind) != script:
            sys.exit(f"{kind}/health.lua differs from {KINDS[0]}/health.lua; make them equal")
    PATCH.write_text(render_patch(script), encoding="utf-8")
    readme = README.read_text(encoding="utf-8")
    readme_block(readme)  # fails clearly when the markers are missing
    replacement = f"{BEGIN}\n```yaml\n{render_configmap(script)}```\n{END}"
    README.write_text(_README_BLOCK.sub(lambda _: replacement, readme), encoding="utf-8")
    print(f"wrote {PATCH.relative_to(ROOT)} and the block in {README.relative_to(ROOT)}")


if __name__ == "__main__":
    _write()
