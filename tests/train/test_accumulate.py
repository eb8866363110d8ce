"""Gradient accumulation: batch B as k micro-batches gives the full-batch update and loss."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchlab.events import MetricRows
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.accumulate import accumulate_gradients, has_batchnorm, micro_slices
from batchlab.train.inputs import RunInputs, spec_model
from batchlab.train.loop import train_run
from batchlab.train.precision import make_precision

FP32 = make_precision("fp32", torch.device("cpu"))


def test_micro_slices_cover_the_batch_with_a_short_last_one():
    assert micro_slices(128, 32) == [slice(0, 32), slice(32, 64), slice(64, 96), slice(96, 128)]
    assert micro_slices(50, 32) == [slice(0, 32), slice(32, 50)]
    assert micro_slices(5, 8) == [slice(0, 5)]
    # a model whose BatchNorm trains needs 2 per part: a last part of 1 joins the one before
    assert micro_slices(5, 2, min_part=2) == [slice(0, 2), slice(2, 5)]
    assert micro_slices(6, 2, min_part=2) == micro_slices(6, 2)
    assert micro_slices(1, 2, min_part=2) == [slice(0, 1)]  # one part: nothing to join


@pytest.mark.parametrize(("n", "micro"), [(128, 32), (50, 32), (7, 1)])
def test_accumulated_gradient_and_loss_are_the_full_batch_ones(n, micro):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    x, y = torch.randn(n, 6, dtype=torch.float64), torch.randint(0, 3, (n,))
    full = F.cross_entropy(model(x), y)
    expected = torch.autograd.grad(full, list(model.parameters()))
    loss = accumulate_gradients(model, F.cross_entropy, x, y, micro, FP32)
    for p, g in zip(model.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-12, atol=1e-14)
    assert loss.item() == pytest.approx(full.item(), rel=1e-6)  # returned as float32


def config(**train) -> RunConfig:
    # 560 training examples: 4 full batches of 128 and a partial one of 48 (= 32 + 16 micro)
    s = spec_from_dict({
        "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 700},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"batch_size": 128, "epochs": 3, "lr": 0.2, "threads": 1,
                  "checkpoint": False, **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def trained(cfg):
    """(per-step train loss, final parameters, the run's summary)."""
    models, events = [], []

    def build(spec, data):
        models.append(spec_model(spec, data))
        return models[-1]

    end = train_run(cfg, events.append, inputs=RunInputs(build_model=build))
    assert end.status == "completed", end.error
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    losses = [(r[1], r[2]) for r in rows if r[0] == "train_loss"]
    return losses, [p.detach().clone() for p in models[0].parameters()], end.summary


def test_batch_128_as_4_x_32_trains_like_batch_128():
    full_loss, full_params, full_summary = trained(config())
    acc_loss, acc_params, acc_summary = trained(config(accumulate=4))
    assert [s for s, _ in acc_loss] == [s for s, _ in full_loss] == list(range(1, 16))
    for (_, a), (_, b) in zip(acc_loss, full_loss, strict=True):
        assert a == pytest.approx(b, rel=1e-5)
    for a, b in zip(acc_params, full_params, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert full_summary["micro_batch_size"] == 128 and acc_summary["micro_batch_size"] == 32
    assert acc_summary["has_batchnorm"] is False
    assert acc_summary["final_val_acc"] == pytest.approx(full_summary["final_val_acc"], abs=0.01)
    # micro_batch_size = 32 is the same split, spelled the other way: the same numbers exactly
    micro_loss, micro_params, _ = trained(config(micro_batch_size=32))
    assert micro_loss == acc_loss
    assert all(torch.equal(a, b) for a, b in zip(micro_params, acc_params, strict=True))


def test_has_batchnorm_finds_nested_layers():
    assert has_batchnorm(nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))))
    assert not has_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2)))
