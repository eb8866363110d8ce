"""``bl.sweep(..., dry_run=True)``: the plan of a sweep on the user's objects or function,
checked as the sweep checks it; nothing trains and nothing is written. (What it decides for
each run is ``execute.dryrun.decide``, which ``batchlab sweep --dry-run`` shares: its resume,
train-again and wait cases are tested in ``tests/cli/test_cli_dryrun.py``.)"""

import hashlib

import numpy as np
import pytest
from torch import nn

import batchlab as bl
from batchlab.errors import BatchlabError
from batchlab.execute.dryrun import SKIP, TRAIN
from batchlab.store import Store


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))


def arrays(n: int = 160):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dry_run_on_objects_trains_and_writes_nothing(tmp_path, capsys):
    db = tmp_path / "s.db"
    with pytest.warns(UserWarning, match="2 of the runs have lr = 'auto' with no LR found yet"):
        plan = bl.sweep("t", model=net, train=arrays(), store=db, epochs=2,
                        grid={"batch_size": [16, 32], "lr": [0.1, "auto"]}, dry_run=True)
    assert isinstance(plan, bl.DryRun) and plan.count() == "4 runs: 4 to train"
    assert [p.kind for p in plan.runs] == [TRAIN] * 4
    assert [p.unmeasured for p in plan.runs] == [False, True, False, True]
    assert not db.exists() and not (tmp_path / "s.db.ckpt").exists()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"dry run of sweep 't' ({db}, not created yet): nothing is trained or written"
    assert lines[1].split()[0] == plan.runs[0].run.run_id[:8] and lines[1].endswith(": train")
    assert lines[2].split()[:3] == ["-", "B=16", "lr=auto"] and lines[-1] == plan.count()


def test_a_dry_run_reads_the_store_as_the_sweep_would_and_leaves_it_as_it_was(tmp_path, capsys):
    db = tmp_path / "s.db"
    kw = dict(model=net, train=arrays(), store=db, epochs=2)
    done = bl.sweep("t", grid={"batch_size": [16]}, verbose=False, **kw)
    before = digest(db)
    plan = bl.sweep("t", grid={"batch_size": [16, 32]}, dry_run=True, verbose=False, **kw)
    assert [(p.run.config.train.batch_size, p.kind, p.would) for p in plan.runs] == [
        (16, SKIP, "skip (finished)"), (32, TRAIN, "train")]
    assert plan.runs[0].run.run_id == done.rows[0]["run_id"]
    assert digest(db) == before and capsys.readouterr().out == ""  # verbose=False prints nothing
    with Store(db) as st:
        assert [r.status for r in st.runs("t")] == ["completed"]


def test_a_dry_run_refuses_bad_input_as_the_sweep_does(tmp_path):
    with pytest.raises(BatchlabError, match="train.batch_size 512 is larger than the training set"):
        bl.sweep("t", model=net, train=arrays(), store=tmp_path / "s.db", batch_size=512, dry_run=True)
    assert not (tmp_path / "s.db").exists()


def test_a_dry_run_of_a_function_sweep_never_calls_the_function(tmp_path, capsys):
    calls = []

    def train(run):
        calls.append(run)
        return {"val_loss": 1.0}

    plan = bl.sweep("fn", train, store=tmp_path / "s.db", grid={"lr": [0.1, 0.2]}, dry_run=True)
    assert calls == [] and plan.count() == "2 runs: 2 to train"
    assert not (tmp_path / "s.db").exists()
    assert "lr=0.2" in capsys.readouterr().out
