"""How large must the train-accuracy subset be? Subset estimates against the whole training set.

Every evaluation measures train accuracy in eval mode on a fixed random subset of the training
set (``train_eval_size`` in ``train/loop.py``), because the hand loop's alternative, a full pass
over the training set, costs as much as a third of an epoch. The subset's only job is the
train-vs-validation gap: the overfitting diagnosis fires when the final gap exceeds
``overfit_gap`` (10 points), and its onset is the first evaluation from which the gap stays above.

This script trains runs chosen to span the cases (clear overfitting, borderline, none) with the
real trainer, evaluates the *whole* training set at every evaluation, and records each example's
correctness in the subset's order (the subset of size k is the first k of one fixed permutation,
so every candidate size is read from the same runs). Per candidate size it reports the error of
the final train accuracy against the whole set, and how often the gap signal (final gap above
the threshold) and its onset epoch disagree with the whole set's.

    python bench/train_subset.py          # ~5 minutes on 1 core
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import machine_line, print_table, run_config, set_threads

import batchlab.train.loop as loop
from batchlab.analysis.findings import Thresholds
from batchlab.data import load_dataset


def breast_cancer_npz(folder: Path) -> Path:
    """scikit-learn's breast cancer set, standardised per feature, as a local ``.npz`` file."""
    from sklearn.datasets import load_breast_cancer

    path = folder / "breast_cancer_std.npz"
    if not path.exists():
        x, y = load_breast_cancer(return_X_y=True)
        x = (x - x.mean(0)) / x.std(0)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64))
    return path


SIZES = (64, 128, 256, 512)
GAP = Thresholds().overfit_gap

SGD = {"optimizer": "sgd", "momentum": 0.9}
ADAM = {"optimizer": "adam"}
#: (name, data, model, train settings, grid of (batch size, lr)); budgets long enough to overfit
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], list[tuple[int, float]]]] = [
    ("digits-300-mlp", {"name": "digits", "limit": 300}, {"name": "mlp", "hidden": [128]},
     {**SGD, "epochs": 40}, [(16, 0.01), (16, 0.1), (64, 0.03), (64, 0.3)]),
    ("digits-mlp", {"name": "digits"}, {"name": "mlp"},
     {**SGD, "epochs": 15}, [(32, 0.01), (128, 0.1)]),
    ("mnist1d-2000-mlp", {"name": "mnist1d", "size": 2000}, {"name": "mlp", "hidden": [256, 256]},
     {**ADAM, "epochs": 30}, [(32, 1e-3), (128, 1e-3), (128, 1e-2), (32, 1e-4)]),
    ("mnist1d-4000-cnn1d", {"name": "mnist1d", "size": 4000}, {"name": "cnn1d"},
     {**ADAM, "epochs": 10}, [(64, 1e-3), (64, 1e-2)]),
    ("mnist1d-4000-cnn1d-long", {"name": "mnist1d", "size": 4000}, {"name": "cnn1d"},
     {**ADAM, "epochs": 25}, [(64, 3e-3), (128, 1e-3), (32, 3e-4)]),
    ("mnist1d-4000-mlp", {"name": "mnist1d", "size": 4000}, {"name": "mlp", "hidden": [128]},
     {**ADAM, "epochs": 20}, [(64, 1e-3), (256, 3e-3), (32, 1e-4)]),
    ("synthetic-lenet5", {"name": "synthetic", "shape": [1, 16, 16], "size": 1500},
     {"name": "lenet5"}, {**SGD, "epochs": 20}, [(32, 0.01), (32, 0.1), (64, 0.03)]),
    ("synthetic-1000-lenet5", {"name": "synthetic", "shape": [1, 16, 16], "size": 1000},
     {"name": "lenet5"}, {**SGD, "epochs": 30}, [(16, 0.03), (64, 0.1)]),
    ("cancer-mlp", {"name": "npz", "path": "<cancer>", "normalize": False},
     {"name": "mlp", "hidden": [64]}, {**SGD, "epochs": 60}, [(8, 0.01), (32, 0.1)]),
]


@dataclass
class Run:
    name: str
    epochs: list[float]
    val_acc: list[float]
    correct: list[np.ndarray]  # per evaluation: correctness of every training example, subset order


