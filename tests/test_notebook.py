"""A notebook-style script (tests/notebooks/sweep_numpy.py) sweeps its own nn.Module on numpy
arrays and writes a report: only the store and the report it names appear, nothing else."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "notebooks" / "sweep_numpy.py"


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_notebook_sweep_writes_only_the_store_and_the_report(tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    path = os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "HOME": str(home), "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": str(tmp_path / "mpl")}  # matplotlib's own cache, not batchlab's
    env.pop("BATCHLAB_CACHE", None)
    env.pop("XDG_CACHE_HOME", None)
    run = subprocess.run([sys.executable, str(SCRIPT), "study.db", "out/report.html"], cwd=work,
                         capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert "trained 4 skipped 0" in lines
    assert sum(line.startswith("run ") and " completed " in line for line in lines) == 4
    files = files_under(work)
    assert "study.db" in files and "out/report.html" in files
    others = {f for f in files if f not in ("study.db", "out/report.html")}
    assert others and all(f.startswith("out/report_files/") and f.endswith(".png") for f in others)
    assert files_under(home) == set()  # no cache, no config, no checkpoint left behind
    html = (work / "out" / "report.html").read_text()
    assert "spirals" in html and "python:SpiralNet" in html
