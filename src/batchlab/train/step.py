"""One optimizer update, chosen once per run: ``make_train_step(...)(xb, yb) -> loss``.

The general update zeroes the gradients, forwards and backpropagates the batch in micro-batches
under the run's precision (``train.accumulate``) and steps the optimizer through the
precision's scaler. With the defaults (fp32, no accumulation) all of that reduces to the
hand-written three lines, and the run uses exactly those: the wrappers' calls and branches
cost ~1 % of a sweep of small models, where a step takes half a millisecond. Both give the
same update bit for bit (``tests/train/test_step.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
from torch import nn

from batchlab.train.accumulate import accumulate_gradients, trains_batchnorm
from batchlab.train.inputs import LossFn
from batchlab.train.precision import Precision

TrainStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_train_step(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                    batch_size: int, micro: int, precision: Precision,
                    hold: Callable[[], AbstractContextManager[object]] | None = None) -> TrainStep:
    """The update for batches of at most ``batch_size`` examples, forwarded ``micro`` at a
    time (``hold``: a context every micro-batch but the last runs in, as DDP's ``no_sync``,
    see ``accumulate_gradients``). The returned function takes one (inputs, targets) batch,
    updates the parameters and returns the batch's mean loss, detached (a 0-d tensor on the
    batch's device in the loss's own dtype, float32 under autocast; never synchronised with
    the host)."""
    if precision.name == "fp32" and precision.scaler is None and micro >= batch_size:
        def plain_step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            return loss.detach()
        return plain_step
    # a BatchNorm that trains refuses one example: no micro-batch of a partial batch holds 1
    min_part = 2 if micro < batch_size and trains_batchnorm(model) else 1

    def step(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = accumulate_gradients(model, loss_fn, xb, yb, micro, precision, hold, min_part)
        precision.step(optimizer)
        return loss
    return step
