"""The README's Python API section runs as written: every ```python block in it, in order, as
one script in an empty folder (later blocks use names from earlier ones)."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def api_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Python API\n"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_shows_every_entry_point():
    code = "\n".join(api_blocks())
    for call in ("bl.sweep(", "bl.lr_find(", "bl.max_batch(", "bl.throughput(", "bl.noise_scale(",
                 "bl.recommend(", "bl.open(", ".report(", ".next(", "loss=", "optimizer="):
        assert call in code, call


def run_blocks(blocks: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """The blocks as one script, run in an empty folder (returned) with this checkout's code;
    it must exit 0."""
    script = tmp_path / "readme_blocks.py"
    script.write_text("\n\n".join(blocks))
    work = tmp_path / "work"
    work.mkdir()
    # this checkout's sources first, resolved: the script runs in another folder
    path = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    out = subprocess.run([sys.executable, str(script)], cwd=work, capture_output=True, text=True,
                         env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return out, work


def test_the_python_api_examples_run(tmp_path):
    out, work = run_blocks(api_blocks(), tmp_path)
    assert "4 0 4" in out.stdout                       # planned, skipped, trained
    assert "compared by validation loss; best config" in out.stdout
    assert "['my-study', 'my-regression']" in out.stdout
    for name in ("study.db", "my-study.html", "my-regression.html", "my-study-again.html",
                 "batchlab.db"):
        assert (work / name).is_file(), name
