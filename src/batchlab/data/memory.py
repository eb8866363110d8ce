"""Data the user already holds: ``(x, y)`` tensors or numpy arrays, or a map-style Dataset.

The Python API (``batchlab.sweep(train=..., val=...)``) trains on these instead of a file
format. ``InMemoryData.from_objects`` turns them into tensors once (a ``torch`` Dataset is
materialised item by item, so it must fit in memory), ``fingerprint`` hashes their content
(the run id covers it: changed arrays train new runs) and ``dataset(spec)`` applies the
DataSpec's hold-out split (when no validation data is given), ``limit`` and ``normalize``
exactly as ``load_dataset`` does for files.

Inputs become float32; integer targets are class labels (int64, classification, accuracy is
recorded), floating targets are kept as float32 (regression: the loss alone is recorded).
Class labels are read as an .npz's are (``batchlab.data.labels``): labels that are not 0..K-1
(e.g. {-1, 1}) are remapped in sorted order over train and val together, integer one-hot
(N, K) labels become ``y.argmax(1)``, each with a note (``InMemoryData.notes``), and a single
class, or other 2-D integer targets, are refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from batchlab.data.dataset import Dataset, task_words
from batchlab.data.labels import (
    NUMBER_NAMES,
    compact_labels,
    is_one_hot,
    one_hot_indices,
    refuse_single_class,
)
from batchlab.data.split import limit_and_normalize, split_indices
from batchlab.errors import DataError
from batchlab.spec import DataSpec

MAX_MATERIALISED_BYTES = 4 << 30  # a Dataset bigger than this is refused, not swapped to death


def _tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    array = np.asarray(value)
    if array.dtype.kind in "USO" and "targets" in what:  # class names: say how to number them
        example = str(array.flat[0]) if array.size else ""
        raise DataError(
            f"{what} holds {'strings' if array.dtype.kind in 'US' else 'Python objects'} "
            f"({array.dtype}, e.g. {example!r}), not integer class labels; number the classes "
            f"first: {NUMBER_NAMES} gives labels 0..K-1 (label i being names[i])."
        )
    try:
        return torch.as_tensor(array)
    except (TypeError, ValueError, RuntimeError) as err:
        raise DataError(
            f"{what} is a {type(value).__name__}, which cannot be turned into a tensor ({err}); "
            "pass a torch tensor or a numpy array."
        ) from None


def _item(dataset: Any, i: int, what: str) -> Any:
    """``dataset[i]`` checked to be an (input, target) pair; what the user's ``__getitem__``
    raises (a missing file at example 7) is a DataError naming the example, its cause kept."""
    try:
        item = dataset[i]
    except Exception as err:
        raise DataError(
            f"{what}[{i}] fails: the Dataset's __getitem__ raised {type(err).__name__}: {err}. "
            f"batchlab reads every example of {what} into memory first; fix the Dataset (or "
            "leave that example out, e.g. with torch.utils.data.Subset)."
        ) from err
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise DataError(
            f"{what}[{i}] is a {type(item).__name__}, not an (input, target) pair; a Dataset "
            "passed to batchlab must return (x, y) from __getitem__."
        )
    return item


def _materialise(dataset: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack every ``dataset[i]`` (an (input, target) pair) into two tensors."""
    n = len(dataset)
    if n == 0:
        raise DataError(f"{what} is an empty Dataset; give it at least one example.")
    first = _item(dataset, 0, what)
    if type(first[0]).__module__.startswith("PIL."):  # as an array: (H, W, C) bytes 0-255
        raise DataError(
            f"{what}[0] input is a PIL image ({type(first[0]).__name__}), not a tensor; give "
            "the Dataset a transform that makes tensors, e.g. "
            "transform=torchvision.transforms.ToTensor() (channels first, values 0-1)."
        )
    x0 = _tensor(first[0], f"{what}[0] input")
    size = x0.numel() * 4 * n
    if size > MAX_MATERIALISED_BYTES:
        raise DataError(
            f"{what} would take {size / 2**30:.1f} GiB as float32 tensors, more than the "
            f"{MAX_MATERIALISED_BYTES / 2**30:.0f} GiB batchlab holds in memory; pass a subset "
            "(torch.utils.data.Subset) or use a file format with a spec (see docs/spec.md)."
        )
    xs, ys = [], []
    for i in range(n):
        x, y = _item(dataset, i, what)
        xs.append(_tensor(x, f"{what}[{i}] input"))
        ys.append(_tensor(y, f"{what}[{i}] target"))
    try:
        return torch.stack(xs), torch.stack(ys)
    except RuntimeError as err:
        raise DataError(f"{what}'s examples do not all have the same shape ({err}); "
                        "resize them to one shape in the Dataset.") from None


