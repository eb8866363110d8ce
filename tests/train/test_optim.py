"""build_optimizer picks the class and hyperparameters from the spec; set_lr sets every group."""

from __future__ import annotations

import pytest
import torch

from batchlab.spec import TrainSpec
from batchlab.train.optim import build_optimizer, set_lr


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))


def test_sgd():
    spec = TrainSpec(optimizer="sgd", momentum=0.8, nesterov=True, weight_decay=5e-4)
    opt = build_optimizer(spec, model().parameters(), 0.3)
    assert type(opt) is torch.optim.SGD
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["nesterov"], g["weight_decay"]) == (0.3, 0.8, True, 5e-4)
    assert g["foreach"] is None  # torch's default choice is kept


def test_sgd_plain():
    spec = TrainSpec(optimizer="sgd", momentum=0.0)
    g = build_optimizer(spec, model().parameters(), 0.1).param_groups[0]
    assert (g["momentum"], g["nesterov"], g["weight_decay"]) == (0.0, False, 0.0)


def test_adam():
    spec = TrainSpec(optimizer="adam", weight_decay=1e-4)
    opt = build_optimizer(spec, model().parameters(), 1e-3)
    assert type(opt) is torch.optim.Adam
    g = opt.param_groups[0]
    assert (g["lr"], g["weight_decay"], g["betas"]) == (1e-3, 1e-4, (0.9, 0.999))


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adamw_uses_spec_weight_decay(wd):
    # 0.0 must stay 0.0, not AdamW's own default of 0.01.
    opt = build_optimizer(TrainSpec(optimizer="adamw", weight_decay=wd), model().parameters(), 2e-3)
    assert type(opt) is torch.optim.AdamW
    assert (opt.param_groups[0]["lr"], opt.param_groups[0]["weight_decay"]) == (2e-3, wd)


def test_rmsprop():
    spec = TrainSpec(optimizer="rmsprop", momentum=0.5, weight_decay=1e-5)
    opt = build_optimizer(spec, model().parameters(), 0.01)
    assert type(opt) is torch.optim.RMSprop
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.01, 0.5, 1e-5)


def test_adagrad_takes_weight_decay_and_ignores_momentum():
    spec = TrainSpec(optimizer="adagrad", momentum=0.9, nesterov=True, weight_decay=1e-3)
    opt = build_optimizer(spec, model().parameters(), 0.05)
    assert type(opt) is torch.optim.Adagrad
    g = opt.param_groups[0]
    assert (g["lr"], g["weight_decay"], g["lr_decay"]) == (0.05, 1e-3, 0)
    assert "momentum" not in g


def test_adagrad_weight_decay_is_coupled_l2():
    # with a zero loss gradient the only update is the decay's: w <- w - lr * wd * w / sqrt(G)
    w = torch.nn.Parameter(torch.tensor([2.0]))
    opt = build_optimizer(TrainSpec(optimizer="adagrad", weight_decay=0.5), [w], 0.1)
    w.grad = torch.zeros(1)
    opt.step()
    # grad = 0 + 0.5 * 2 = 1, G = 1, step = 0.1 * 1 / (sqrt(1) + 1e-10)
    assert w.item() == pytest.approx(1.9)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop", "adagrad"])
def test_optimizer_takes_a_step(name):
    net = model()
    opt = build_optimizer(TrainSpec(optimizer=name), net.parameters(), 0.05)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    before = [p.detach().clone() for p in net.parameters()]
    torch.nn.functional.cross_entropy(net(x), y).backward()
    opt.step()
    assert all(not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True))


def test_set_lr_changes_every_group():
    net = model()
    groups = [{"params": net[0].parameters()}, {"params": net[2].parameters(), "lr": 0.5}]
    opt = build_optimizer(TrainSpec(optimizer="sgd"), groups, 0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    set_lr(opt, 0.025)
    assert [g["lr"] for g in opt.param_groups] == [0.025, 0.025]


def test_only_parameters_that_require_grad_are_optimised():
    net = model()
    net[0].requires_grad_(False)  # a frozen first layer (model.freeze = "backbone" does this)
    opt = build_optimizer(TrainSpec(optimizer="adamw"), net.parameters(), 0.1)
    assert opt.param_groups[0]["params"] == [net[2].weight, net[2].bias]
