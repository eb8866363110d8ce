"""Writers of tiny data sets in each real on-disk format, and the per-format test cases.

Every writer produces files byte-compatible with the official distributions (IDX headers via
struct, CIFAR pickles with bytes keys, PIL-written PNG/JPEG, np.savez) so the loaders are tested
against the real formats, not against a convenient imitation.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _write(path: Path, blob: bytes, gz: bool) -> None:
    if gz:
        path = path.with_name(path.name + ".gz")
        blob = gzip.compress(blob)
    path.write_bytes(blob)


def write_idx(folder: Path, n_train: int = 30, n_test: int = 12, gz: bool = False) -> dict:
    """MNIST-style IDX files (28x28 ubyte images, ubyte labels 0..9); returns the test part."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        _write(folder / f"{prefix}-images-idx3-ubyte",
               struct.pack(">IIII", 0x00000803, n, 28, 28) + images.tobytes(), gz)
        _write(folder / f"{prefix}-labels-idx1-ubyte",
               struct.pack(">II", 0x00000801, n) + labels.tobytes(), gz)
        parts[prefix] = (images[:, None] / 255.0, labels)
    return {"test": parts["t10k"]}


def write_cifar(folder: Path, variant: str, per_file: int = 8, n_test: int = 10) -> dict:
    """cifar-10-batches-py (data_batch_1..5, test_batch) or cifar-100-python (train, test)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    classes, label_key = (10, b"labels") if variant == "cifar10" else (100, b"fine_labels")
    train_names = [f"data_batch_{i}" for i in range(1, 6)] if variant == "cifar10" else ["train"]
    test_name = "test_batch" if variant == "cifar10" else "test"
    expected = {}
    for name in [*train_names, test_name]:
        n = n_test if name == test_name else per_file
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, classes, n)]
        batch = {b"batch_label": name.encode(), label_key: labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(n)]}
        if variant == "cifar100":
            batch[b"coarse_labels"] = [v // 5 for v in labels]
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh, protocol=2)  # the official files are protocol-2 pickles
        expected[name] = (data.reshape(-1, 3, 32, 32) / 255.0, np.array(labels))
    return {"test": expected[test_name]}


CLASSES = ("cat", "dog", "eel")


def write_image_folder(root: Path, per_class: int = 6, split: bool = True, size: int = 8) -> dict:
    """root/[train|val]/<class>/<image>; train images alternate PNG/JPEG, val images are PNG.

    Images are written at ``size`` x ``size`` so loading at image_size = size is lossless for
    PNG and the test part can be compared exactly.
    """
    rng = np.random.default_rng(2)
    expected_x, expected_y = [], []
    parts = [("train", per_class), ("val", 2)] if split else [("", per_class)]
    for part, count in parts:
        for label, name in enumerate(CLASSES):
            folder = root / part / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                ext = "jpg" if part != "val" and i % 2 else "png"
                Image.fromarray(pixels).save(folder / f"{i:03d}.{ext}")
                if part == "val":
                    expected_x.append(pixels.transpose(2, 0, 1) / 255.0)
                    expected_y.append(label)
    (root / "README.txt").write_text("not an image: ignored")
    return {"test": (np.stack(expected_x), np.array(expected_y))} if split else {}


def write_npz(path: Path, n: int = 40, n_test: int = 10, with_test: bool = True) -> dict:
    """x (N, 6, 6) float64 (3-D: loaded with a channel dim), y int labels 0..4."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(2.0, 3.0, (n, 6, 6)), np.arange(n) % 5
    x_test, y_test = rng.normal(2.0, 3.0, (n_test, 6, 6)), np.arange(n_test) % 5
    arrays = {"x": x, "y": y, **({"x_test": x_test, "y_test": y_test} if with_test else {})}
    np.savez(path, **arrays)
    return {"test": (x_test[:, None], y_test)}


@dataclass
class Case:
    """One data format: its spec fields and what loading it must give."""

    spec: dict[str, Any]
    total: int  # examples in the train part (before the hold-out split)
    input_shape: tuple[int, ...]
    num_classes: int
    n_test: int | None = None  # None: validation = "test" must raise DataError
    test: tuple[np.ndarray, np.ndarray] | None = None  # expected unnormalised test part
    atol: float = 1e-6


def make_case(name: str, tmp: Path) -> Case:
    """Write format ``name`` (if it has files) under ``tmp`` and describe what it must load as."""
    if name == "digits":
        return Case({"name": "digits"}, 1797, (1, 8, 8), 10)
    if name == "mnist1d":
        return Case({"name": "mnist1d", "size": 200, "cache_dir": str(tmp / "cache")},
                    160, (1, 40), 10, n_test=40)
    if name == "synthetic":
        spec = {"name": "synthetic", "shape": [2, 6, 6], "classes": 4, "size": 120}
        return Case(spec, 120, (2, 6, 6), 4)
    if name in ("mnist_idx", "mnist_idx_gz"):
        exp = write_idx(tmp / "mnist", gz=name.endswith("gz"))
        return Case({"name": "mnist_idx", "path": str(tmp / "mnist")}, 30, (1, 28, 28), 10,
                    n_test=12, test=exp["test"])
    if name in ("cifar10", "cifar100"):
        exp = write_cifar(tmp / name, name, per_file=8 if name == "cifar10" else 24)
        total = 40 if name == "cifar10" else 24
        classes = 10 if name == "cifar10" else 100
        return Case({"name": name, "path": str(tmp / name)}, total, (3, 32, 32), classes,
                    n_test=10, test=exp["test"])
    if name == "image_folder":
        exp = write_image_folder(tmp / "images")
        spec = {"name": "image_folder", "path": str(tmp / "images"), "image_size": 8}
        return Case(spec, 18, (3, 8, 8), 3, n_test=6, test=exp["test"])
    if name == "image_folder_flat":
        write_image_folder(tmp / "flat", split=False)
        spec = {"name": "image_folder", "path": str(tmp / "flat"), "image_size": 5}
        return Case(spec, 18, (3, 5, 5), 3)
    if name == "npz":
        exp = write_npz(tmp / "arrays.npz")
        return Case({"name": "npz", "path": str(tmp / "arrays.npz")}, 40, (1, 6, 6), 5,
                    n_test=10, test=exp["test"])
    raise AssertionError(name)


CASE_NAMES = ["digits", "mnist1d", "synthetic", "mnist_idx", "mnist_idx_gz", "cifar10",
              "cifar100", "image_folder", "image_folder_flat", "npz"]
