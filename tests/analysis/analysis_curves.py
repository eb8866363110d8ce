"""Hand-made metric series and run records with known answers (no training)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from batchlab.store import RunRecord, Series

N_TRAIN = 320


def series(values: Sequence[float], steps: Sequence[float], *, steps_per_epoch: int = 10,
           seconds_per_step: float = 0.01, n_train: int = N_TRAIN) -> Series:
    """A Series at the given steps; epoch, examples and wall time follow from the step."""
    step = np.asarray(steps, dtype=np.int64)
    epoch = step / steps_per_epoch
    return Series(step, np.asarray(values, dtype=float), epoch,
                  np.round(epoch * n_train).astype(np.int64), step * seconds_per_step)


def per_epoch(f: Callable[[np.ndarray], np.ndarray], epochs: int = 20, steps_per_epoch: int = 10,
              **kw: Any) -> Series:
    """An evaluation series: ``f(epoch)`` at epochs 0..epochs."""
    e = np.arange(epochs + 1, dtype=float)
    return series(f(e), e * steps_per_epoch, steps_per_epoch=steps_per_epoch, **kw)


def per_step(f: Callable[[np.ndarray], np.ndarray], steps: int = 200, steps_per_epoch: int = 10,
             **kw: Any) -> Series:
    """A per-step series: ``f(step)`` at steps 1..steps."""
    s = np.arange(1, steps + 1, dtype=float)
    return series(f(s), s, steps_per_epoch=steps_per_epoch, **kw)


def healthy_metrics(epochs: int = 20) -> dict[str, Series]:
    """A run that learns fast and settles: val acc 0.97, train acc 0.99, losses flat at the end."""
    return {
        "val_acc": per_epoch(lambda e: 0.97 * (1 - np.exp(-e / 2)), epochs),
        "train_acc": per_epoch(lambda e: 0.99 * (1 - np.exp(-e / 2)), epochs),
        "val_loss": per_epoch(lambda e: 0.1 + 2.2 * np.exp(-e / 2), epochs),
        "train_eval_loss": per_epoch(lambda e: 0.05 + 2.25 * np.exp(-e / 2), epochs),
        "train_loss": per_step(lambda s: 0.05 + 2.25 * np.exp(-s / 20), epochs * 10),
    }


def record(run_id: str, train: dict[str, Any], *, status: str = "completed",
           summary: dict[str, Any] | None = None, point: dict[str, Any] | None = None) -> RunRecord:
    """A stored-run record with the given train config (data/model fixed)."""
    config = {"data": {"name": "digits"}, "model": {"name": "mlp"},
              "train": {"lr": 0.01, "batch_size": 32, "seed": 0, "scale_lr": "none",
                        "schedule": {"name": "constant"}, **train}}
    # by field name, so fields the store adds later default to None instead of breaking this
    values: dict[str, Any] = dict.fromkeys((f.name for f in fields(RunRecord)), None)
    values.update(id=run_id, status=status, config=config, environment={}, created=0.0,
                  progress_step=0, summary=summary or {}, point=point or {})
    return RunRecord(**values)
