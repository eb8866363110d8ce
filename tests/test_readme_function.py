"""The README's "Sweeping your own training function" section runs as written: its ```python
blocks, in order, as one script in an empty folder (the Lightning block uses the data of the
first)."""

import re
from pathlib import Path

from test_readme_api import run_blocks

ROOT = Path(__file__).resolve().parents[1]


def blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Sweeping your own training function\n"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_shows_the_run_handle():
    code = "\n".join(blocks())
    for call in ("bl.sweep(", "run.config", "run.lr", "run.scheduler(", "run.log(", "run.save(",
                 "run.restore()", "run.should_stop()", "DataLoader(", "torch.autocast(",
                 "clip_grad_norm_(", "BatchlabLogger(run=run)", "BatchlabPruning(run)"):
        assert call in code, call


def test_the_examples_run(tmp_path):
    out, work = run_blocks(blocks(), tmp_path)
    assert "8 0 8" in out.stdout
    assert "best config: batch" in out.stdout
    assert "['completed', 'completed']" in out.stdout
    assert (work / "my-function.html").is_file()
