"""The data sets of the generated judgement bench (``bench/judgement.py``): numpy only.

Every set is built here from scikit-learn's bundled sets, MNIST-1D generated locally or a
synthetic generator, split into train and validation with a fixed seed and standardised with
the training statistics, so the plain loop (``_plain_loop.py``) and batchlab see the very same
arrays. Label noise and class imbalance are applied to the training part only: the
validation part measures the clean task.

Not part of batchlab and not a test module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

VAL_FRACTION = 0.25


@dataclass(frozen=True)
class BenchData:
    """Train/validation arrays: ``x`` float32 (N, *shape), ``y`` int64 labels or float32 (N,)
    targets (a regression, standardised)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: int  # 0 for a regression

    @property
    def regression(self) -> bool:
        return self.classes == 0

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


#: data name -> (kind of input, task): "tabular" (N, F), "image" (N, C, H, W), "sequence" (N, 1, L)
SOURCES = {
    "digits": ("image", "classification"),
    "synth-images": ("image", "classification"),
    "mnist1d": ("sequence", "classification"),
    "cancer": ("tabular", "classification"),
    "tabular-5class": ("tabular", "classification"),
    "friedman": ("tabular", "regression"),
    "diabetes": ("tabular", "regression"),
    "sines": ("sequence", "regression"),
}


def _split(x: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_val = int(round(VAL_FRACTION * len(x)))
    val, train = order[:n_val], order[n_val:]
    return x[train], y[train], x[val], y[val]


def _standardise(train: np.ndarray, val: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=axis, keepdims=True)
    std = train.std(axis=axis, keepdims=True) + 1e-6
    return ((train - mean) / std).astype(np.float32), ((val - mean) / std).astype(np.float32)


def _raw(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of ``name`` before splitting (deterministic)."""
    from sklearn import datasets

    if name == "digits":
        x, y = datasets.load_digits(return_X_y=True)
        return x.reshape(-1, 1, 8, 8), y
    if name == "cancer":
        return datasets.load_breast_cancer(return_X_y=True)
    if name == "diabetes":
        return datasets.load_diabetes(return_X_y=True)
    if name == "friedman":
        return datasets.make_friedman1(n_samples=4000, n_features=10, noise=1.0, random_state=0)
    if name == "tabular-5class":
        return datasets.make_classification(n_samples=5000, n_features=20, n_informative=10,
                                            n_redundant=4, n_classes=5, class_sep=1.0,
                                            random_state=0)
    if name == "mnist1d":
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = 5000
        d = make_dataset(args)  # generated locally, no download
        x = np.concatenate([d["x"], d["x_test"]])[:, None, :]
        return x, np.concatenate([d["y"], d["y_test"]])
    if name == "synth-images":
        return _synth_images()
    if name == "sines":
        return _sines()
    raise KeyError(name)


def _synth_images(n: int = 4000, classes: int = 6, size: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Each class a smooth random template, each example it shifted by up to 2 pixels with
    noise: convolutions help, a linear model on pixels does not reach the top."""
    rng = np.random.default_rng(1)
    base = rng.normal(size=(classes, size + 4, size + 4))
    kernel = np.ones(3) / 3
    for _ in range(2):  # smooth rows and columns
        base = np.apply_along_axis(np.convolve, 1, base, kernel, "same")
        base = np.apply_along_axis(np.convolve, 2, base, kernel, "same")
    y = rng.integers(0, classes, n)
    dx, dy = rng.integers(0, 5, n), rng.integers(0, 5, n)
    x = np.stack([base[c, i:i + size, j:j + size] for c, i, j in zip(y, dx, dy, strict=True)])
    x = x + rng.normal(scale=0.6, size=x.shape)
    return x[:, None].astype(np.float32), y


def _sines(n: int = 4000, length: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sinusoids of random frequency, phase and amplitude; the target is the frequency."""
    rng = np.random.default_rng(2)
    freq = rng.uniform(0.5, 4.0, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    amp = rng.uniform(0.5, 1.5, n)
    t = np.linspace(0, 1, length)
    x = amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None] + phase[:, None])
    x = x + rng.normal(scale=0.3, size=x.shape)
    return x[:, None].astype(np.float32), freq


@cache
def load(name: str, variant: str = "clean", flat: bool = False) -> BenchData:
    """``name`` split and standardised; ``variant``: "clean", "noisy" (25 % of the training
    labels replaced by a random class) or "imbalanced" (class k kept with probability
    0.7**k in training: with 10 classes the largest is 25 times the smallest); ``flat``: inputs
    flattened to (N, F) for an MLP."""
    kind, task = SOURCES[name]
    x, y = _raw(name)
    x = np.asarray(x, dtype=np.float64)
    x_tr, y_tr, x_va, y_va = _split(x, np.asarray(y))
    axis = (0,) if kind == "tabular" else (0, *range(2, x.ndim))  # per feature / per channel
    x_tr, x_va = _standardise(x_tr, x_va, axis)
    if flat:
        x_tr, x_va = x_tr.reshape(len(x_tr), -1), x_va.reshape(len(x_va), -1)
    if task == "regression":
        mu, sd = y_tr.mean(), y_tr.std()
        return BenchData(name, x_tr, ((y_tr - mu) / sd).astype(np.float32), x_va,
                         ((y_va - mu) / sd).astype(np.float32), 0)
    y_tr, y_va = y_tr.astype(np.int64), y_va.astype(np.int64)
    classes = int(max(y_tr.max(), y_va.max()) + 1)
    rng = np.random.default_rng(3)
    if variant == "noisy":
        flip = rng.random(len(y_tr)) < 0.25
        y_tr = np.where(flip, rng.integers(0, classes, len(y_tr)), y_tr)
    elif variant == "imbalanced":
        keep = rng.random(len(y_tr)) < 0.7 ** y_tr
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    return BenchData(f"{name}-{variant}", x_tr, y_tr, x_va, y_va, classes)
