"""A small hand-built sweep with known answers, for the answer-first tests (issue 22).

Batch 16/64/256 x LR 0.1/0.01/0.001 x 2 seeds, 10 classes. LR 0.1 collapses to chance at batch
16 and 64 (val acc 70% at epoch 2, back at 10% from epoch 3); one of those runs was pruned as
hopeless at epoch 4. Batch 256 at LR 0.1 is the best (96%); at LR 0.001 every batch is slow.
Per step, time grows with the batch, per epoch it falls: batch 256 reaches the target first.
"""

from __future__ import annotations

import math

import numpy as np
from analysis_curves import record, series

N, EPOCHS = 1024, 10
BATCHES, LRS = (16, 64, 256), (0.1, 0.01, 0.001)
FINAL = {(256, 0.1): 0.96, (16, 0.01): 0.95, (64, 0.01): 0.94, (256, 0.01): 0.90,
         (16, 0.001): 0.90, (64, 0.001): 0.85, (256, 0.001): 0.70}
COLLAPSED = {(16, 0.1), (64, 0.1)}
PRUNED = (16, 0.1, 0)  # (batch, lr, seed) of the run pruned as hopeless
REASON = ("collapsed to chance: val acc 0.1 (chance 1/10 = 0.1) at or below 0.25 for 2 "
          "evaluations (epoch 3 to 4), after reaching 0.7 at epoch 2")


def run(b: int, lr: float, seed: int):
    spe = math.ceil(N / b)
    kw = {"steps_per_epoch": spe, "seconds_per_step": 0.002 + 0.0001 * b, "n_train": N}
    epochs = np.arange(EPOCHS + 1, dtype=float)
    status, error, summary = "completed", None, {"num_classes": 10}
    if (b, lr) in COLLAPSED:
        val = np.where(epochs < 1, 0.1, np.where(epochs < 3, 0.35 * epochs, 0.1))
        loss = np.where((epochs >= 1) & (epochs < 3), 1.0, math.log(10))
        if (b, lr, seed) == PRUNED:
            epochs, val, loss = epochs[:5], val[:5], loss[:5]
            status, error = "pruned", REASON
            summary["pruned_at_step"] = 4 * spe
        train = val
    else:
        rise = (1 - np.exp(-epochs / 2)) / (1 - math.exp(-EPOCHS / 2))
        val = (FINAL[b, lr] + (0.002 if seed else -0.002)) * rise
        train = val + 0.01 * rise
        loss = 0.2 + 2.1 * (1 - rise)
    steps = epochs * spe
    metrics = {"val_acc": series(val, steps, **kw), "train_acc": series(train, steps, **kw),
               "val_loss": series(loss, steps, **kw), "train_eval_loss": series(loss - 0.05, steps, **kw)}
    rec = record(f"b{b}-lr{lr}-s{seed}", {"batch_size": b, "lr": lr, "seed": seed}, status=status,
                 summary=summary, point={"train.batch_size": b, "train.lr": lr, "train.seed": seed})
    if error:
        rec = rec.__class__(**{**rec.__dict__, "error": error})
    return rec, metrics


def sweep():
    return [run(b, lr, s) for b in BATCHES for lr in LRS for s in (0, 1)]
