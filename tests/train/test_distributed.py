"""One run over two processes (DDP, gloo on CPU) equals the 1-process run at the same global batch.

Each DDP run spawns two processes (~5-10 s on a loaded 2-core machine), so the multi-process
runs here are few: one uninterrupted 2 x 32 run shared by the equivalence and resume tests, a
paused and a resumed one, and two BatchNorm runs (sync on, sync off) of a few steps.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from batchlab.analysis.diagnose import check_bn_per_process
from batchlab.events import MetricRows, RunStarted
from batchlab.execute.function import train_task
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.distributed import _ShareLoss, shard
from batchlab.train.prune import PruneOrder

STEPS = 200
BN_STEPS = 30


def config(devices: int, model: dict | None = None, **train) -> RunConfig:
    s = spec_from_dict({
        "data": {"name": "digits"},
        "model": model or {"name": "mlp", "hidden": [32]},
        "train": {"batch_size": 64, "steps": STEPS, "lr": 0.05, "device": "cpu", "threads": 1,
                  "devices": devices, "strategy": "ddp" if devices > 1 else "single", **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def train(cfg: RunConfig, **kw):
    events = []
    end = train_task(cfg, events.append, **kw)
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    return end, events, rows


def series(rows, name) -> dict[int, float]:
    return {r[1]: r[2] for r in rows if r[0] == name}


def losses(rows) -> np.ndarray:
    s = series(rows, "train_loss")
    return np.array([s[k] for k in sorted(s)])


@pytest.fixture(scope="module")
def one_process():
    return train(config(1))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("ddp") / "run.pt"
    return train(config(2), checkpoint_path=ckpt)


def test_shard_covers_the_batch_in_order():
    assert [shard(64, r, 2) for r in range(2)] == [slice(0, 32), slice(32, 64)]
    assert [shard(29, r, 2) for r in range(2)] == [slice(0, 15), slice(15, 29)]
    assert [shard(1, r, 3) for r in range(3)] == [slice(0, 1), slice(1, 1), slice(1, 1)]


def test_share_losses_average_to_the_batch_mean():
    """DDP averages the ranks' gradients: the weighted share losses average to the global mean,
    for an uneven last batch too, and an empty share contributes zero (not NaN)."""
    torch.manual_seed(0)
    out, y = torch.randn(29, 4), torch.randint(0, 4, (29,))
    fn = _ShareLoss(nn.functional.cross_entropy)
    parts = []
    for r in range(2):
        p = shard(29, r, 2)
        fn.weight = (p.stop - p.start) * 2 / 29
        parts.append(fn(out[p], y[p]))
    assert float(sum(parts) / 2) == pytest.approx(float(nn.functional.cross_entropy(out, y)), rel=1e-6)
    empty = fn(out[:0], y[:0])
    assert float(empty) == 0.0


def test_two_processes_equal_one_at_the_same_global_batch(one_process, two_processes):
    """2 x 32 = 1 x 64 over 200 steps: the same loss every step, within float rounding (the
    mean of two means of 32 is not bit for bit the mean of 64), and the same evaluations."""
    end1, _, rows1 = one_process
    end2, events2, rows2 = two_processes
    assert end1.status == end2.status == "completed"
    a, b = losses(rows1), losses(rows2)
    assert len(a) == len(b) == STEPS
    assert np.max(np.abs(a - b)) < 1e-4
    assert series(rows2, "val_loss").keys() == series(rows1, "val_loss").keys()
    assert end2.summary["final_val_loss"] == pytest.approx(end1.summary["final_val_loss"], abs=1e-4)
    # one run: rank 0 alone reported (one start, one end, every step once)
    assert sum(isinstance(e, RunStarted) for e in events2) == 1
    assert end2.summary["devices"] == 2 and end2.summary["backend"] == "gloo"
    assert end2.summary["micro_batch_size"] == 32  # each process forwards its 32


def test_accumulation_splits_each_process_share(one_process):
    """2 processes x 2 micro-batches of 16 (gradients all-reduced once, after the last) is
    still the 1 x 64 update."""
    end, _, rows = train(config(2, steps=50, accumulate=2))
    assert end.status == "completed" and end.summary["micro_batch_size"] == 16
    assert np.max(np.abs(losses(rows) - losses(one_process[2])[:50])) < 1e-4


def test_resume_of_a_ddp_run_equals_the_uninterrupted_run(two_processes, tmp_path):
    """Paused at the first epoch end (with a checkpoint, rank 0's), then resumed from it: the
    steps after the pause have the uninterrupted run's losses."""
    ckpt = tmp_path / "run.pt"
    first, _, rows_a = train(config(2), checkpoint_path=ckpt,
                             prune=PruneOrder(hopeless=False, pause_at_examples=1))
    assert first.status == "interrupted" and "paused" in first.error
    assert ckpt.is_file() and list(tmp_path.iterdir()) == [ckpt]  # no second writer's file
    end, events, rows_b = train(config(2), checkpoint_path=ckpt)
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.resumed_from == first.steps > 0
    whole = series(two_processes[2], "train_loss")
    resumed = series(rows_b, "train_loss")
    assert min(resumed) == first.steps + 1 and max(resumed) == STEPS
    assert max(abs(resumed[k] - whole[k]) for k in resumed) < 1e-6
    assert end.status == "completed" and not ckpt.exists()


BN_FACTORY = '''
from torch import nn

def make(input_shape, num_classes):
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                         nn.Linear(32, num_classes))
'''


@pytest.fixture
def bn_model(tmp_path, monkeypatch):
    (tmp_path / "ddpbn.py").write_text(BN_FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return {"name": "ddpbn:make"}


def test_batchnorm_is_per_process_unless_synchronised(bn_model):
    """Without sync each process normalises its 32 with their own statistics: the run equals
    one process accumulating two micro-batches of 32 (up to the epoch's partial last batch at
    step 23, which the two split differently), not one batch of 64. Synchronised, the global
    64 are normalised together: the run equals 1 x 64 at every step."""
    whole = losses(train(config(1, bn_model, steps=BN_STEPS))[2])
    halves = losses(train(config(1, bn_model, steps=BN_STEPS, accumulate=2))[2])
    end_sync, _, rows_sync = train(config(2, bn_model, steps=BN_STEPS, sync_batchnorm=True))
    end_own, _, rows_own = train(config(2, bn_model, steps=BN_STEPS))
    synced, own = losses(rows_sync), losses(rows_own)
    assert end_sync.status == end_own.status == "completed", (end_sync.error, end_own.error)
    assert np.max(np.abs(synced - whole)) < 1e-4
    full = 22  # steps on full batches of 64: 1437 training examples
    assert np.max(np.abs(own[:full] - halves[:full])) < 1e-4
    assert np.max(np.abs(own[:full] - whole[:full])) > 1e-3  # per-process statistics differ
    # what the trainer records is what the diagnosis's note reads
    assert check_bn_per_process(end_own.summary) is not None
    assert check_bn_per_process(end_sync.summary) is None
    assert not math.isnan(end_sync.summary["final_val_loss"])


def test_a_failing_run_over_processes_ends_failed_with_the_cause():
    end, events, _ = train(config(2, {"name": "no_such_module_here:make"}))
    assert end.status == "failed" and "no_such_module_here" in end.error
    assert [type(e).__name__ for e in events].count("RunEnded") == 1


def test_builders_that_do_not_pickle_are_refused_in_one_paragraph():
    from batchlab.train.inputs import RunInputs, spec_model

    inputs = RunInputs(build_model=lambda spec, data: spec_model(spec, data))
    end, _, _ = train(config(2), inputs=inputs)
    assert end.status == "failed"
    assert end.error.startswith("train.devices = 2 trains in 2 spawned processes, which need the "
                                "run's model, data, loss and optimizer builders to pickle")
    assert "\n" not in end.error


def test_train_run_alone_refuses_a_run_over_processes():
    from batchlab.train.loop import train_run

    end = train_run(config(2), lambda e: None)
    assert end.status == "failed" and "start it with batchlab.execute.function.train_task" in end.error
