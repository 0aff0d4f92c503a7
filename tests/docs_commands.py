"""What the docs tell a reader to run, found in README.md and docs/*.md: every `make` target and `cdc` command
line in their shell blocks and inline code, with the file and line it is on. The unit test checks them against
the Makefile and the CLI's command tree; the integration test runs the README's hands-on blocks."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(\s*)```\s*([\w-]*)\s*$")
INLINE = re.compile(r"`([^`]+)`")
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")
WALKTHROUGH = re.compile(r'<!--\s*walkthrough(?:\s+expect="([^"]*)")?\s*-->')


@dataclass(frozen=True)
class Snippet:
    """A piece of code the docs show: one shell line (continuations joined) or one inline code span."""
    file: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"


@dataclass(frozen=True)
class Block:
    """A fenced shell block marked `<!-- walkthrough expect="..." -->`: run as is by the integration test."""
    file: Path
    line: int
    code: str
    expect: str | None


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _shell_lines(body: list[tuple[int, str]], file: Path) -> list[Snippet]:
    """One snippet per command line; heredoc bodies (another language) are skipped."""
    out: list[Snippet] = []
    pending: tuple[int, str] | None = None
    heredoc_end: str | None = None
    for n, line in body:
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        if pending is not None:
            n, line = pending[0], pending[1] + " " + line.strip()
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (n, line.rstrip()[:-1])
            continue
        out.append(Snippet(file, n, line))
        if (m := HEREDOC.search(line)) is not None:
            heredoc_end = m.group(1)
    return out


def parse(file: Path) -> tuple[list[Snippet], list[Block]]:
    """The code snippets of one Markdown file, and its walkthrough blocks."""
    lines = file.read_text().splitlines()
    snippets: list[Snippet] = []
    blocks: list[Block] = []
    prose = list(lines)  # fenced lines blanked, so inline spans keep their line numbers
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        start, lang = i, m.group(2).lower()
        j = i + 1
        while j < len(lines) and not FENCE.match(lines[j]):
            j += 1
        body = [(k + 1, lines[k]) for k in range(start + 1, j)]
        for k in range(start, min(j + 1, len(lines))):
            prose[k] = ""
        if lang in SHELL_LANGS:
            snippets += _shell_lines(body, file)
            mark = next((WALKTHROUGH.search(lines[k]) for k in range(start - 1, max(start - 3, -1), -1)
                         if lines[k].strip()), None)
            if mark is not None:
                blocks.append(Block(file, start + 2, "\n".join(text for _, text in body), mark.group(1)))
        i = j + 1
    text = "\n".join(prose)
    for m in INLINE.finditer(text):
        snippets.append(Snippet(file, text.count("\n", 0, m.start()) + 1, " ".join(m.group(1).split())))
    return snippets, blocks


def all_snippets() -> list[Snippet]:
    return [s for f in doc_files() for s in parse(f)[0]]


def walkthrough_blocks() -> list[Block]:
    return parse(REPO / "README.md")[1]
