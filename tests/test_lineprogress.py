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
    bl.sweep("one", **{**kw, "grid": {"batch_size": [16]}, "lr": 0.05})
    assert capsys.readouterr().out.splitlines()[0] == "sweep 'one': 1 run; training 1"  # not '1 runs'


def test_a_failed_run_s_line_names_its_error():
    line = ended_line("ab B=8", RunEnded("ab", "failed", 3, 0.25, {}, "Traceback\nValueError: bad"))
    assert line == "ab B=8: failed, 3 steps, 0.2 s, ValueError: bad"
    one = ended_line("cd B=8", RunEnded("cd", "completed", 1, 0.25, {}))
    assert one == "cd B=8: completed, 1 step, 0.2 s"  # not '1 steps'


def test_a_function_sweep_s_lines_show_the_keys_its_runs_differ_by(tmp_path, capsys):
    """grid={'width': [16, 64]}: two lines that read 'B=32 lr=0.003 cosine' alone would not
    say which run is which; each names its width (and its seed, with repeats)."""
    def train(run):
        run.log(1, train_loss=1.0 / run.config["width"])

    bl.sweep("w", train, grid={"width": [16, 64]}, lr=0.003, schedule="cosine", steps=1,
             repeats=2, store=tmp_path / "s.db")
    lines = capsys.readouterr().out.splitlines()[1:]
    labels = [line.split(" ", 2)[2].split(":")[0] for line in lines]
    assert labels == [f"B=32 lr=0.003 cosine width={w} seed={s}" for w in (16, 64) for s in (0, 1)]
