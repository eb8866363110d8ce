"""Arrays from a NumPy .npz archive: ``x`` and ``y``, optionally ``x_test`` and ``y_test``.

``x`` is (N, ...) of any numeric dtype and becomes float32 as is (no scaling); a 3-D x
(N, H, W) gets a channel dimension, (N, 1, H, W).

``data.task`` says what ``y`` holds. ``"classification"``: integer class labels (floats that are
all whole numbers are accepted). When they are not 0..K-1 (e.g. {3, 7}, which would otherwise
build an 8-class output layer with six classes that never occur, or {-1, 1}), they are
remapped to 0..K-1 in sorted order, over train and, when used, test together, and the loader's
notes say so with the mapping. Integer one-hot labels (N, K) are read as ``y.argmax(1)``, with a
note. A single class is refused (see ``batchlab.data.labels``). ``"regression"``: numeric
targets (N,) or (N, k), kept as float32 (integers too), ``num_classes`` 0; the spec path fits
them with MSE. ``"auto"`` (the default): a regression when ``y`` (or ``y_test``) is 2-D and not
integer one-hot, or holds floats that are not all whole numbers, else a classification (a note
says so when float targets were read as class labels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from batchlab.data.fileio import (
    data_path,
    fail,
    labels_tensor,
    no_test_split,
    reading,
    regression_targets,
)
from batchlab.data.labels import (
    NUMBER_NAMES,
    compact_labels,
    is_one_hot,
    one_hot_indices,
    refuse_single_class,
)
from batchlab.data.raw import RawData
from batchlab.spec import DataSpec

FIX = "save it with np.savez(path, x=inputs, y=labels[, x_test=..., y_test=...])"
# how an .npz (a zip archive) or a lone .npy array starts; anything else np.load takes for a
# pickle and refuses with advice about allow_pickle, which is wrong for a CSV or text file
_NPZ_MAGIC, _NPY_MAGIC = b"PK", b"\x93NUMPY"
REGRESSION_FIX = "save it with np.savez(path, x=inputs, y=targets[, x_test=..., y_test=...])"


def _read_arrays(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Those of the arrays ``names`` the archive at ``path`` has, and the names of all it has."""
    with reading(path, FIX):
        with path.open("rb") as fh:
            head = fh.read(len(_NPY_MAGIC))
        if not head.startswith((_NPZ_MAGIC, _NPY_MAGIC)):
            raise fail(f"file '{path}'", "is not a NumPy .npz archive (neither a zip archive nor "
                       "a .npy array: a CSV or other text file?)", "load it into arrays (np.loadtxt, "
                       "pandas) and " + FIX)
        archive = np.load(path, allow_pickle=False)  # pickled objects could run code
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise fail(f"file '{path}'", "is a single .npy array, not an .npz archive", FIX)
        with archive:
            return {n: _array(archive, n, path) for n in names if n in archive.files}, \
                list(archive.files)


def _array(archive: np.lib.npyio.NpzFile, name: str, path: Path) -> np.ndarray:
    """One array of the archive; an object array (strings or mixed values from pandas) is a
    DataError saying how to save numbers instead: loading it would unpickle, which runs code."""
    try:
        return archive[name]
    except ValueError as err:
        if "allow_pickle" not in str(err):
            raise
        raise fail(f"array {name!r} in '{path}'", "holds Python objects (dtype object: strings or "
                   "mixed values, as pandas gives them), which are not read because loading them "
                   "could run code", f"save numbers instead: class names numbered with "
                   f"{NUMBER_NAMES}, inputs as x.astype('float32')") from None


def _inputs(x: np.ndarray, where: str) -> torch.Tensor:
    if x.dtype.kind not in "biuf":
        raise fail(where, f"must be numeric, got dtype {x.dtype}", FIX)
    if x.ndim == 1:  # one number per example: a feature column, not N examples of nothing
        raise fail(where, f"is 1-D, shape {x.shape}, but must be (N, features, ...)",
                   "for one feature per example reshape it, x.reshape(-1, 1), then " + FIX)
    if x.ndim < 2 or x.shape[0] == 0:
        raise fail(where, f"must be (N, ...) with N > 0 examples, got shape {x.shape}", FIX)
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise fail(where, "contains NaN or infinite values", "clean or impute them, then " + FIX)
    if x.ndim == 3:
        x = x[:, None]  # (N, H, W) greyscale images: add the channel dimension models expect
    return torch.from_numpy(x)


def _whole(y: np.ndarray) -> bool:
    """Whether every value of ``y`` is a whole number (integers always are)."""
    return y.dtype.kind != "f" or bool(np.all(np.isfinite(y)) and np.all(y == np.round(y)))


def _label_column(y: np.ndarray) -> bool:
    """Whether ``y`` is integers of shape (N, 1): class labels kept as a column, as Keras's
    ``cifar10.load_data()`` and ``df[["label"]].values`` give them, not one regression target."""
    return y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "biu"


def infer_task(*targets: np.ndarray) -> str:
    """``data.task = "auto"``'s reading of the target arrays: "regression" when any is 2-D
    (integer one-hot labels and an integer (N, 1) column excepted: they are classes) or holds
    floats that are not all whole numbers, else "classification"."""
    if any((y.ndim == 2 and not is_one_hot(y) and not _label_column(y)) or not _whole(y)
           for y in targets):
        return "regression"
    return "classification"