def record_run(name: str, data: dict[str, Any], model: dict[str, Any], train: dict[str, Any]) -> Run:
    """Train one run with the whole training set as the 'subset' and keep its correctness."""
    config = run_config(data, model, {**train, "threads": 1, "checkpoint": False, "seed": 0})
    dataset = load_dataset(config.data)
    correct: list[np.ndarray] = []
    val_acc: list[float] = []
    plain = loop.evaluate_batches

    def recording(model: torch.nn.Module, batches: Any, *args: Any, **kwargs: Any) -> Any:
        batches = list(batches)
        out = plain(model, batches, *args, **kwargs)
        if len(correct) < len(val_acc):  # run_eval evaluates validation first, then the subset
            was = model.training
            model.eval()
            with torch.no_grad():
                correct.append(torch.cat([(model(x).argmax(1) == y) for x, y in batches]).numpy())
            model.train(was)
        else:
            val_acc.append(out[1])
        return out

    events: list[Any] = []
    loop.evaluate_batches, saved_size = recording, loop.train_eval_size
    loop.train_eval_size = lambda n_train, n_val: n_train
    try:
        loop.train_run(config, events.append, load_data=lambda spec: dataset)
    finally:
        loop.evaluate_batches, loop.train_eval_size = plain, saved_size
    n_eval = len(correct)
    spe = math.ceil(len(dataset.train_y) / config.train.batch_size)
    steps = sorted({r[1] for e in events if hasattr(e, "rows") for r in e.rows if r[0] == "val_acc"})
    return Run(name, [s / spe for s in steps][:n_eval], val_acc[:n_eval], correct)


def onset(gap: np.ndarray, epochs: list[float]) -> float | None:
    """The diagnosis' onset: the first evaluation from which the gap stays above the threshold."""
    if gap[-1] <= GAP:
        return None
    closed = np.flatnonzero(gap <= GAP)
    return epochs[closed[-1] + 1] if closed.size else epochs[0]


def main() -> int:
    # --help says what it does and exits, rather than starting five minutes of training
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    set_threads(1)
    print(machine_line())
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-subset-") as tmp:
        cancer = str(breast_cancer_npz(Path(tmp)))
        for name, data, model, train, grid in CASES:
            data = {k: cancer if v == "<cancer>" else v for k, v in data.items()}
            for batch, lr in grid:
                runs.append(record_run(f"{name} b{batch} lr{lr:g}", data, model,
                                       {**train, "batch_size": batch, "lr": lr}))
                print(f"  trained {runs[-1].name}", file=sys.stderr, flush=True)
    per_run = []
    stats = {k: {"err": [], "flip": 0, "onset": 0} for k in SIZES}
    for run in runs:
        val = np.array(run.val_acc)
        full = np.array([c.mean() for c in run.correct])
        gap_full = full - val
        row: list[Any] = [run.name, f"{full[-1]:.3f}", f"{val[-1]:.3f}", f"{gap_full[-1]:+.3f}"]
        truth_onset = onset(gap_full, run.epochs)
        for k in SIZES:
            sub = np.array([c[:k].mean() for c in run.correct])
            gap = sub - val
            stats[k]["err"].append(abs(sub[-1] - full[-1]))
            stats[k]["flip"] += (gap[-1] > GAP) != (gap_full[-1] > GAP)
            stats[k]["onset"] += onset(gap, run.epochs) != truth_onset
            row.append(f"{sub[-1] - full[-1]:+.3f}")
        per_run.append(row)
    print()
    print_table(["run", "train acc (all)", "val acc", "gap (all)", *[f"err @{k}" for k in SIZES]],
                per_run)
    print()
    print_table(["subset size", "final train acc |err| mean", "max", "gap signal differs",
                 "onset differs"],
                [[k, f"{np.mean(s['err']):.4f}", f"{np.max(s['err']):.4f}",
                  f"{s['flip']}/{len(runs)}", f"{s['onset']}/{len(runs)}"]
                 for k, s in stats.items()])
    print(f"\n(train sets here hold 240-3,200 examples; the gap threshold is {GAP:.0%}; a size "
          "larger than a run's training set is the whole set)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
