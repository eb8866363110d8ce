"""Gradient accumulation: one optimizer update over a batch that memory holds only in parts.

The batch is split into micro-batches of at most ``micro`` examples; each is forwarded and
backpropagated on its own, so activations for ``micro`` examples are alive at a time, and the
gradients add up in ``.grad``. Each micro-batch's mean loss is weighted by its share of the
batch (``len(part) / len(batch)``), so the accumulated gradient is that of the mean loss over
the *whole* batch — the full-batch update — including a last, partial batch of an epoch whose
last micro-batch is smaller still. The returned loss is the same weighted sum: the full-batch
mean loss, what the recorder stores per step.

Exact for losses that are a mean over examples (cross-entropy, MSE: the ``RunInputs.loss_fn``
contract) and models whose examples do not interact. BatchNorm in training mode normalises
each micro-batch with its own statistics, so with BatchNorm the update is *not* the
full-batch one (and the running statistics are updated once per micro-batch); dropout draws
its masks per micro-batch, which changes the random stream but not the expectation.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

from batchlab.train.inputs import LossFn
from batchlab.train.precision import Precision

#: BatchNorm's batch statistics get noisy below this many examples per forward pass (Wu & He
#: 2018, Group Normalization: ImageNet error rises steeply below 16 per GPU); max-batch's
#: advice and the diagnosis warn below it.
BN_MIN_BATCH = 16


def micro_slices(n: int, micro: int, min_part: int = 1) -> list[slice]:
    """Consecutive slices covering ``range(n)`` with at most ``micro`` elements each (n, micro >= 1).

    A last slice shorter than ``min_part`` joins the one before it (which then holds up to
    ``micro + min_part - 1``): a model whose BatchNorm trains refuses a forward pass of one
    example, which a partial last batch would otherwise leave (8 = 2 x 3 + 2 is fine, but the
    epoch's last batch of 3 in parts of 2 would end with 1)."""
    parts = [slice(i, min(i + micro, n)) for i in range(0, n, micro)]
    if len(parts) > 1 and parts[-1].stop - parts[-1].start < min_part:
        parts[-2:] = [slice(parts[-2].start, n)]
    return parts


def accumulate_gradients(model: nn.Module, loss_fn: LossFn, xb: torch.Tensor, yb: torch.Tensor,
                         micro: int, precision: Precision,
                         hold: Callable[[], AbstractContextManager[object]] | None = None,
                         min_part: int = 1) -> torch.Tensor:
    """Backpropagate the mean loss over (xb, yb) in micro-batches of at most ``micro`` examples
    (none under ``min_part``, see ``micro_slices``: 2 for a model whose BatchNorm trains).

    ``hold``: a context that every micro-batch but the last runs in (DDP's ``no_sync``: the
    gradients are averaged across processes once, after the last one, not per micro-batch).

    Gradients are *added* to the parameters' ``.grad`` (zero them before, step after). Forward
    passes run under ``precision.autocast()`` and backward through ``precision.backward``.
    Returns the full-batch mean loss as a detached float32 0-d tensor on the batch's device
    (never synchronised with the host, see ``train.recorder``).
    """
    n = len(yb)
    if micro >= n:  # no split (the default): the plain step, without per-part bookkeeping
        with precision.autocast():
            loss = loss_fn(model(xb), yb)
        precision.backward(loss)
        return loss.detach().float()
    total = torch.zeros((), device=yb.device)
    parts = micro_slices(n, micro, min_part)
    for part in parts:
        with hold() if hold is not None and part is not parts[-1] else nullcontext():
            with precision.autocast():
                loss = loss_fn(model(xb[part]), yb[part]) * ((part.stop - part.start) / n)
            precision.backward(loss)
        total += loss.detach().float()
    return total


def trains_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer that normalises with the batch's statistics in
    training (any but those a frozen backbone keeps in eval mode): such a layer refuses a
    batch of a single example wherever a channel holds one value, so the loop never gives it
    one (``data.epoch``)."""
    # here, not at the top: batchlab.models imports the model zoo (~0.1 s), which what imports
    # this module for the step (the probes, the CLI) need not pay
    from batchlab.models.freeze import kept_in_eval

    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and not kept_in_eval(m)
               for m in model.modules())


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer: its statistics come from each micro-batch, so
    the diagnosis warns when the per-step (micro-)batch is small."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
