"""Capacity: a model too small for its data, told apart from a wrong LR by the sweep.

A training loss that levels off high says the model cannot fit the training set, or that the
LR is wrong. The sweep settles which: when the run's LR trains (its loss fell well below the
start), its loss has stopped falling, and no other LR of the same configuration ends lower,
the LR is not what holds it back: the model is too small for this data. A run judged alone has
nothing to rule the LR out with and is never given this finding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchlab.analysis import series as S
from batchlab.analysis.findings import KINDS, Finding, pct
from batchlab.analysis.loss import loss_curve
from batchlab.analysis.trend import tail_trend
from batchlab.store import RunRecord, Series

#: The standing a capacity finding replaces: "healthy" beside "too small" would contradict it.
STANDING = ("healthy", "below_best", "undertrained")


@dataclass(frozen=True)
class CapacityThresholds:
    """The named thresholds of the capacity check.

    trains_drop: the run's LR trains when its training loss fell at least this fraction (0.2)
        below the start (the diagnosis calls < 5 % "LR too small"; 20 % is clearly learning).
    flat_window, flat_fall: the loss has stopped falling when a line fitted to the last
        ``flat_window`` (0.3) of training falls less than ``flat_fall`` (0.05 = 5 %) of its level,
        or by no more than the 95 % half-width of that fall (noise, as ``not_converged`` judges)
        when the window holds at least ``flat_min_points`` (5) evaluations: over 3 or 4 points
        the half-width is so wide that a run still learning reads as flat.
    high_train_acc: a final train accuracy below this (0.9) is high loss for a classifier: a
        model with room to spare fits (nearly) all of its training set given the steps ...
    high_loss_fraction: ... and without accuracy, a final training loss above this fraction
        (0.25) of the initial one.
    no_better: no LR does better when none ends with a training loss below this fraction
        (0.05 = 5 %, the seed-to-seed spread of a final loss) under this run's.
    """

    trains_drop: float = 0.2
    flat_window: float = 0.3
    flat_fall: float = 0.05
    flat_min_points: int = 5
    high_train_acc: float = 0.9
    high_loss_fraction: float = 0.25
    no_better: float = 0.05


def _family(config: Mapping[str, Any]) -> str:
    """A run's configuration without its LR and seed: the runs whose LRs are compared."""
    train = {k: v for k, v in dict(config.get("train", {})).items() if k not in ("lr", "seed")}
    return json.dumps({**config, "train": train}, sort_keys=True, default=str)


def _has_lr(config: Mapping[str, Any]) -> bool:
    lr = dict(config.get("train", {})).get("lr")
    return isinstance(lr, int | float) and not isinstance(lr, bool)


def _final_loss(metrics: Mapping[str, Series]) -> float:
    curve = loss_curve(metrics)
    return float(curve.value[-1]) if len(curve.value) else math.nan


def check_too_small(metrics: Mapping[str, Series], lr: Any, rivals: Sequence[float], n_lrs: int,
                    th: CapacityThresholds) -> Finding | None:
    """The capacity finding for one run: its LR trains, its loss is flat and high, and no rival
    (the final training losses of the other LRs of its configuration, ``n_lrs`` LRs in all) ends
    lower by more than ``no_better``."""
    curve = loss_curve(metrics)
    if len(curve.value) < 3 or not curve.initial > 0:
        return None
    final, initial = float(curve.value[-1]), curve.initial
    if float(curve.value.min()) > (1 - th.trains_drop) * initial:
        return None  # the LR does not train: that is the LR's finding, not the model's
    trend = tail_trend(S.get(metrics, "train_eval_loss"), th.flat_window)
    noise = trend is not None and trend.n >= th.flat_min_points and trend.fall <= trend.fall_halfwidth
    if trend is None or (trend.start > 0 and trend.fall / trend.start >= th.flat_fall and not noise):
        return None  # still falling, by more than its own noise: train longer first
    acc = S.finite(S.get(metrics, "train_acc")).value
    if acc.size:
        if float(acc[-1]) >= th.high_train_acc:
            return None
        level = f"{final:.3g} (train acc {pct(float(acc[-1]))})"
    elif final <= th.high_loss_fraction * initial:
        return None
    else:
        level = f"{final:.3g}, {pct(final / initial)} of its start"
    if any(r < (1 - th.no_better) * final for r in rivals if math.isfinite(r)):
        return None
    msg = (f"model too small: training loss plateaus high at {level} at an LR that trains "
           f"(lr {lr}: {initial:.3g} -> {final:.3g}), and no LR in the sweep does better "
           f"({n_lrs} LRs): the model is too small for this data; try a wider or deeper model")
    numbers = {"final_train_loss": final, "initial_loss": initial, "lrs": float(n_lrs)}
    if acc.size:
        numbers["train_acc"] = float(acc[-1])
    return Finding("model_too_small", msg, None, None, numbers)


def add_capacity(runs: Sequence[tuple[RunRecord, Mapping[str, Series]]],
                 findings: Sequence[list[Finding]],
                 th: CapacityThresholds = CapacityThresholds()) -> list[list[Finding]]:  # noqa: B008
    """``findings`` (one list per run) with the capacity finding added to each run it applies
    to, in place of its standing (see :data:`STANDING`). Only runs whose configuration was
    trained at 2+ LRs are judged; diverged and pruned runs are skipped (and rank no rival), a
    collapsed run is not judged (its high loss is the collapse's), and
    so are runs whose config records no LR (a tracked run's may not): an unknown LR can neither
    be said to train nor count as another LR tried."""
    fams: dict[str, list[int]] = {}
    for i, (record, _) in enumerate(runs):
        if record.status not in ("diverged", "pruned") and _has_lr(record.config):
            fams.setdefault(_family(record.config), []).append(i)
    out = [list(f) for f in findings]
    for members in fams.values():
        lrs = {runs[i][0].config.get("train", {}).get("lr") for i in members}
        if len(lrs) < 2:
            continue
        finals = {i: _final_loss(runs[i][1]) for i in members}
        for i in members:
            lr = runs[i][0].config.get("train", {}).get("lr")
            if any(f.kind == "collapsed" for f in out[i]):
                # a loss back at ln C is the collapse (its own finding), not the model's limit:
                # "an LR that trains (lr 0.1: 2.3 -> 2.3)" beside "fell to chance" contradicts it
                continue
            rivals = [finals[j] for j in members if j != i]
            found = check_too_small(runs[i][1], lr, rivals, len(lrs), th)
            if found is not None:
                kept = [f for f in out[i] if f.kind not in STANDING]
                out[i] = sorted([*kept, found], key=lambda f: KINDS.index(f.kind))
    return out
