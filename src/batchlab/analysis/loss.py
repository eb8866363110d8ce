"""The views of a run's training loss that the diagnoses share.

Two sources exist: per-step ``train_loss`` (every update, minibatch noise, in train mode) and
``train_eval_loss`` (a fixed training subset in eval mode at each evaluation, comparable to the
validation loss). Each view says which it prefers and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from batchlab.analysis import series as S
from batchlab.store import Series

#: The initial per-step loss is the median of this many first steps, so one odd first batch
#: does not set the baseline of "exploding" and "lr_too_small".
INITIAL_STEPS = 10
#: ... but only of the steps before the loss first exceeds this multiple of the very first
#: loss (the untrained model's, logged before any update), or falls below the first over it:
#: minibatch noise at initialisation moves the loss by tens of percent, so doubling within a
#: few steps is training going wrong and halving is learning, and a median over those steps
#: would already include the blow-up, or the learning (a judgement-bench run of Adam at LR 0.1
#: on breast cancer, its loss logged every 9 steps, went from 0.72 to 0.00 at step 9 and was
#: said to explode from an "initial" 0.36).
EARLY_RISE = 2.0
#: Per-step losses are averaged in this many blocks before looking for the lowest loss: the
#: minimum of raw minibatch losses is a lucky batch, not the model's loss.
LOSS_BLOCKS = 50


@dataclass(frozen=True)
class LossCurve:
    """The training loss over training, as evaluated (or block-averaged per-step) points, and
    the loss of the untrained model."""

    step: np.ndarray
    epoch: np.ndarray
    value: np.ndarray
    initial: float


def initial_loss(train_loss: Series) -> float:
    """The loss before training went wrong: the median of the finite per-step losses of the
    first :data:`INITIAL_STEPS` steps, cut before the first that exceeds :data:`EARLY_RISE` x the
    first or falls below the first / :data:`EARLY_RISE` (NaN if there is none).

    Counted in steps, not in points: a loss logged every 50 steps (a tracked loop, an imported
    log) has its first ten points spread over 500 steps of learning, whose median is no
    initial loss (the judgement bench's sampled runs quoted 0.13 for a loss that began at 2.3).
    """
    f = S.finite(train_loss)
    if not len(f.value):
        return float("nan")
    v = f.value[: max(1, int(np.count_nonzero(f.step < f.step[0] + INITIAL_STEPS)))]
    moved = (np.flatnonzero((v > EARLY_RISE * v[0]) | (v < v[0] / EARLY_RISE)) if v[0] > 0
             else np.zeros(0, np.int64))
    return float(np.median(v[: moved[0]] if moved.size else v))


def loss_curve(metrics: Mapping[str, Series]) -> LossCurve:
    """The training loss curve: ``train_eval_loss`` (eval mode, no minibatch noise) when it has
    2+ finite points, else per-step ``train_loss`` averaged in :data:`LOSS_BLOCKS` blocks.

    ``initial`` is the first evaluation (the untrained model at step 0) or, per step,
    :func:`initial_loss` (the first block already includes learning).
    """
    ev = S.finite(S.get(metrics, "train_eval_loss"))
    if len(ev.value) >= 2:
        return LossCurve(ev.step.astype(float), ev.epoch, ev.value, float(ev.value[0]))
    train_loss = S.get(metrics, "train_loss")
    st = S.finite(train_loss)
    if not len(st.value):
        return LossCurve(np.zeros(0), np.zeros(0), np.zeros(0), float("nan"))
    blocks = np.array_split(np.arange(len(st.value)), min(LOSS_BLOCKS, len(st.value)))
    return LossCurve(np.array([st.step[b].mean() for b in blocks]),
                     np.array([st.epoch[b].mean() for b in blocks]),
                     np.array([st.value[b].mean() for b in blocks]), initial_loss(train_loss))


def finest_loss(metrics: Mapping[str, Series]) -> tuple[Series, float]:
    """The finest training-loss series there is and its initial value: per-step ``train_loss``
    (initial: :func:`initial_loss`), else ``train_eval_loss`` (initial: the
    step-0 evaluation of the untrained model)."""
    train_loss = S.get(metrics, "train_loss")
    if len(S.finite(train_loss).value):
        return train_loss, initial_loss(train_loss)
    ev = S.finite(S.get(metrics, "train_eval_loss"))
    return ev, float(ev.value[0]) if len(ev.value) else float("nan")
