"""CIFAR-10 / CIFAR-100 from the python pickle folders as distributed.

cifar-10-batches-py holds data_batch_1..5 and test_batch; cifar-100-python holds train and test.
Each pickle is a dict with b'data' (N x 3072 uint8, channel-major 3x32x32) and b'labels'
(CIFAR-10) or b'fine_labels' (CIFAR-100). Images become (3, 32, 32) float32 in [0, 1].
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from batchlab.data.fileio import (
    data_path,
    fail,
    find_file,
    images_tensor,
    labels_tensor,
    read_bytes,
    reading,
)
from batchlab.data.raw import RawData
from batchlab.spec import DataSpec

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps its pickles and labels."""

    folder: str  # the folder name in the official archive
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: bytes
    num_classes: int


LAYOUTS = {
    "cifar10": CifarLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        10,
    ),
    "cifar100": CifarLayout("cifar-100-python", ("train",), ("test",), b"fine_labels", 100),
}

# The only globals a CIFAR pickle needs: numpy array reconstruction (old and new numpy module
# paths, protocols 2 and 5) and bytes decoding. Refusing everything else means a hostile or
# garbage pickle cannot run code; it fails with UnpicklingError, which becomes a DataError.
_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    *((f"numpy.{core}.multiarray", "_reconstruct") for core in ("core", "_core")),
    *((f"numpy.{core}.multiarray", "scalar") for core in ("core", "_core")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only ``_ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # numpy >= 2 renamed numpy.core to numpy._core; importing the old name warns.
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _folder(spec: DataSpec, layout: CifarLayout, fix: str) -> Path:
    """data.path itself, or its ``cifar-10-batches-py`` / ``cifar-100-python`` sub-folder."""
    root = data_path(spec, folder=True, fix=fix)
    if not (root / layout.train[0]).exists() and (root / layout.folder).is_dir():
        return root / layout.folder
    return root


def _read_batch(path: Path, layout: CifarLayout, fix: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, 3, 32, 32) uint8, labels (N,)) from one pickle, validated."""
    blob = read_bytes(path, fix)
    with reading(path, fix):
        batch = _ArrayUnpickler(io.BytesIO(blob), encoding="bytes").load()
    where = f"file '{path}'"
    if not isinstance(batch, dict):
        raise fail(where, f"holds a {type(batch).__name__}, not a CIFAR batch dict", fix)
    # Official files have bytes keys; accept str keys too for re-pickled copies.
    data = batch.get(b"data", batch.get("data"))
    key = layout.label_key
    labels = batch.get(key, batch.get(key.decode()))
    if data is None or labels is None:
        keys = ", ".join(repr(k) for k in batch)
        raise fail(where, f"has no b'data' or {key!r} entry (keys: {keys})", fix)
    with reading(path, fix):
        data = np.asarray(data)
        labels = np.asarray(labels)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        problem = (
            f"has b'data' of shape {data.shape} and dtype {data.dtype}, "
            f"expected N x {PIXELS} uint8"
        )
        raise fail(where, problem, fix)
    if len(labels) != len(data):
        raise fail(where, f"has {len(data)} images but {len(labels)} labels", fix)
    return data.reshape(-1, 3, 32, 32), labels


def _load_part(
    folder: Path, names: tuple[str, ...], layout: CifarLayout, fix: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) and labels (N,) concatenated over the pickles ``names``."""
    pixels, labels = [], []
    for name in names:
        path = find_file(folder, name, fix)
        batch_pixels, batch_labels = _read_batch(path, layout, fix)
        pixels.append(batch_pixels)
        labels.append(labels_tensor(batch_labels, f"file '{path}'", fix, layout.num_classes))
    return images_tensor(np.concatenate(pixels)), torch.cat(labels)


def load_cifar(spec: DataSpec, want_test: bool) -> RawData:
    """CIFAR-10 or CIFAR-100 (fine labels); the test pickle is read only when ``want_test``."""
    layout = LAYOUTS[spec.name]
    fix = f"point data.path at the extracted {layout.folder} folder of the official python archive"
    folder = _folder(spec, layout, fix)
    train_x, train_y = _load_part(folder, layout.train, layout, fix)
    if not want_test:
        return RawData(train_x, train_y, layout.num_classes)
    test_x, test_y = _load_part(folder, layout.test, layout, fix)
    return RawData(train_x, train_y, layout.num_classes, test_x, test_y)
