"""The conventions of docblocks.py hold on every page: each fenced block says what it is, a
block that is not run says why, and every spec shown is a valid spec."""

from __future__ import annotations

import re

import pytest
from docblocks import LANGUAGES, ROOT, Block, all_blocks, blocks

from batchlab.spec import spec_from_dict


def test_every_fence_names_a_known_language():
    unnamed = [f"{b.where} ({b.lang or 'no language'})" for b in all_blocks() if b.lang not in LANGUAGES]
    assert not unnamed, ("a fence must say what it holds (python, bash, toml, or text for output): "
                         + ", ".join(unnamed))


def test_every_block_that_is_not_run_says_why():
    for b in all_blocks():
        if b.no_test is not None:
            assert len(b.no_test) >= 10, f"{b.where}: <!-- no-test: ... --> needs its reason"


def test_a_bash_block_with_a_batchlab_command_is_run_or_says_why_not():
    for b in all_blocks():
        if b.lang == "bash" and b.no_test is None and b.runs:
            others = [c for c in b.commands if c.split()[0] != "batchlab"]
            assert not others, f"{b.where}: only batchlab commands run here, not {others}"


def test_a_new_python_block_is_run(tmp_path):
    """A python block added to a new page counts as one to run: the page test
    (test_docs_pages_run.py) then runs it, or fails for a page it has no check for."""
    from test_docs_pages_run import CHECKS, pages_that_run

    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text((ROOT / "README.md").read_text())
    (tmp_path / "docs" / "new.md").write_text(
        "# New\n\n```python\nprint('hello')\n```\n\n```text\nhello\n```\n\n"
        "<!-- no-test: an example of a marked block -->\n```python\nprint('not run')\n```\n")
    assert [b.runs for b in blocks("docs/new.md", tmp_path)] == [True, False, False]
    assert pages_that_run(tmp_path) == ["README.md", "docs/new.md"]
    assert "docs/new.md" not in CHECKS


def spec_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.lang == "toml" and b.no_test is None]


@pytest.mark.parametrize("block", spec_blocks(), ids=lambda b: b.where)
def test_every_spec_shown_is_a_valid_spec(block):
    import tomllib

    spec = spec_from_dict(tomllib.loads(block.code), source=block.where)
    assert spec.sweep.grid, f"{block.where}: the specs shown sweep something"


def test_the_readme_is_a_short_front_door():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name}" in readme, f"the README links to docs/{page.name}"
    assert "](docs/report.png)" in readme


def test_the_readme_s_sweep_line_says_the_real_default_workers():
    """The quick start's comment on ``batchlab sweep`` matches ``--workers``' default (1:
    only ``demo`` defaults to 2 worker processes)."""
    import inspect

    from batchlab.cli.runs import sweep

    default = inspect.signature(sweep).parameters["workers"].default
    line = next(line for line in (ROOT / "README.md").read_text().splitlines()
                if line.startswith("batchlab sweep study.toml"))
    said = re.search(r"on (\d+) worker process|one at a time", line)
    assert said, f"the README's sweep line says how its runs train: {line!r}"
    assert (int(said.group(1)) if said.group(1) else 1) == default, line


def test_the_code_sends_readers_to_pages_that_exist():
    """Error messages and docstrings that point at the documentation name a page that exists,
    and none points at the README for the reference (it is a short front door now)."""
    named: set[str] = set()
    for path in sorted((ROOT / "src").rglob("*.py")):
        text = path.read_text()
        named |= set(re.findall(r"docs/([\w-]+\.md)", text))
        stale = [line.strip() for line in text.splitlines()
                 if "README" in line and not line.lstrip().startswith("#")]
        assert not stale, f"{path.relative_to(ROOT)} sends the reader to the README: {stale}"
    missing = sorted(n for n in named if not (ROOT / "docs" / n).is_file())
    assert named and not missing, missing