def as_pair(value: Any, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` as (float32 inputs, int64 labels or float32 targets); DataError otherwise."""
    if isinstance(value, Mapping):  # has __getitem__ and __len__, but is no Dataset
        keys = ", ".join(repr(k) for k in list(value)[:6])
        raise DataError(
            f"{what} is a {type(value).__name__} (keys {keys}); pass (x, y) tensors or numpy "
            f"arrays as a tuple, e.g. {what}=(d['x'], d['y']), or a map-style "
            "torch.utils.data.Dataset returning (x, y)."
        )
    if isinstance(value, (tuple, list)) and len(value) == 2:
        x, y = _tensor(value[0], f"{what}[0] (inputs)"), _tensor(value[1], f"{what}[1] (targets)")
    elif (hasattr(value, "__getitem__") and hasattr(value, "__len__")
          and not isinstance(value, (str, bytes, np.ndarray, torch.Tensor))):  # a Dataset
        x, y = _materialise(value, what)
    else:
        raise DataError(
            f"{what} is a {type(value).__name__}; pass (x, y) tensors or numpy arrays, or a "
            "map-style torch.utils.data.Dataset returning (x, y)."
        )
    if x.ndim == 0 or len(x) != len(y):
        raise DataError(
            f"{what}: inputs have shape {tuple(x.shape)} and targets {tuple(y.shape)}; they "
            "need the same first dimension (one target per example)."
        )
    if len(y) == 0:
        raise DataError(f"{what} has no examples; give at least one.")
    x = x.to(torch.float32)
    y = y.to(torch.float32) if torch.is_floating_point(y) else y.to(torch.int64)
    # a NaN in the data makes every run's loss NaN, which would read as a diverged LR
    for values, part, fix in ((x, "inputs", "impute them (or drop those rows)"),
                              (y, "targets", "drop those rows (or impute the targets)")):
        bad = ~torch.isfinite(values.reshape(len(values), -1)).all(1)
        if bad.any():
            rows = bad.nonzero().flatten().tolist()
            shown = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
            raise DataError(
                f"{what}'s {part} hold NaN or infinite values in {len(rows)} of {len(values)} "
                f"rows (rows {shown}); every run's loss would be NaN. {fix[0].upper()}{fix[1:]} "
                "first."
            )
    return x.contiguous(), y.contiguous()


def _class_labels(y: torch.Tensor, what: str, notes: list[str]) -> torch.Tensor:
    """Integer targets as 1-D class labels: one-hot rows become their index (noted); any
    other shape is refused, naming the fix."""
    if y.ndim == 1:
        return y
    if is_one_hot(y):
        labels, note = one_hot_indices(y, f"{what}'s targets")
        notes.append(note)
        return labels
    if y.ndim == 2 and y.shape[1] == 1:
        fix = "pass y.reshape(-1) for class labels"
    else:
        fix = "pass one label per example, y of shape (N,) with y[i] the class of example i"
    raise DataError(
        f"{what}'s targets are integers of shape {tuple(y.shape)}, which are not class labels "
        f"(one per example, shape (N,)) nor one-hot (one 1 per row); {fix}, or float targets "
        "with a loss= for a regression."
    )


def _digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class InMemoryData:
    """Training (and optionally validation) tensors passed in by the caller."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)  # how labels were read (say it)

    @classmethod
    def from_objects(cls, train: Any, val: Any = None) -> InMemoryData:
        """Convert ``train`` and ``val`` (see ``as_pair``) and read integer targets as class
        labels 0..K-1, K >= 2 (see the module's docstring); DataError naming what is wrong."""
        tx, ty = as_pair(train, "train")
        vx, vy = as_pair(val, "val") if val is not None else (None, None)
        notes: list[str] = []
        if not torch.is_floating_point(ty):
            ty = _class_labels(ty, "train", notes)
            if vy is not None and not torch.is_floating_point(vy):
                vy = _class_labels(vy, "val", notes)
        if vx is not None and vy is not None:
            if vx.shape[1:] != tx.shape[1:] or vy.shape[1:] != ty.shape[1:] or vy.dtype != ty.dtype:
                raise DataError(
                    f"val has inputs {tuple(vx.shape[1:])} / targets {tuple(vy.shape[1:])} "
                    f"{vy.dtype} per example but train has {tuple(tx.shape[1:])} / "
                    f"{tuple(ty.shape[1:])} {ty.dtype}; give both in the same layout."
                )
        if not torch.is_floating_point(ty):
            only = int(ty[0])  # the label, when there is a single one
            parts, k, note = compact_labels(*[t for t in (ty, vy) if t is not None])
            where = "train" + (" with val" if vy is not None else "")
            refuse_single_class(k, only, where,
                                "pass float targets (y.astype('float32')) with a loss=")
            ty, vy = parts[0], (parts[1] if vy is not None else None)
            notes += [f"{where}: {note}"] if note else []
        return cls(tx, ty, vx, vy, tuple(notes))

    @property
    def classification(self) -> bool:
        return not torch.is_floating_point(self.train_y)

    def num_classes(self) -> int:
        """1 + the largest label (train and val) for classification; 0 for a regression."""
        if not self.classification:
            return 0
        labels = [self.train_y] + ([self.val_y] if self.val_y is not None else [])
        return int(max(int(t.max()) for t in labels)) + 1

    def fingerprint(self) -> str:
        """A hash of every tensor's dtype, shape and bytes (16 hex digits)."""
        parts = [self.train_x, self.train_y]
        if self.val_x is not None and self.val_y is not None:
            parts += [self.val_x, self.val_y]
        return _digest(*parts)

    def spec(self, **fields: Any) -> DataSpec:
        """The DataSpec naming these tensors: ``name = "memory"``, ``path = "memory:<hash>"``
        (so the run id covers the content); not normalised unless ``normalize=True``."""
        return DataSpec(**{"normalize": False, **fields, "name": "memory",
                           "path": f"memory:{self.fingerprint()}"})

    def dataset(self, spec: DataSpec) -> Dataset:
        """Train/validation tensors under ``spec``'s split (when no val was given), limit and
        normalisation; fresh tensors every call (the caller's arrays are never changed)."""
        if self.val_x is None or self.val_y is None:
            train_idx, val_idx = split_indices(len(self.train_y), spec.val_fraction, spec.split_seed)
            train_x, train_y = self.train_x[train_idx], self.train_y[train_idx]
            val_x, val_y = self.train_x[val_idx], self.train_y[val_idx]
        else:
            train_x, train_y = self.train_x.clone(), self.train_y.clone()
            val_x, val_y = self.val_x.clone(), self.val_y.clone()
        train_x, train_y, val_x = limit_and_normalize(train_x, train_y, val_x, spec.limit,
                                                       spec.split_seed, spec.normalize)
        shape = tuple(train_x.shape[1:])
        classes = self.num_classes()
        description = (f"in-memory arrays: {len(train_y)} train / {len(val_y)} validation, "
                       f"{'x'.join(map(str, shape))}, {task_words(classes, train_y)}")
        return Dataset(train_x, train_y, val_x, val_y, shape, classes, description, self.notes)
