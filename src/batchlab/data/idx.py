"""MNIST / Fashion-MNIST in the IDX format: four files, raw or gzipped, in data.path.

IDX layout: a big-endian 32-bit magic number (0x00000803 for a 3-D ubyte image file,
0x00000801 for a 1-D ubyte label file), one big-endian 32-bit size per dimension, then the
ubyte data in row-major order. Images become (1, H, W) float32 in [0, 1].
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import torch

from batchlab.data.fileio import (
    data_path,
    fail,
    find_file,
    images_tensor,
    labels_tensor,
    read_bytes,
)
from batchlab.data.raw import RawData
from batchlab.spec import DataSpec

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
FIX = (
    "point data.path at the folder with the four MNIST IDX files (train-images-idx3-ubyte, "
    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, raw or .gz)"
)
REDOWNLOAD = "re-download or re-extract the MNIST IDX files into data.path"


def parse_idx(path: Path, magic: int) -> np.ndarray:
    """The ubyte array stored in IDX file ``path``, whose magic number must be ``magic``."""
    data = read_bytes(path, FIX)
    ndim = magic & 0xFF  # the low byte of the magic number is the number of dimensions
    header = 4 + 4 * ndim
    if len(data) < header:
        problem = f"is truncated: {len(data)} bytes, shorter than its {header}-byte IDX header"
        raise fail(f"file '{path}'", problem, REDOWNLOAD)
    (found,) = struct.unpack_from(">I", data, 0)
    if found != magic:
        kind = "image" if magic == IMAGES_MAGIC else "label"
        problem = (
            f"has magic number 0x{found:08X}, expected 0x{magic:08X} for an IDX {kind} file "
            "(it is not an MNIST IDX file, or the image and label files are swapped)"
        )
        raise fail(f"file '{path}'", problem, REDOWNLOAD)
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    expected = header + math.prod(dims)
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "too long"
        problem = (
            f"is {state}: its header promises shape {dims}, i.e. {expected} bytes, "
            f"but it has {len(data)}"
        )
        raise fail(f"file '{path}'", problem, REDOWNLOAD)
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _load_part(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, H, W) and labels (N,) of the ``train`` or ``t10k`` part."""
    # also by the names of Kaggle's copy, with a dot: train-images.idx3-ubyte
    images_path = find_file(folder, f"{prefix}-images-idx3-ubyte", FIX, (f"{prefix}-images.idx3-ubyte",))
    labels_path = find_file(folder, f"{prefix}-labels-idx1-ubyte", FIX, (f"{prefix}-labels.idx1-ubyte",))
    images = parse_idx(images_path, IMAGES_MAGIC)
    labels = parse_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        problem = f"holds {len(labels)} labels but '{images_path.name}' holds {len(images)} images"
        raise fail(f"file '{labels_path}'", problem, REDOWNLOAD)
    if len(images) == 0:
        raise fail(f"file '{images_path}'", "holds no images", REDOWNLOAD)
    return images_tensor(images[:, None]), labels_tensor(labels, f"file '{labels_path}'", FIX)


def load_mnist_idx(spec: DataSpec, want_test: bool) -> RawData:
    """MNIST-style IDX data; the t10k files are read (and required) only when ``want_test``."""
    folder = data_path(spec, folder=True, fix=FIX)
    train_x, train_y = _load_part(folder, "train")
    if not want_test:
        return RawData(train_x, train_y, num_classes=int(train_y.max()) + 1)
    test_x, test_y = _load_part(folder, "t10k")
    if test_x.shape[1:] != train_x.shape[1:]:
        shapes = tuple(test_x.shape[2:]), tuple(train_x.shape[2:])
        problem = f"have shape {shapes[0]} but the train images have shape {shapes[1]}"
        raise fail(f"the t10k images in '{folder}'", problem, REDOWNLOAD)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    return RawData(train_x, train_y, num_classes, test_x, test_y)