def _float_one_hot(y: np.ndarray) -> bool:
    """Whether ``y`` is float one-hot rows (Keras's ``to_categorical`` gives float32)."""
    return y.dtype.kind == "f" and y.ndim == 2 and bool(np.isin(y, (0, 1)).all()) \
        and is_one_hot(y.astype(np.int64))


def _shape_notes(x: np.ndarray, y: np.ndarray, task: str) -> list[str]:
    """What the arrays' layout suggests the user meant otherwise: channels-last images
    (models read (N, C, H, W)) and float one-hot labels fitted as a regression."""
    notes = []
    if x.ndim == 4 and x.shape[3] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        notes.append(f"array 'x' is {x.shape}, which looks like channels-last images (N, H, W, "
                     f"C); models read (N, C, H, W), so a conv net sees {x.shape[1]} channels "
                     f"of {x.shape[2]} x {x.shape[3]} pixels: save x.transpose(0, 3, 1, 2)")
    if task == "regression" and _float_one_hot(y):
        notes.append(f"array 'y' is float one-hot ({y.shape[0]} x {y.shape[1]}, one 1 per row), "
                     f"fitted as a regression of {y.shape[1]} values with MSE (no accuracy); for "
                     "class labels save y.argmax(1) (or integer one-hot, y.astype(int))")
    return notes


def _targets(y: np.ndarray, where: str, task: str, notes: list[str], name: str) -> torch.Tensor:
    """``y`` as the ``task`` reads it: int64 class labels (any integers: the caller remaps them
    to 0..K-1; one-hot rows become their index, noted in ``notes``) or float32 regression
    targets. ``name``: the array's name in the archive."""
    if task == "regression":
        return regression_targets(y, where, REGRESSION_FIX)
    if is_one_hot(y):
        labels, note = one_hot_indices(y, f"array {name!r}")  # the notes name the file
        notes.append(note + "; set data.task = 'regression' to fit them as values with MSE")
        return labels
    if y.dtype.kind == "f" and y.ndim == 1 and not _whole(y):
        example = next(float(v) for v in y if not (np.isfinite(v) and v == round(v)))
        raise fail(where, f"holds values that are not whole numbers (e.g. {example:g}), which "
                   "data.task = 'classification' cannot read as class labels",
                   "set data.task = 'regression' (or 'auto') to fit them with MSE, or save "
                   "integer class labels")
    if y.dtype.kind in "US":  # class names such as 'cat' and 'dog'
        example = str(y.flat[0]) if y.size else ""
        raise fail(where, f"holds strings ({y.dtype}, e.g. {example!r}), not integer class labels",
                   f"number the classes first ({NUMBER_NAMES} gives labels 0..K-1, label i "
                   f"being names[i]), then {FIX}")
    if _label_column(y):
        raise fail(where, f"holds integers of shape {y.shape}, one class label per row kept as "
                   "a column", "save y.reshape(-1) (and y_test.reshape(-1)) for class labels, "
                   "or set data.task = 'regression' to fit them as values with MSE")
    return labels_tensor(y, where, FIX, negative_ok=True)  # remapped with the rest


def _part(arrays: dict[str, np.ndarray], path: Path, xs: str, ys: str,
          task: str, notes: list[str]) -> tuple[torch.Tensor, ...]:
    x = _inputs(arrays[xs], f"array {xs!r} in '{path}'")
    y = _targets(arrays[ys], f"array {ys!r} in '{path}'", task, notes, ys)
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
    ys = [arrays[n] for n in ("y", "y_test") if n in arrays]
    task = infer_task(*ys) if spec.task == "auto" else spec.task
    notes = _shape_notes(arrays["x"], arrays["y"], task)
    train_x, train_y = _part(arrays, path, "x", "y", task, notes)
    parts = [train_y]
    test_x = test_y = None
    if want_test:
        test_x, test_y = _part(arrays, path, "x_test", "y_test", task, notes)
        if test_x.shape[1:] != train_x.shape[1:] or test_y.shape[1:] != train_y.shape[1:]:
            got = tuple(test_x.shape[1:]), tuple(test_y.shape[1:])
            want = tuple(train_x.shape[1:]), tuple(train_y.shape[1:])
            problem = (f"has x_test/y_test examples of shape {got[0]}/{got[1]} but x/y examples "
                       f"of shape {want[0]}/{want[1]}")
            raise fail(f"file '{path}'", problem, FIX)
        parts.append(test_y)
    if task == "regression":
        return RawData(train_x, train_y, 0, test_x, test_y,
                       notes=tuple(f"'{path}': {n}" for n in notes))
    only = int(parts[0][0])  # the label, when there is a single one
    parts, num_classes, note = compact_labels(*parts)
    refuse_single_class(num_classes, only, f"file '{path}'",
                        "save float targets or set data.task = 'regression'")
    notes += [note] if note else []
    if spec.task == "auto" and any(y.dtype.kind == "f" for y in ys):
        notes.append(f"data.task = 'auto' read the float targets as {num_classes} class labels "
                     "(every value is a whole number); set data.task = 'regression' to fit "
                     "them as values with MSE")
    train_y, test_y = parts[0], (parts[1] if want_test else None)
    return RawData(train_x, train_y, num_classes, test_x, test_y,
                   notes=tuple(f"'{path}': {n}" for n in notes))
