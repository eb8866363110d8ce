# %% [markdown]
# A notebook user's study: their own nn.Module, numpy arrays, no files of their own.
# Run by tests/test_notebook.py as `python sweep_numpy.py STORE REPORT` in an empty folder.

# %%
import sys

import numpy as np
import torch
from torch import nn

import batchlab as bl

store, report = sys.argv[1], sys.argv[2]

# %% the data: two interleaved spirals, 3 classes, made in memory
rng = np.random.default_rng(0)
n = 300
t = rng.uniform(0.5, 3.0, size=n)
label = rng.integers(0, 3, size=n)
angle = t * 2.5 + label * 2 * np.pi / 3
x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1) + 0.05 * rng.normal(size=(n, 2))
x, label = x.astype(np.float32), label.astype(np.int64)


# %% the model, defined right here (a notebook's class: __main__)
class SpiralNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                                 nn.Linear(32, 3))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


# %% the sweep: batch size x learning rate
result = bl.sweep("spirals", model=SpiralNet(), train=(x, label),
                  grid={"batch_size": [16, 64], "lr": [0.1, 0.02]},
                  epochs=3, threads=1, store=store)
print("trained", result.trained, "skipped", result.skipped)
for row in result.rows:
    print("run", row["batch_size"], row["lr"], row["status"], round(row["best_val_acc"], 3))
print("best:", result.analysis.best["group"]["label"])

# %% the report
written = result.report(report)
print("report", written.html, len(written.figures), "figures")
