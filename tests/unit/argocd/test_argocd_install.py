"""Every copy of the Argo CD health check users install stays equal to its one source,
deploy/argocd/health.lua: the four kinds' health.lua under resource_customizations/,
the keys of deploy/argocd/argocd-cm-patch.yaml and the YAML block in
deploy/argocd/README.md. deploy/argocd/generate.py writes them (`make crds`).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _load(path: Path) -> ModuleType:
    # A script beside what it writes, not a package: loaded from its file.
    spec = importlib.util.spec_from_file_location("argocd_generate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load(ROOT / "deploy" / "argocd" / "generate.py")


def source() -> str:
    text: str = generate.SOURCE.read_text(encoding="utf-8")
    return text


def test_every_copy_is_generated_from_health_lua() -> None:
    assert generate.stale() == [], f"stale: run {generate.REGENERATE}"


def test_each_kind_holds_the_source_byte_for_byte() -> None:
    for kind in generate.KINDS:
        assert generate.kind_script(kind).read_bytes() == generate.SOURCE.read_bytes(), kind


def test_patch_keys_hold_health_lua_exactly() -> None:
    # Independent of the renderer: what a YAML parser (and so Argo CD) reads.
    configmap = yaml.safe_load(generate.PATCH.read_text(encoding="utf-8"))
    assert (configmap["apiVersion"], configmap["kind"]) == ("v1", "ConfigMap")
    assert configmap["metadata"]["name"] == "argocd-cm"
    assert set(configmap["data"]) == set(generate.KEYS.values())
    for kind in generate.KINDS:
        assert configmap["data"][generate.KEYS[kind]] == source(), kind


def test_readme_snippet_equals_the_patch() -> None:
    block = generate.readme_block(generate.README.read_text(encoding="utf-8"))
    assert block == generate.render_configmap(source())
    assert yaml.safe_load(block) == yaml.safe_load(generate.PATCH.read_text(encoding="utf-8"))


def test_readme_says_no_ignore_differences_is_needed() -> None:
    readme = generate.README.read_text(encoding="utf-8")
    assert "ignoreDifferences" in readme
    assert "useOpenLibs" in readme


def test_check_finds_a_stale_copy_and_writing_fixes_it(tmp_path: Path) -> None:
    # The generator run on a copy of deploy/argocd/: an edited kind's copy is stale
    # (exit 1), and a run without --check puts every copy back.
    copy = tmp_path / "deploy" / "argocd"
    shutil.copytree(generate.ARGOCD_DIR, copy)
    local = _load(copy / "generate.py")
    assert local.main(["--check"]) == 0
    edited = local.kind_script("ApiClient")
    edited.write_text(edited.read_text(encoding="utf-8").replace("Healthy", "Fine"))
    local.PATCH.unlink()
    assert set(local.stale()) == {edited, local.PATCH}
    assert local.main(["--check"]) == 1
    assert local.main([]) == 0
    assert local.stale() == []
    assert edited.read_bytes() == local.SOURCE.read_bytes()


def test_the_script_refuses_what_a_yaml_block_would_change() -> None:
    with pytest.raises(ValueError, match="one newline"):
        generate.render_configmap("return {}\n\n")
    with pytest.raises(ValueError, match="trailing spaces"):
        generate.render_configmap("return {} \n")
