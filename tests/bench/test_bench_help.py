"""Every benchmark script the docs name answers ``--help`` with its usage, never by starting
its minutes of training."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


def scripts() -> list[Path]:
    """The benchmarks: scripts with a ``__main__`` block (``_``-modules are their helpers)."""
    return sorted(p for p in BENCH.glob("[!_]*.py") if 'if __name__ == "__main__"' in p.read_text())


def test_every_runnable_bench_script_parses_its_arguments():
    # a script without a parser ignores --help and runs the whole benchmark
    found = scripts()
    assert len(found) >= 10
    missing = [p.name for p in found if "ArgumentParser(" not in p.read_text()]
    assert missing == []


def test_every_bench_script_the_docs_name_exists():
    named = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= set(re.findall(r"bench/([a-z_]+\.py)", page.read_text()))
    assert named and {name for name in named if not (BENCH / name).is_file()} == set()


def test_train_subset_help_prints_its_usage_and_trains_nothing():
    res = subprocess.run([sys.executable, str(BENCH / "train_subset.py"), "--help"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: train_subset.py") and "train-accuracy subset" in res.stdout
    assert "trained" not in res.stderr
