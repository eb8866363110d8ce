"""What every format loader returns before splitting and normalisation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from batchlab.spec import DataSpec


@dataclass(frozen=True)
class RawData:
    """A format's examples as loaded: float32 inputs (N, *shape), int64 labels (N,).

    ``test_x``/``test_y`` are the format's own test split; loaders fill them only when asked
    (``want_test``), so a run that validates on a held-out part never reads the test files.
    ``notes``: what the loader changed that the user should be told (e.g. labels remapped).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    num_classes: int
    test_x: torch.Tensor | None = None
    test_y: torch.Tensor | None = None
    notes: tuple[str, ...] = ()


# A loader gets the spec and whether the test split is wanted. When it is wanted but the data has
# none, the loader raises DataError (its message knows how to fix that for this format).
Loader = Callable[[DataSpec, bool], RawData]
