"""The cases of ``bench/judgement.py``: model family x data x optimizer x batch size.

Each case is a short, fixed training budget (a few epochs, constant LR) on built-in or
locally generated data, with the LR grid its ground truth is measured on (log-spaced, a third
of a decade apart, wide enough that the best LR is inside it; the table flags a best on the
grid's edge). ``base_lr`` is what a user would try first (the optimizer's usual default): the
recommender is judged against the user's base configuration at that LR.

Not a test module and not part of batchlab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Case:
    name: str
    data: dict[str, Any]
    model: dict[str, Any]
    train: dict[str, Any]  # optimizer settings, batch_size and epochs; lr comes from the grid
    grid: tuple[float, float]  # lowest and highest LR of the ground-truth grid
    base_lr: float
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def lrs(self, per_decade: int = 3) -> list[float]:
        """The grid: ``per_decade`` log-spaced LRs per decade from grid[0] to grid[1]."""
        lo, hi = np.log10(self.grid[0]), np.log10(self.grid[1])
        n = int(round((hi - lo) * per_decade)) + 1
        return [float(f"{v:.3g}") for v in np.logspace(lo, hi, n)]


def bn_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """A small CNN with BatchNorm after every convolution (the case the zoo's plain CNNs lack)."""
    c = input_shape[0]
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))


def breast_cancer_npz(folder: Path) -> Path:
    """scikit-learn's breast cancer set, standardised per feature, as a local ``.npz`` file."""
    from sklearn.datasets import load_breast_cancer

    path = folder / "breast_cancer_std.npz"
    if not path.exists():
        x, y = load_breast_cancer(return_X_y=True)
        x = (x - x.mean(0)) / x.std(0)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x.astype(np.float32), y=y.astype(np.int64))
    return path


SGD_M = {"optimizer": "sgd", "momentum": 0.9}
ADAM = {"optimizer": "adam", "momentum": 0.9}


def cases(data_dir: Path) -> list[Case]:
    """Every case; ``data_dir`` holds the generated local files."""
    digits = {"name": "digits"}
    mnist1d = {"name": "mnist1d", "size": 4000}
    cancer = {"name": "npz", "path": str(breast_cancer_npz(data_dir)), "normalize": False}
    images = {"name": "synthetic", "shape": [3, 16, 16], "classes": 10, "size": 2000}
    mlp64 = {"name": "mlp", "hidden": [64]}
    return [
        Case("digits-mlp-sgd-b16", digits, mlp64, {**SGD_M, "batch_size": 16, "epochs": 3},
             (1e-3, 2.0), 0.01),
        Case("digits-mlp-sgd-b64", digits, mlp64, {**SGD_M, "batch_size": 64, "epochs": 3},
             (1e-3, 2.0), 0.01),
        Case("digits-mlp-sgd-b256", digits, mlp64, {**SGD_M, "batch_size": 256, "epochs": 3},
             (1e-3, 5.0), 0.01),
        Case("digits-lenet5-sgd-b32", digits, {"name": "lenet5"}, {**SGD_M, "batch_size": 32, "epochs": 3},
             (1e-3, 1.0), 0.01),
        Case("digits-lenet5-adamw-b128", digits, {"name": "lenet5"},
             {"optimizer": "adamw", "weight_decay": 0.01, "batch_size": 128, "epochs": 5},
             (1e-4, 0.1), 1e-3),
        Case("mnist1d-cnn1d-adam-b64", mnist1d, {"name": "cnn1d"}, {**ADAM, "batch_size": 64, "epochs": 4},
             (1e-4, 0.1), 1e-3),
        Case("mnist1d-mlp-adam-b128", mnist1d, {"name": "mlp", "hidden": [128, 128]},
             {**ADAM, "batch_size": 128, "epochs": 5}, (1e-4, 0.1), 1e-3),
        Case("cancer-mlp-sgd-b32", cancer, {"name": "mlp", "hidden": [32]},
             {"optimizer": "sgd", "momentum": 0.0, "batch_size": 32, "epochs": 5}, (1e-3, 10.0), 0.01,
             "plain SGD without momentum on a standardised tabular set"),
        Case("synthetic-bncnn-sgd-b64", images, {"name": "_judgement_cases:bn_cnn"},
             {**SGD_M, "batch_size": 64, "epochs": 3}, (1e-3, 5.0), 0.01,
             "BatchNorm CNN on a synthetic image set"),
    ]


def threads_pinned(n: int = 1) -> None:
    """One thread: runs are comparable whatever else the machine is doing."""
    torch.set_num_threads(n)
