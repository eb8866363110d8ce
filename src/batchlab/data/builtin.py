"""Data sets that need no files: scikit-learn's digits, MNIST-1D (generated locally), synthetic."""

from __future__ import annotations

import math
import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from batchlab.data.fileio import fail, no_test_split
from batchlab.data.raw import RawData
from batchlab.spec import DataSpec

MNIST1D_SEED = 42  # mnist1d's own default seed: the same examples as the paper's generator
SYNTHETIC_SEPARATION = 6.0  # distance between class means in noise stds: ~85-95% learnable


def load_digits(spec: DataSpec, want_test: bool) -> RawData:
    """scikit-learn's 1797 8x8 digits as (1, 8, 8) in [0, 1]; no test split of its own."""
    if want_test:
        raise no_test_split("digits")
    from sklearn.datasets import load_digits as sklearn_digits  # slow import, only when used

    bunch = sklearn_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    return RawData(x, torch.from_numpy(bunch.target.astype(np.int64)), num_classes=10)


# --------------------------------------------------------------------------- MNIST-1D


def cache_dir(spec: DataSpec) -> Path:
    """data.cache_dir, else $BATCHLAB_CACHE, else ~/.cache/batchlab."""
    chosen = spec.cache_dir or os.environ.get("BATCHLAB_CACHE") or "~/.cache/batchlab"
    return Path(chosen).expanduser()


def mnist1d_cache_file(spec: DataSpec) -> Path:
    """Where the generated arrays for this spec's size are cached (keyed by size and seed)."""
    return cache_dir(spec) / f"mnist1d-n{spec.size}-seed{MNIST1D_SEED}.npz"


def _generate_mnist1d(size: int) -> dict[str, np.ndarray]:
    """Run mnist1d's generator without disturbing the caller's random state.

    ``make_dataset`` reseeds numpy's and Python's global RNGs; restoring them keeps a user's
    seeded experiment reproducible whether or not the data came from the cache.
    """
    from mnist1d.data import get_dataset_args, make_dataset  # ~1 s import, only on a cache miss

    args = get_dataset_args()
    args.num_samples = size
    args.seed = MNIST1D_SEED
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        made = make_dataset(args)  # never get_dataset(): that one downloads
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(made[k]) for k in ("x", "y", "x_test", "y_test")}


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when absent or unreadable (then we regenerate)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in ("x", "y", "x_test", "y_test")}
    except Exception:  # missing or damaged in any way: the cache is ours to rebuild
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically (temp file + rename): parallel runs may generate at the same time."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as fh:
            tmp = Path(fh.name)
            np.savez(fh, **arrays)
        tmp.chmod(0o644)  # temp files are created 0600; a cache should be readable like any file
        os.replace(tmp, path)
    except OSError:
        # An unwritable cache location only costs regeneration next time; it is not an error.
        if tmp is not None:
            tmp.unlink(missing_ok=True)


def load_mnist1d(spec: DataSpec, want_test: bool) -> RawData:
    """MNIST-1D with spec.size examples (80% train / 20% test), as (1, 40) signals."""
    if spec.size < 10:
        raise fail("data.size", f"= {spec.size} is too small for mnist1d", "use at least 10")
    path = mnist1d_cache_file(spec)
    arrays = _read_cache(path)
    if arrays is None:
        arrays = _generate_mnist1d(spec.size)
        _write_cache(path, arrays)

    def part(xs: str, ys: str) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(arrays[xs].astype(np.float32)).unsqueeze(1)  # (N, 40) -> (N, 1, 40)
        return x, torch.from_numpy(arrays[ys].astype(np.int64))

    train_x, train_y = part("x", "y")
    if not want_test:
        return RawData(train_x, train_y, num_classes=10)
    return RawData(train_x, train_y, 10, *part("x_test", "y_test"))


# --------------------------------------------------------------------------- synthetic


def _class_means(shape: tuple[int, ...], classes: int, gen: torch.Generator) -> torch.Tensor:
    """One smooth random template per class, (classes, *shape), each with unit RMS.

    Templates for (C, L) and (C, H, W) shapes are upsampled from a coarse 4-point / 4x4 grid so
    they are spatially smooth: learnable by convolutional models as well as by MLPs.
    """
    if len(shape) in (2, 3):
        coarse = [min(n, 4) for n in shape[1:]]
        low = torch.randn(classes, shape[0], *coarse, generator=gen)
        mode = "linear" if len(shape) == 2 else "bilinear"
        means = F.interpolate(low, size=shape[1:], mode=mode, align_corners=False)
    else:
        means = torch.randn(classes, *shape, generator=gen)
    rms = means.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12)
    return means / rms.view(-1, *([1] * len(shape)))


def load_synthetic(spec: DataSpec, want_test: bool) -> RawData:
    """A reproducible learnable problem: class template + unit Gaussian noise.

    spec.size examples of spec.shape in spec.classes balanced classes, generated from
    spec.split_seed. Templates are scaled so two class means lie SYNTHETIC_SEPARATION noise
    standard deviations apart on average: separable, but noisy enough that training matters.
    """
    if want_test:
        raise no_test_split("synthetic")
    gen = torch.Generator().manual_seed(spec.split_seed)
    shape = tuple(spec.shape)
    means = _class_means(shape, spec.classes, gen)
    # Unit-RMS templates differ by ~sqrt(2 * dim) in norm; rescale to the wanted separation.
    means *= SYNTHETIC_SEPARATION / math.sqrt(2 * math.prod(shape))
    y = (torch.arange(spec.size) % spec.classes)[torch.randperm(spec.size, generator=gen)]
    x = means[y] + torch.randn(spec.size, *shape, generator=gen)
    return RawData(x, y, spec.classes)
