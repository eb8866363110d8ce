"""Arrays from a NumPy .npz archive: ``x`` and ``y``, optionally ``x_test`` and ``y_test``.

``x`` is (N, ...) of any numeric dtype and becomes float32 as is (no scaling); a 3-D x
(N, H, W) gets a channel dimension, (N, 1, H, W). ``y`` holds class labels 0..K-1 and
num_classes is the largest label (over train and, when used, test) plus one.
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
        return RawData(train_x, train_y, int(train_y.max()) + 1)
    test_x, test_y = _part(arrays, path, "x_test", "y_test")
    if test_x.shape[1:] != train_x.shape[1:]:
        shapes = tuple(test_x.shape[1:]), tuple(train_x.shape[1:])
        problem = f"has x_test examples of shape {shapes[0]} but x examples of shape {shapes[1]}"
        raise fail(f"file '{path}'", problem, FIX)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    return RawData(train_x, train_y, num_classes, test_x, test_y)
