"""The LR scaling rule: how the LR should grow with the batch size.

``linear`` is Goyal et al. (2017), "Accurate, Large Minibatch SGD": multiply the LR by
``B / base``. ``sqrt`` keeps the gradient-noise scale constant (Krizhevsky 2014; Hoffer et
al. 2017): multiply by ``sqrt(B / base)``. ``none`` leaves the LR as given.
"""

from __future__ import annotations

import math
from typing import Literal

from batchlab.errors import SpecError


def scaled_lr(
    lr: float, batch_size: int, rule: Literal["none", "linear", "sqrt"], base_batch_size: int
) -> float:
    """Return ``lr * (batch_size / base_batch_size) ** p`` with p = 0, 1, 0.5 for the rule.

    ``lr`` is the LR tuned at ``base_batch_size``. Batch sizes must be >= 1 (ValueError);
    an unknown rule raises :class:`SpecError` naming ``train.scale_lr``.
    """
    if batch_size < 1 or base_batch_size < 1:
        raise ValueError(
            f"batch sizes must be >= 1, got batch_size={batch_size}, "
            f"base_batch_size={base_batch_size}"
        )
    ratio = batch_size / base_batch_size
    if rule == "none":
        return lr
    if rule == "linear":
        return lr * ratio
    if rule == "sqrt":
        # math.sqrt is correctly rounded, so a perfect-square ratio scales exactly.
        return lr * math.sqrt(ratio)
    raise SpecError(
        f"train.scale_lr = {rule!r} is not a scaling rule; use 'none', 'linear' or 'sqrt'."
    )
