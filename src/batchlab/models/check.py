"""One tiny forward pass before any run starts: does the model fit the data?

A model that cannot take the data's input shape, returns (N, C, 1) instead of (N, C), or has a
last layer of the wrong width would otherwise be stored as a ``failed`` run with torch's text
("Target 6 is out of bounds"), or, with too many outputs, train silently on wrong logits.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from batchlab.errors import ModelError

FACTORY_WIDTH = "a factory that takes a num_classes argument is given the right number"


def check_forward(model: nn.Module, batch: torch.Tensor, num_classes: int, name: str,
                  classes: str = "", width_fix: str = FACTORY_WIDTH,
                  regression: bool = False) -> None:
    """Run ``batch`` (a few examples, on the CPU) through ``model`` in eval mode without
    gradients; raise ModelError saying what to change unless it returns logits of shape
    ``(len(batch), num_classes)`` (for a ``regression``, ``num_classes`` is the number of target
    columns and the messages speak of targets). The model's parameters are not changed.
    ``classes``: where the class count comes from (said after it), ``width_fix``: the caller's
    way to get the width right."""
    wanted = "outputs of shape (batch, targets)" if regression else "logits of shape (batch, classes)"
    shape = tuple(batch.shape[1:])
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as err:  # the user's (or a zoo) model on this data: say what it was fed
        flat = f" (flat: {math.prod(shape)} features)" if len(shape) > 1 else ""
        raise ModelError(
            f"model '{name}' fails on a batch of this data: {type(err).__name__}: {err}. One "
            f"example has shape {shape}{flat}, so batches have shape (N, {', '.join(map(str, shape))}); "
            "make the model's first layer take that shape."
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ModelError(f"model '{name}' returns {type(out).__name__}, not a tensor; its forward "
                         f"must return {wanted} = (N, {num_classes}).")
    n = len(batch)
    if out.ndim != 2 or out.shape[0] != n:
        raise ModelError(
            f"model '{name}' returns an output of shape {tuple(out.shape)} for a batch of {n} "
            f"examples; batchlab needs {wanted} = ({n}, {num_classes}). "
            "Flatten or squeeze the output in forward (e.g. return out.flatten(1))."
        )
    if out.shape[1] != num_classes:
        plural = "" if num_classes == 1 else "s"
        has = (f"{num_classes} regression target{plural}" if regression
               else f"{num_classes} classes")
        raise ModelError(
            f"model '{name}' outputs {out.shape[1]} values per example but the data has "
            f"{has}{classes}; make its last layer output {num_classes} ({width_fix})."
        )
