"""An independent plain PyTorch training loop: the judge of the judgement bench.

Written from scratch in ``bench/`` (it imports nothing from batchlab), so a bug shared with
batchlab's trainer cannot agree with itself: the ground truth, the suggestion's own score and
the LR-free optimizers' scores all come from this loop. A run is a pure function of
(case, lr, seed): the same arguments give the same numbers on one machine and thread count.

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _bench_data import BenchData
from _bench_models import build

#: bump when a change alters the numbers a run gives (it invalidates the cached ground truth)
VERSION = 1
EVALS = 10  # evaluations per run besides the one at step 0
LOSS_POINTS = 50  # training-loss samples kept per run (the diagnosis reads the curve's shape)
TRAIN_EVAL = 1000  # examples of the training set evaluated in eval mode

#: the optimizers of the design space: name -> (torch class, fixed keyword arguments)
OPTIMIZERS: dict[str, tuple[str, dict[str, Any]]] = {
    "sgd": ("SGD", {}),
    "momentum": ("SGD", {"momentum": 0.9}),
    "nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {"weight_decay": 0.01}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
}


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The schedule's multiplier of the base LR at ``step`` of ``steps`` (0-based):
    constant; step: x0.1 at 50 % and again at 75 % of the run; cosine: 5 % linear warm-up,
    then a cosine from 1 to 0 over the rest."""
    if schedule == "constant":
        return 1.0
    if schedule == "step":
        return 0.1 ** ((step >= steps // 2) + (step >= 3 * steps // 4))
    if schedule == "cosine":
        warm = max(1, steps // 20)
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
    raise ValueError(schedule)


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    """One of OPTIMIZERS, or an LR-free optimizer at its documented defaults (``lr`` is then
    the multiplier the schedule scales, 1.0 for Prodigy/D-Adaptation)."""
    if name in OPTIMIZERS:
        cls, kwargs = OPTIMIZERS[name]
        return getattr(torch.optim, cls)(params, lr=lr, **kwargs)
    if name == "prodigy":
        from prodigyopt import Prodigy
        return Prodigy(params, lr=lr)
    if name == "dadapt-adam":
        from dadaptation import DAdaptAdam
        return DAdaptAdam(params, lr=lr)
    if name == "sf-adamw":
        from schedulefree import AdamWScheduleFree
        return AdamWScheduleFree(params, lr=lr)
    if name == "sf-sgd":
        from schedulefree import SGDScheduleFree
        return SGDScheduleFree(params, lr=lr)
    raise ValueError(name)


#: LR-free optimizers: name -> (pip package, the LR to pass (its documented default), whether
#: the case's schedule applies on top: Prodigy and D-Adaptation are documented with an
#: annealing schedule; Schedule-Free replaces the schedule)
LR_FREE = {"prodigy": ("prodigyopt", 1.0, True), "dadapt-adam": ("dadaptation", 1.0, True),
           "sf-adamw": ("schedulefree", 0.0025, False), "sf-sgd": ("schedulefree", 1.0, False)}


@dataclass(frozen=True)
class Outcome:
    """How one run ended: the final validation metric (accuracy, or MSE for a regression; NaN
    when it diverged), and the series the diagnosis reads."""

    final: float
    val_loss: float
    diverged: bool
    seconds: float
    series: dict[str, dict[str, list[float]]]


def _evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
              regression: bool) -> tuple[float, float]:
    """(mean loss, accuracy or NaN) on (x, y) in eval mode, in chunks."""
    net.eval()
    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 1024):
            out = net(x[i:i + 1024])
            yb = y[i:i + 1024]
            if regression:
                total += F.mse_loss(out.squeeze(-1), yb, reduction="sum").item()
            else:
                total += F.cross_entropy(out, yb, reduction="sum").item()
                correct += int((out.argmax(1) == yb).sum())
    net.train()
    return total / len(x), (math.nan if regression else correct / len(x))


def train(data: BenchData, family: str, optimizer: str, lr: float, batch_size: int, steps: int,
          schedule: str, seed: int) -> Outcome:
    """Train ``family`` on ``data`` for ``steps`` steps of ``batch_size`` (a fresh shuffle
    each epoch, the last partial batch dropped) at base LR ``lr`` under ``schedule``."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    regression = data.regression
    net = build(family, data.input_shape, 1 if regression else data.classes)
    xt, yt = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    xv, yv = torch.from_numpy(data.x_val), torch.from_numpy(data.y_val)
    sub = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed))[:TRAIN_EVAL]
    opt = make_optimizer(optimizer, net.parameters(), lr)
    scheduled = LR_FREE.get(optimizer, (None, None, True))[2]
    free = hasattr(opt, "train") and hasattr(opt, "eval")  # Schedule-Free: eval at averaged weights
    gen = torch.Generator().manual_seed(seed + 10_000)
    per_epoch = len(xt) // batch_size
    order = torch.randperm(len(xt), generator=gen)
    # step and value only: epochs and examples follow from the step (a smaller cache file)
    series: dict[str, dict[str, list[float]]] = {
        k: {"step": [], "value": []} for k in ("train_loss", "val_loss", "val_acc", "train_eval_loss")}

    def put(name: str, step: int, value: float) -> None:
        s = series[name]
        s["step"].append(step)
        s["value"].append(float(f"{value:.4g}") if math.isfinite(value) else value)

    def evaluate(step: int) -> tuple[float, float]:
        if free:
            opt.eval()
        vl, va = _evaluate(net, xv, yv, regression)
        tl, _ = _evaluate(net, xt[sub], yt[sub], regression)
        if free:
            opt.train()
        put("val_loss", step, vl)
        put("train_eval_loss", step, tl)
        if not regression:
            put("val_acc", step, va)
        return vl, va

    if free:
        opt.train()
    net.train()
    evaluate(0)
    every = max(1, steps // EVALS)
    keep = max(1, steps // LOSS_POINTS)
    diverged = False
    for step in range(steps):
        k = step % per_epoch
        if k == 0 and step:
            order = torch.randperm(len(xt), generator=gen)
        idx = order[k * batch_size:(k + 1) * batch_size]
        factor = lr_factor(schedule, step, steps) if scheduled else 1.0
        for g in opt.param_groups:
            g["lr"] = lr * factor
        out = net(xt[idx])
        loss = F.mse_loss(out.squeeze(-1), yt[idx]) if regression else F.cross_entropy(out, yt[idx])
        value = loss.item()
        if step % keep == 0 or not math.isfinite(value):
            put("train_loss", step, value)
        if not math.isfinite(value):
            diverged = True
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % every == 0 or step + 1 == steps:
            evaluate(step + 1)
    if diverged:
        return Outcome(math.nan, math.nan, True, time.perf_counter() - t0, series)
    vl, va = series["val_loss"]["value"][-1], (series["val_acc"]["value"] or [math.nan])[-1]
    final = vl if regression else va
    if not math.isfinite(vl):
        return Outcome(math.nan, vl, True, time.perf_counter() - t0, series)
    return Outcome(final, vl, False, time.perf_counter() - t0, series)


def score(outcomes: list[Outcome], regression: bool) -> float:
    """Mean final metric over seeds, as "higher is better" (a regression's MSE negated);
    a diverged seed counts as -inf (never the best)."""
    vals = [(-o.final if regression else o.final) for o in outcomes]
    return float(np.mean(vals)) if all(math.isfinite(v) for v in vals) else -math.inf
