"""Arrays from a NumPy .npz archive: ``x`` and ``y``, optionally ``x_test`` and ``y_test``.

``x`` is (N, ...) of any numeric dtype and becomes float32 as is (no scaling); a 3-D x
(N, H, W) gets a channel dimension, (N, 1, H, W). ``y`` holds integer class labels. When they
are not 0..K-1 (e.g. {3, 7}, which would otherwise build an 8-class output layer with six
classes that never occur), they are remapped to 0..K-1 in sorted order, over train and, when
used, test together, and the loader's notes say so with the mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from batchlab.data.fileio import data_path, fail, labels_tensor, no_test_split, reading
from batchlab.data.raw import RawData
from batchlab.spec import DataSpec

FIX = "save it with np.savez(path, x=inputs, y=labels[, x_test=..., y_test=...])"


def _read_arrays(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Those of the arrays ``names`` the archive at ``path`` has, and the names of all it has."""
    with reading(path, FIX):
        archive = np.load(path, allow_pickle=False)  # pickled objects could run code
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise fail(f"file '{path}'", "is a single .npy array, not an .npz archive", FIX)
        with archive:
            return {n: archive[n] for n in names if n in archive.files}, list(archive.files)


def _inputs(x: np.ndarray, where: str) -> torch.Tensor:
    if x.dtype.kind not in "biuf":
        raise fail(where, f"must be numeric, got dtype {x.dtype}", FIX)
    if x.ndim < 2 or x.shape[0] == 0:
        raise fail(where, f"must be (N, ...) with N > 0 examples, got shape {x.shape}", FIX)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise fail(where, "contains NaN or infinite values", "clean or impute them, then " + FIX)
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) greyscale images: add the channel dimension models expect
    return torch.from_numpy(x)


def _part(arrays: dict[str, np.ndarray], path: Path, xs: str, ys: str) -> tuple[torch.Tensor, ...]:
    x = _inputs(arrays[xs], f"array {xs!r} in '{path}'")
    y = labels_tensor(arrays[ys], f"array {ys!r} in '{path}'", FIX)
    if len(x) != len(y):
        raise fail(f"file '{path}'", f"has {len(x)} rows in {xs!r} but {len(y)} in {ys!r}", FIX)
    return x, y


def compact_labels(*parts: torch.Tensor) -> tuple[list[torch.Tensor], int, str | None]:
    """Labels remapped to 0..K-1 when the classes present are not exactly 0..K-1.

    Returns the (possibly remapped) parts, K and a note describing the mapping (None when the
    labels were already 0..K-1). The mapping is the sorted order of the labels present in any
    part, so train and test agree.
    """
    present = torch.unique(torch.cat(parts))
    k = len(present)
    if int(present[-1]) == k - 1:
        return list(parts), k, None
    shown = ", ".join(f"{int(v)}->{i}" for i, v in enumerate(present[:10]))
    more = f", ... ({k} classes)" if k > 10 else ""
    note = (f"the labels are not 0..K-1 ({k} classes, largest label {int(present[-1])}): remapped "
            f"to 0..{k - 1} in sorted order ({shown}{more}); predicted class i is the i-th "
            "smallest label")
    return [torch.searchsorted(present, p) for p in parts], k, note


def load_npz(spec: DataSpec, want_test: bool) -> RawData:
    """x/y (and x_test/y_test when ``want_test``) from the .npz at data.path."""
    path = data_path(spec, folder=False, fix="point data.path at an .npz file; " + FIX)
    names = ("x", "y", "x_test", "y_test") if want_test else ("x", "y")
    arrays, present = _read_arrays(path, names)
    for name in ("x", "y"):
        if name not in arrays:
            have = ", ".join(present) or "nothing"
            raise fail(f"file '{path}'", f"has no array {name!r} (it has: {have})", FIX)
    if want_test and not {"x_test", "y_test"} <= arrays.keys():
        why = f": '{path}' lacks the x_test and y_test arrays"
        raise no_test_split("npz", why, "save them into the archive")
    train_x, train_y = _part(arrays, path, "x", "y")
    if not want_test:
        (train_y,), num_classes, note = compact_labels(train_y)
        return RawData(train_x, train_y, num_classes, notes=_notes(path, note))
    test_x, test_y = _part(arrays, path, "x_test", "y_test")
    if test_x.shape[1:] != train_x.shape[1:]:
        shapes = tuple(test_x.shape[1:]), tuple(train_x.shape[1:])
        problem = f"has x_test examples of shape {shapes[0]} but x examples of shape {shapes[1]}"
        raise fail(f"file '{path}'", problem, FIX)
    (train_y, test_y), num_classes, note = compact_labels(train_y, test_y)
    return RawData(train_x, train_y, num_classes, test_x, test_y, notes=_notes(path, note))


def _notes(path: Path, note: str | None) -> tuple[str, ...]:
    return (f"'{path}': {note}",) if note else ()
