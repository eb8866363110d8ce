"""Stores for the dashboard tests, written directly (no training, no torch): a 2 x 2 grid of
finished runs with per-step losses and per-epoch evaluations, and the hostile names."""

from __future__ import annotations

import math
from pathlib import Path

from batchlab.events import COMPLETED, MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store

EVIL = "<script>alert(1)</script>"
EVIL_ERROR = '<img src=x onerror="alert(2)"> stopped: loss at chance'
STEPS_PER_EPOCH = {16: 8, 64: 2}


def grid_spec(name: str = "grid") -> object:
    return spec_from_dict({
        "name": "grid", "data": {"name": "synthetic", "shape": [10], "classes": 3, "size": 128},
        "model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 3},
        "sweep": {"grid": {"train.batch_size": [16, 64], "train.lr": [0.1, 0.01]}}})


def rows(batch: int, lr: float, first: int, last: int) -> list[tuple]:
    """Metric rows of steps ``first..last``: a falling train loss per step, and val loss and
    accuracy at each epoch's end (faster for the larger LR)."""
    per = STEPS_PER_EPOCH[batch]
    out = []
    for s in range(first, last + 1):
        ep = s / per
        out.append(("train_loss", s, math.log(3) * math.exp(-lr * 5 * s / per), ep, s * batch, 0.01 * s))
        if s % per == 0:
            acc = 1 - 0.66 * math.exp(-lr * 10 * ep)
            out.append(("val_acc", s, acc, ep, s * batch, 0.01 * s))
            out.append(("val_loss", s, 1.2 - acc, ep, s * batch, 0.01 * s))
    return out


def make_store(path: Path, experiment: str = "grid", *, evil_run: bool = False) -> list[str]:
    """The grid under ``experiment``, every run completed after 3 epochs; with ``evil_run``
    the last run ends 'pruned' with a hostile reason. Returns the run ids in sweep order."""
    spec = grid_spec()
    runs = plan_runs(spec)
    with Store(path) as st:
        st.add_experiment(experiment, spec.model_dump(mode="json"), runs)
        for i, run in enumerate(runs):
            train = run.config.train
            total = 3 * STEPS_PER_EPOCH[train.batch_size]
            st.record(RunStarted(run.run_id, total, 0))
            st.record(MetricRows(run.run_id, rows(train.batch_size, train.lr, 1, total), total))
            pruned = evil_run and i == len(runs) - 1
            st.record(RunEnded(run.run_id, "pruned" if pruned else COMPLETED, total, 0.01 * total,
                               {"final_val_acc": 0.9, "effective_lr": train.lr},
                               EVIL_ERROR if pruned else None))
    return [r.run_id for r in runs]
