"""The optimizer factory and the per-step LR setter."""

from __future__ import annotations

from collections.abc import Iterable

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
    adam/adamw, nesterov for rmsprop) are ignored so one sweep can span optimizers.
    torch's default ``foreach=None`` is kept: it picks the fused-by-list path where supported.
    """
    # Only what requires grad: a frozen backbone (model.freeze) is not the optimizer's to
    # update, and weight decay or momentum state on it would be wasted memory and time.
    params = [p for p in params if p.requires_grad]
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
    # Unreachable through a validated TrainSpec; guards a new name added to the Literal only.
    raise ValueError(f"unknown optimizer {name!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the LR of every param group (runs every step, so it is a plain loop)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
