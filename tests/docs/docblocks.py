"""The code blocks of README.md and docs/*.md, and how the tests run them.

Every fenced block names its language, and the language says what the tests do with it
(docs/development.md states the same conventions for writers):

- ``python`` / ``toml`` with ``title="NAME"``: a file the page asks you to write; it is written
  into the page's work folder before anything runs;
- ``python``: run. A page's untitled python blocks run in order as one script (later blocks use
  names from earlier ones) in an empty work folder;
- ``bash``: commands. A block that holds a ``batchlab`` command is run, one command per line,
  after the page's script and in the same folder, each of them must exit 0; it may hold nothing
  but ``batchlab`` commands and ``#`` comments;
- ``toml`` without a title: a spec, loaded with ``load_spec``;
- ``text``: output or a layout, never run;
- ``<!-- no-test: REASON -->`` on the line before a fence: the block is not run, for that reason
  (a server that runs until Ctrl-C, a cluster, the install and test commands themselves).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {"python", "bash", "toml", "text"}
FENCE = re.compile(r"^```(.*)$")
NO_TEST = re.compile(r"^<!-- no-test:(.*)-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its page (relative to the repository root), the line of its opening
    fence, its language, its ``title="..."`` (a file to write) and the reason it is not run."""

    page: str
    line: int
    lang: str
    title: str | None
    code: str
    no_test: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def commands(self) -> list[str]:
        """A bash block's commands: continuation lines joined, comments and blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.code)
        return [line.strip() for line in joined.splitlines()
                if line.strip() and not line.strip().startswith("#")]

    @property
    def runs(self) -> bool:
        """Whether the page's test runs it: python scripts and files, and batchlab commands."""
        if self.no_test is not None:
            return False
        if self.lang == "bash":
            return any(c.split()[0] == "batchlab" for c in self.commands)
        return self.lang == "python" or (self.lang == "toml" and self.title is not None)


def pages(root: Path = ROOT) -> list[str]:
    """README.md and every page of the docs site (relative to ``root``, this checkout)."""
    return ["README.md", *sorted(f"docs/{p.name}" for p in (root / "docs").glob("*.md"))]


def blocks(page: str, root: Path = ROOT) -> list[Block]:
    """The fenced blocks of one page, in order. An unclosed fence is an error."""
    found: list[Block] = []
    lines = (root / page).read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        info = opening.group(1).strip()
        lang = info.split()[0] if info else ""
        title = re.search(r'title="([^"]+)"', info)
        marker = NO_TEST.match(lines[i - 1]) if i else None
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        assert end is not None, f"{page}:{i + 1}: the fence opened here is never closed"
        found.append(Block(page, i + 1, lang, title.group(1) if title else None,
                           "\n".join(lines[i + 1:end]) + "\n",
                           marker.group(1).strip() if marker else None))
        i = end + 1
    return found


def all_blocks() -> list[Block]:
    return [b for page in pages() for b in blocks(page)]


@dataclass
class PageRun:
    """What running a page produced: the script's output and each command's."""

    work: Path
    script: subprocess.CompletedProcess | None = None
    commands: list[tuple[str, subprocess.CompletedProcess]] = field(default_factory=list)

    @property
    def stdout(self) -> str:
        return "".join([self.script.stdout if self.script else "",
                        *(out.stdout for _, out in self.commands)])


def environment() -> dict[str, str]:
    """This checkout's sources first (the work folder is elsewhere), one thread, no display."""
    path = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def run_page(page: str, tmp_path: Path, setup: Callable[[Path], None] | None = None) -> PageRun:
    """Run a page as a reader would, in an empty folder: write its files, run its python blocks
    as one script, then its batchlab commands. ``setup`` puts what the page assumes exists
    (a reader's own log files, say) into the folder first. Every step must exit 0."""
    work = tmp_path / "work"
    work.mkdir()
    if setup is not None:
        setup(work)
    runnable = [b for b in blocks(page) if b.runs]
    for b in runnable:
        if b.title is not None:
            (work / b.title).write_text(b.code)
    result = PageRun(work)
    env = environment()
    script = [b.code for b in runnable if b.lang == "python" and b.title is None]
    if script:
        path = tmp_path / "page_script.py"
        path.write_text("\n\n".join(script))
        result.script = subprocess.run([sys.executable, str(path)], cwd=work, capture_output=True,
                                       text=True, env=env, timeout=900)
        assert result.script.returncode == 0, f"{page}: {result.script.stderr[-3000:]}"
    for b in runnable:
        if b.lang != "bash":
            continue
        for command in b.commands:
            words = shlex.split(command, comments=True)
            assert words[0] == "batchlab", (
                f"{b.where}: a run bash block holds only batchlab commands, not {command!r} "
                "(mark the block <!-- no-test: why --> if it cannot run here)")
            out = subprocess.run([sys.executable, "-m", "batchlab", *words[1:]], cwd=work,
                                 capture_output=True, text=True, env=env, timeout=900)
            assert out.returncode == 0, f"{b.where}: {command}\n{out.stdout[-2000:]}{out.stderr[-2000:]}"
            result.commands.append((command, out))
    return result
