"""The shell commands of the user-facing Markdown (README.md, docs/, the chart's README).

A fenced block in `sh`, `bash` or `console` is a command a reader will paste. Each one is
either run by tests/e2e/test_docs_commands.py or marked, on the line right before its fence,
with `<!-- not-run: why -->` (e.g. it needs a registry). In a `console` block the commands are
the lines starting with `$ ` (a trailing backslash continues one); the rest is output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELL_LANGUAGES = ("sh", "bash", "console")
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class ShellBlock:
    path: Path
    line: int  # of the opening fence, 1-based
    language: str
    script: str  # the commands, as bash runs them
    not_run: str | None  # the reason given by a not-run marker

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def user_pages() -> list[Path]:
    """The Markdown a user reads: README.md, docs/*.md and the chart's README."""
    docs = sorted((ROOT / "docs").glob("*.md"))
    return [ROOT / "README.md", *docs, ROOT / "charts" / "credsmith" / "README.md"]


def shell_blocks(path: Path) -> list[ShellBlock]:
    lines = path.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, language = match.groups()
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : end]]
        if language in SHELL_LANGUAGES:
            marker = _NOT_RUN.match(lines[i - 1]) if i > 0 else None
            script = _console_commands(body) if language == "console" else "\n".join(body)
            blocks.append(
                ShellBlock(path, i + 1, language, script, marker.group(1) if marker else None)
            )
        i = end + 1
    return blocks


def _console_commands(body: list[str]) -> str:
    commands: list[str] = []
    continuing = False
    for line in body:
        if continuing or line.startswith("$ "):
            commands.append(line if continuing else line[2:])
            continuing = line.endswith("\\")
    return "\n".join(commands)
