"""Class labels as users save them, turned into what cross-entropy needs: 0..K-1, K >= 2.

Shared by the ``.npz`` loader and the Python API's in-memory arrays, so a file and the same
arrays passed to ``bl.sweep`` are read alike:

- labels that are not exactly 0..K-1 ({3, 7}, or the common binary {-1, 1}) are remapped to
  0..K-1 in sorted order, with a note giving the mapping (``compact_labels``);
- one-hot labels, an integer (N, K) array of 0s and 1s with exactly one 1 per row, are the
  class indices ``y.argmax(1)``, with a note (``one_hot_indices``);
- a single class is refused (``refuse_single_class``): a classifier of one class reaches
  loss 0 and accuracy 1 by always answering it, which reads as a perfect run.
"""

from __future__ import annotations

import numpy as np
import torch

from batchlab.errors import DataError

#: the one fix for class labels saved as names ('cat', 'dog'): number them 0..K-1, label i
#: being names[i] (the .npz reader and the Python API both say it)
NUMBER_NAMES = "names, y = np.unique(y, return_inverse=True)"


def compact_labels(*parts: torch.Tensor) -> tuple[list[torch.Tensor], int, str | None]:
    """Labels remapped to 0..K-1 when the classes present are not exactly 0..K-1.

    Returns the (possibly remapped) parts, K and a note describing the mapping (None when the
    labels were already 0..K-1). The mapping is the sorted order of the labels present in any
    part, so train and test (or validation) agree. Negative labels are remapped like any other.
    """
    present = torch.unique(torch.cat(parts))  # sorted
    k = len(present)
    low, high = int(present[0]), int(present[-1])
    if low == 0 and high == k - 1:  # distinct integers from 0 to k-1: exactly 0..k-1
        return list(parts), k, None
    shown = ", ".join(f"{int(v)}->{i}" for i, v in enumerate(present[:10]))
    more = f", ... ({k} classes)" if k > 10 else ""
    note = (f"the labels are not 0..K-1 ({k} classes, smallest {low}, largest {high}): remapped "
            f"to 0..{k - 1} in sorted order ({shown}{more}); predicted class i is the i-th "
            "smallest label")
    return [torch.searchsorted(present, p) for p in parts], k, note


def is_one_hot(y: np.ndarray | torch.Tensor) -> bool:
    """Whether ``y`` is integer (or bool) one-hot labels: (N, K) with K >= 2, every value 0 or
    1, exactly one 1 per row. Float arrays are not: the Python API reads them as regression
    targets, and an .npz's 2-D floats are a regression under data.task = 'auto'."""
    if isinstance(y, torch.Tensor):
        integer = not (torch.is_floating_point(y) or torch.is_complex(y))
    else:
        y = np.asarray(y)
        integer = y.dtype.kind in "biu"  # not floats, strings or objects
    if not integer or y.ndim != 2 or y.shape[1] < 2 or len(y) == 0:
        return False
    t = torch.as_tensor(y).to(torch.int64)
    return bool(((t == 0) | (t == 1)).all() and (t.sum(1) == 1).all())


def one_hot_indices(y: np.ndarray | torch.Tensor, where: str) -> tuple[torch.Tensor, str]:
    """The class indices of one-hot labels (``y.argmax(1)``, int64) and a note saying so."""
    t = torch.as_tensor(np.asarray(y)) if not isinstance(y, torch.Tensor) else y
    k = t.shape[1]
    note = (f"{where} is one-hot ({len(t)} x {k}, one 1 per row): read as the class labels "
            f"y.argmax(1), {k} classes")
    return t.to(torch.int64).argmax(1), note


def refuse_single_class(num_classes: int, label: int | str, where: str,
                        regression_fix: str | None) -> None:
    """DataError when class labels hold fewer than 2 classes.

    ``label``: the one class there is, an integer label or an image folder's class name (a
    str); ``regression_fix``: how to fit the values as a regression instead, None where the
    format holds class labels only."""
    if num_classes >= 2:
        return
    if isinstance(label, str):  # an image folder's class is the name of its sub-folder
        only = f"every image is in class folder '{label}'"
        add = "Add a sub-folder of images for each other class beside it"
    else:
        only, add = f"every label is {label}", "Add examples of the other classes"
    regression = f"; for a regression, {regression_fix}" if regression_fix else ""
    raise DataError(
        f"{where} has a single class ({only}), and a classifier needs at least 2 classes: with "
        f"one it reaches loss 0 and accuracy 1 by always answering it, and learns nothing. "
        f"{add}{regression}."
    )
