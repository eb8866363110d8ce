"""``load_dataset``: a DataSpec in, train/validation tensors out, ready for training."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from batchlab.data.builtin import load_digits, load_mnist1d, load_synthetic
from batchlab.data.cifar import load_cifar
from batchlab.data.idx import load_mnist_idx
from batchlab.data.imagefolder import load_image_folder
from batchlab.data.labels import refuse_single_class
from batchlab.data.npz import load_npz
from batchlab.data.raw import Loader
from batchlab.data.split import limit_and_normalize, split_indices
from batchlab.errors import DataError
from batchlab.spec import DataSpec

LOADERS: dict[str, Loader] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
    "synthetic": load_synthetic,
    "mnist_idx": load_mnist_idx,
    "cifar10": load_cifar,
    "cifar100": load_cifar,
    "image_folder": load_image_folder,
    "npz": load_npz,
}


@dataclass(frozen=True)
class Dataset:
    """Train and validation tensors of one data spec.

    Inputs are float32 (N, *input_shape), normalised with training statistics when
    spec.normalize; labels are int64 (N,) in 0..num_classes-1, or, for a regression
    (``num_classes`` 0), float32 targets (N,) or (N, k) as loaded. The validation part is the
    held-out split (validation = "split") or the format's test split (validation = "test").
    ``notes`` says what loading changed that the user should know (a sweep prints them).
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    input_shape: tuple[int, ...]
    num_classes: int
    description: str
    notes: tuple[str, ...] = ()


def load_dataset(spec: DataSpec) -> Dataset:
    """Load, split, limit and normalise the data ``spec`` describes.

    Deterministic: the same spec gives identical tensors. Any missing, corrupt or mis-shaped
    input raises :class:`~batchlab.errors.DataError` with a message naming the file or field.
    """
    if spec.name not in LOADERS:  # "memory": only the Python API holds those arrays
        raise DataError(
            f"data.name = {spec.name!r} names arrays passed to the Python API "
            "(batchlab.sweep(train=(x, y))), which a spec file cannot reach; save them with "
            "numpy.savez and use data.name = 'npz' with data.path, or call batchlab.sweep."
        )
    want_test = spec.validation == "test"
    raw = LOADERS[spec.name](spec, want_test)
    if raw.num_classes:  # formats with a fixed label range (IDX, CIFAR) may still hold one class
        labels = raw.train_y if raw.test_y is None else torch.cat([raw.train_y, raw.test_y])
        present = torch.unique(labels)
        refuse_single_class(len(present), int(present[0]), f"data.path '{spec.path}'", None)
    if want_test:
        assert raw.test_x is not None and raw.test_y is not None  # loaders raise otherwise
        train_x, train_y, val_x, val_y = raw.train_x, raw.train_y, raw.test_x, raw.test_y
    else:
        train_idx, val_idx = split_indices(len(raw.train_y), spec.val_fraction, spec.split_seed)
        train_x, train_y = raw.train_x[train_idx], raw.train_y[train_idx]
        val_x, val_y = raw.train_x[val_idx], raw.train_y[val_idx]
    # every tensor here is a fresh copy owned by this call (normalised in place)
    train_x, train_y, val_x = limit_and_normalize(train_x, train_y, val_x, spec.limit,
                                                   spec.split_seed, spec.normalize)
    input_shape = tuple(train_x.shape[1:])
    val_name = "test" if want_test else "validation"
    description = (
        f"{spec.name}: {len(train_y)} train / {len(val_y)} {val_name}, "
        f"{'x'.join(map(str, input_shape))}, {task_words(raw.num_classes, train_y)}"
    )
    return Dataset(train_x, train_y, val_x, val_y, input_shape, raw.num_classes, description,
                   raw.notes)


def output_width(num_classes: int, targets: torch.Tensor) -> int:
    """Outputs a model needs: one logit per class, or, for a regression (``num_classes`` 0,
    float targets), one value per target column (1 for (N,) targets)."""
    if num_classes:
        return num_classes
    return 1 if targets.ndim == 1 else int(targets[0].numel())


def task_words(num_classes: int, targets: torch.Tensor) -> str:
    """The task in a data description: "10 classes", or "regression, 1 target"."""
    if num_classes:
        return f"{num_classes} classes"
    k = output_width(0, targets)
    return f"regression, {k} target{'s' if k != 1 else ''}"
