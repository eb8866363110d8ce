"""The peers' LR finders on a bench case, at their defaults: torch-lr-finder and Lightning's
tuner. Their suggestions are trained by the plain loop and cached with the ground truth, as
they do not depend on batchlab.

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import _bench_truth as truthlib
from _bench_space import Case
from _bench_truth import data_of


def _loader(case: Case) -> Any:
    import torch

    d = data_of(case)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(d.x_train), torch.from_numpy(d.y_train))
    return torch.utils.data.DataLoader(ds, batch_size=case.batch_size, shuffle=True, drop_last=True,
                                       generator=torch.Generator().manual_seed(0))


def _net_and_loss(case: Case) -> tuple[Any, Any]:
    import _bench_models
    import torch
    import torch.nn.functional as F

    d = data_of(case)
    torch.manual_seed(0)
    net = _bench_models.build(case.family, d.input_shape, 1 if d.regression else d.classes)
    if d.regression:
        return net, lambda out, y: F.mse_loss(out.squeeze(-1), y)
    return net, F.cross_entropy


def torch_lr_finder(case: Case) -> tuple[float | None, int]:
    """torch-lr-finder at its defaults (100 iterations up to lr 10, exponential)."""
    from _plain_loop import make_optimizer
    from matplotlib.figure import Figure
    from torch_lr_finder import LRFinder

    net, loss = _net_and_loss(case)
    finder = LRFinder(net, make_optimizer(case.optimizer, net.parameters(), 1e-7), loss, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(_loader(case), end_lr=10, num_iter=100)
        try:
            _, lr = finder.plot(ax=Figure().add_subplot(), suggest_lr=True)
        except Exception:  # it raises when the curve is too short to suggest anything
            lr = None
    return lr, len(finder.history["lr"])


def lightning_tuner(case: Case) -> tuple[float | None, int]:
    """Lightning's ``Tuner.lr_find`` at its defaults (100 steps from 1e-8 to 1)."""
    import logging

    import lightning as L
    from _plain_loop import make_optimizer
    from lightning.pytorch.tuner import Tuner

    net, loss = _net_and_loss(case)

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.lr = net, 1e-3

        def training_step(self, batch: Any, _: int) -> Any:
            x, y = batch
            return loss(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return make_optimizer(case.optimizer, self.parameters(), self.lr)

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, max_epochs=1000)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = Tuner(trainer).lr_find(Module(), train_dataloaders=_loader(case))
    lr = result.suggestion() if result is not None else None
    return lr, len(result.results["lr"]) if result is not None else 0


FINDERS = {"torch-lr-finder": ("torch_lr_finder", torch_lr_finder),
           "lightning": ("lightning", lightning_tuner)}


def peer_finders(case: Case, entry: dict[str, Any], jobs: int) -> dict[str, Any]:
    """The finders' suggestions and their plain-loop outcomes, cached in the truth entry."""
    import importlib.util

    cached = entry.setdefault("finders", {})
    for name, (package, fn) in FINDERS.items():
        if name in cached or importlib.util.find_spec(package) is None:
            continue
        lr, steps = fn(case)
        runs = truthlib.train_lrs(case, [lr], jobs) if lr else []
        cached[name] = {"lr": lr, "cost_steps": steps, "runs": runs}
    return cached
