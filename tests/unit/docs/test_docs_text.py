"""What user-facing text must not say, and how its shell blocks are marked.

Running the blocks is tests/e2e/test_docs_commands.py; here, without a cluster: every shell
block is found, a `not-run` marker gives its reason, and no page uses words or commands a
user does not have (a design document outside the repository, seed numbers, notes about a
build machine, a `kubectl` flag that does not exist, an annotate that fails the second time).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs_blocks import ROOT, shell_blocks, user_pages

EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
NOTES = ROOT / "charts/credsmith/templates/NOTES.txt"
TEXTS = [*user_pages(), *EXAMPLES, NOTES]

FORBIDDEN = {
    r"shared/design\.md|\.\./shared": "a file outside the repository",
    r"\bseeds?\b": "the project's seed documents, which users do not have",
    r"this machine|measured here|build machine": "a note about where the project is built",
    r"kubectl get[^\n`]*--limit|`--limit`": "`kubectl get` has no --limit (use --chunk-size)",
}


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_words_users_do_not_have(path: Path) -> None:
    text = path.read_text()
    found = [
        f"{why}: {match.group(0)!r}"
        for pattern, why in FORBIDDEN.items()
        for match in re.finditer(pattern, text, re.IGNORECASE)
    ]
    assert found == []


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_rotation_requests_overwrite(path: Path) -> None:
    """The annotation stays after the first request: without --overwrite the second fails."""
    commands = re.findall(r"kubectl annotate[^\n`]*credsmith\.io/rotate[^\n`]*", path.read_text())
    assert [c for c in commands if "--overwrite" not in c] == []


def test_shell_blocks_are_found_and_markers_give_a_reason() -> None:
    blocks = [block for page in user_pages() for block in shell_blocks(page)]
    assert len(blocks) >= 10
    assert [b.where for b in blocks if b.not_run is not None and not b.not_run] == []
    assert [b.where for b in blocks if not b.script.strip()] == []
    runnable = [b for b in blocks if b.not_run is None]
    assert len(runnable) >= 5


def test_a_console_block_runs_only_its_commands(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not-run: needs a registry -->\n```sh\nhelm install x\n```\n\n"
        "```console\n$ kubectl get sacred \\\n  -o wide\nNAME   READY\n$ kubectl get pods\n```\n"
        "```yaml\nkind: X\n```\n"
    )
    marked, console = shell_blocks(page)
    assert (marked.not_run, marked.script) == ("needs a registry", "helm install x")
    assert console.not_run is None
    assert console.script == "kubectl get sacred \\\n  -o wide\nkubectl get pods"
