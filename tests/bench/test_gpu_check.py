"""bench/gpu_check.py: its dry run (the same code on the CPU) passes and writes the table, so the
script is known to work before a GPU is at hand; a check that raises is a FAIL row and the
others still run; without a GPU and without --dry-run it says what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import gpu_check  # noqa: E402


def test_the_dry_run_passes_and_writes_the_markdown_table(tmp_path):
    res = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (written,) = tmp_path.glob("gpu_check-cpu-*.md")
    table = written.read_text()
    assert table.startswith("## GPU check: CPU (") and "dry run" in table.splitlines()[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == len(gpu_check.CHECKS)
    assert all(row.split(" | ")[-2] in ("PASS", "ran") for row in rows), table
    tests = next(r for r in rows if "pytest -m cuda" in r)
    assert "0 passed" in tests and " 0 skipped" not in tests  # collected, and skipped on the CPU
    assert "limited by memory" in next(r for r in rows if r.startswith("| max-batch"))


def test_a_check_that_raises_is_a_fail_row_and_the_others_run(tmp_path, monkeypatch, capsys):
    def broken(ctx):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(gpu_check, "CHECKS", {
        "broken": broken, "fine": lambda ctx: gpu_check.Row("fine", "42 samples/s", "PASS")})
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path)]) == 1
    table = next(tmp_path.glob("*.md")).read_text()
    assert "| broken | RuntimeError: CUDA error: an illegal memory access was encountered | FAIL |" in table
    assert "| fine | 42 samples/s | PASS |" in table


def test_unknown_checks_and_a_missing_gpu_are_clear_errors(tmp_path, capsys):
    assert gpu_check.main(["--checks", "tests,nope", "--out", str(tmp_path)]) == 2
    assert "unknown check(s) nope" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert gpu_check.main(["--out", str(tmp_path)]) == 2
        assert "or with --dry-run to check the script on the CPU" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

