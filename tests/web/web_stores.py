"""Stores for the dashboard tests, written directly (no training, no torch): a 2 x 2 grid of
finished runs with per-step losses and per-epoch evaluations, and the hostile names."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def grid_store(path: Path, experiment: str) -> Iterator[tuple[Store, list]]:
    """The store at ``path`` with the grid's runs planned under ``experiment``, open."""
    spec = grid_spec()
    runs = plan_runs(spec)
    with Store(path) as st:
        st.add_experiment(experiment, spec.model_dump(mode="json"), runs)
        yield st, runs


def make_store(path: Path, experiment: str = "grid", *, evil_run: bool = False) -> list[str]:
    """The grid under ``experiment``, every run completed after 3 epochs; with ``evil_run``
    the last run ends 'pruned' with a hostile reason. Returns the run ids in sweep order."""
    with grid_store(path, experiment) as (st, runs):
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


DIVERGED_ERROR = "non-finite loss at step 11 (the loss had reached 1e34 at step 10)"
HUGE = 1e34  # a diverging run's last finite train loss


def reg_rows(batch: int, lr: float, last: int, diverge: bool = False) -> list[tuple]:
    """A regression's rows (float targets: val_loss, never val_acc) of steps 1..``last``;
    with ``diverge`` the train loss of the last step is HUGE."""
    per = STEPS_PER_EPOCH[batch]
    out = []
    for s in range(1, last + 1):
        ep = s / per
        loss = HUGE if diverge and s == last else 0.5 * math.exp(-lr * 5 * s / per) + 0.01
        out.append(("train_loss", s, loss, ep, s * batch, 0.01 * s))
        if s % per == 0 and not (diverge and s == last):
            out.append(("val_loss", s, 1.2 * loss, ep, s * batch, 0.01 * s))
    return out


def make_regression_store(path: Path, experiment: str = "reg") -> list[str]:
    """The grid as a regression (val_loss only): three runs complete 3 epochs, the first (batch
    16, lr 0.1) diverges after step 10, a train loss of HUGE, with DIVERGED_ERROR stored.
    Returns the run ids in sweep order."""
    with grid_store(path, experiment) as (st, runs):
        for i, run in enumerate(runs):
            train = run.config.train
            total = 3 * STEPS_PER_EPOCH[train.batch_size]
            last = 10 if i == 0 else total  # one evaluation (step 8) first
            rs = reg_rows(train.batch_size, train.lr, last, diverge=i == 0)
            st.record(RunStarted(run.run_id, total, 0))
            st.record(MetricRows(run.run_id, rs, last))
            finals = [v for k, _, v, *_ in rs if k == "val_loss"]
            summary = {"final_val_loss": finals[-1], "best_val_loss": min(finals), "effective_lr": train.lr}
            st.record(RunEnded(run.run_id, "diverged" if i == 0 else COMPLETED, last, 0.01 * last,
                               summary, DIVERGED_ERROR if i == 0 else None))
    return [r.run_id for r in runs]
