"""The optimizer factory and the per-step LR setter."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from batchlab.spec import TrainSpec


def build_optimizer(
    spec: TrainSpec, params: Iterable[torch.nn.Parameter], lr: float
) -> torch.optim.Optimizer:
    """Build ``spec.optimizer`` over those of ``params`` that require grad, with initial LR ``lr``.

    ``lr`` is passed separately because the caller decides it (scaled, then scheduled).
    Hyperparameters used: sgd - momentum, nesterov, weight_decay; adam - weight_decay
    (coupled L2, as torch's Adam does); adamw - weight_decay (decoupled); rmsprop -
    momentum, weight_decay. Fields an optimizer has no use for (momentum and nesterov for
    adam/adamw, nesterov for rmsprop) are ignored so one sweep can span optimizers;
    adagrad - weight_decay (coupled L2; it has no momentum, so momentum and nesterov are
    ignored too).
    torch's default ``foreach=None`` is kept: it picks the fused-by-list path where supported.
    """
    params = _trainable(params)
    wd = spec.weight_decay
    name = spec.optimizer
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=lr, momentum=spec.momentum, nesterov=spec.nesterov, weight_decay=wd
        )
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        # Pass weight_decay even when 0: AdamW's own default (0.01) would otherwise apply.
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=spec.momentum, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    # Unreachable through a validated TrainSpec; guards a new name added to the Literal only.
    raise ValueError(f"unknown optimizer {name!r}")


def _trainable(params: Iterable[Any]) -> list[Any]:
    """``params`` (tensors, or param-group dicts) without those that do not require grad: a
    frozen backbone (model.freeze) is not the optimizer's to update, and weight decay or
    momentum state on it would be wasted memory and time. Groups left empty are dropped."""
    out: list[Any] = []
    for item in params:
        if isinstance(item, dict):
            kept = [p for p in item["params"] if p.requires_grad]
            if kept:
                out.append({**item, "params": kept})
        elif item.requires_grad:
            out.append(item)
    return out


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the LR of every param group (runs every step, so it is a plain loop)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
