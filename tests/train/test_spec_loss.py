"""The spec path's built-in loss and model width for a regression: MSE on float targets, one
output per target column, (N, 1) outputs never broadcast against (N,) targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from batchlab.data import load_dataset
from batchlab.errors import ModelError
from batchlab.events import MetricRows
from batchlab.spec import DataSpec, ModelSpec, RunConfig, TrainSpec
from batchlab.train.inputs import RunInputs, spec_loss, spec_model
from batchlab.train.loop import train_run


def test_n_by_1_outputs_against_n_targets_are_an_elementwise_mse() -> None:
    outputs = torch.tensor([[1.0], [2.0], [4.0]])
    targets = torch.tensor([1.0, 0.0, 1.0])
    # (0 + 4 + 9) / 3: each prediction against its own target
    assert spec_loss(outputs, targets).item() == pytest.approx(13 / 3)
    with pytest.warns(UserWarning):  # what plain mse_loss does: a 3x3 broadcast, another number
        broadcast = F.mse_loss(outputs, targets).item()
    assert broadcast != pytest.approx(13 / 3)


def test_matching_shapes_and_class_labels() -> None:
    out, y = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    assert spec_loss(out, y).item() == pytest.approx((0 + 4 + 4 + 0) / 4)
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    assert spec_loss(logits, labels).item() == pytest.approx(F.cross_entropy(logits, labels).item())


def test_outputs_of_another_width_are_a_model_error() -> None:
    with pytest.raises(ModelError, match=r"shape \(4, 3\) for regression targets of shape \(4,\)"):
        spec_loss(torch.zeros(4, 3), torch.zeros(4))


@pytest.mark.parametrize(("targets", "width"), [((40,), 1), ((40, 3), 3)])
def test_spec_model_has_one_output_per_target_column(tmp_path: Path, targets: tuple[int, ...],
                                                     width: int) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "r.npz", x=rng.normal(size=(40, 5)), y=rng.normal(size=targets))
    data = load_dataset(DataSpec(name="npz", path=str(tmp_path / "r.npz")))
    net = spec_model(ModelSpec(name="mlp", hidden=[8]), data)
    assert net(data.train_x[:2]).shape == (2, width)


def test_spec_run_on_a_regression_learns_with_mse(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    np.savez(tmp_path / "r.npz", x=x, y=x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3)
    cfg = RunConfig(data=DataSpec(name="npz", path=str(tmp_path / "r.npz")),
                    model=ModelSpec(name="mlp", hidden=[16]),
                    train=TrainSpec(batch_size=20, epochs=4, lr=0.02, threads=1, checkpoint=False))
    events: list = []
    end = train_run(cfg, events.append, inputs=RunInputs())
    assert end.status == "completed", end.error
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    assert not {r[0] for r in rows} & {"val_acc", "train_acc"}
    val = [r[2] for r in rows if r[0] == "val_loss"]
    # evaluated at step 0 and after each epoch; the targets' variance is about 5.3, so an MSE
    # a quarter of the untrained one has learnt most of the linear map
    assert len(val) == 5 and val[-1] < 0.25 * val[0]
    assert end.summary["num_classes"] is None and "best_val_acc" not in end.summary
