"""bl.sweep's progress lines: printed as they happen (a terminal and a notebook show plain
lines alike), silenced by verbose=False (issue 21, part 2, item 13)."""

import numpy as np
from torch import nn

import batchlab as bl
from batchlab.events import RunEnded
from batchlab.lineprogress import ended_line


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def test_a_sweep_prints_its_plan_and_a_line_per_run(tmp_path, capsys):
    kw = dict(model=nn.Linear(4, 2), train=data(), store=tmp_path / "s.db", epochs=1, lr=0.1,
              threads=1, grid={"batch_size": [16, 32]})
    res = bl.sweep("p", **kw)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sweep 'p': 2 runs; training 2"
    assert [line.split()[0] for line in lines[1:]] == ["[1/2]", "[2/2]"]
    for line, row in zip(lines[1:], res.rows, strict=True):
        assert f"{row['run_id'][:8]} B={row['batch_size']} lr=0.1 constant: completed" in line
        assert f"best val acc {row['best_val_acc']:.4g}" in line
    bl.sweep("p", **kw)  # the rerun skips both
    assert capsys.readouterr().out.splitlines() == ["sweep 'p': 2 runs, 2 already in the store; training 0"]
    bl.sweep("q", **kw, verbose=False)
    assert capsys.readouterr().out == ""


def test_a_failed_run_s_line_names_its_error():
    line = ended_line("ab B=8", RunEnded("ab", "failed", 3, 0.25, {}, "Traceback\nValueError: bad"))
    assert line == "ab B=8: failed, 3 steps, 0.2 s, ValueError: bad"
