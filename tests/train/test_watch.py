"""Per-layer signals (batchlab.train.watch): what is measured, in the loop, in bl.track."""

import math

import pytest
import torch
from test_loop import collect, config, series
from torch import nn

import batchlab as bl
from batchlab.errors import SpecError
from batchlab.store import Store
from batchlab.train.watch import LayerWatch


class Cut(nn.Module):
    """fc1 -> ReLU, detached, -> fc2: no gradient reaches fc1."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)).detach())


def step(model, opt, x, y):
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_grad_norm_and_update_ratio_are_those_of_the_update_after_arm():
    torch.manual_seed(0)
    model, x, y = Cut(), torch.randn(16, 4), torch.randint(0, 2, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = LayerWatch(model)
    watch.arm()
    before = [p.detach().clone() for p in model.fc2.parameters()]
    step(model, opt, x, y)
    grad = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.fc2.parameters()))
    pairs = zip(model.fc2.parameters(), before, strict=True)
    delta = math.sqrt(sum(float((p.detach() - b).pow(2).sum()) for p, b in pairs))
    weight = math.sqrt(sum(float(b.pow(2).sum()) for b in before))
    got = watch.collect()
    assert got["layer/fc2/grad_norm"] == pytest.approx(grad, rel=1e-5)
    assert got["layer/fc2/update_ratio"] == pytest.approx(delta / weight, rel=1e-5)
    assert got["layer/fc1/grad_norm"] == 0.0 and got["layer/fc1/update_ratio"] == 0.0
    assert not watch.armed and watch.collect() == {}  # one measurement per arm


def test_dead_fraction_counts_units_that_never_fire_and_removes_its_hooks():
    model = nn.Sequential(nn.Linear(4, 10), nn.BatchNorm1d(10), nn.ReLU(), nn.Linear(10, 2))
    with torch.no_grad():
        model[0].weight.zero_()
        model[0].bias.copy_(torch.tensor([1.0] * 3 + [-1.0] * 7))
        model[1].running_mean.zero_()  # eval mode: BN passes the signs through
    model.train()
    watch = LayerWatch(model)
    got = watch.dead_fractions(lambda: model(torch.randn(32, 4)))
    assert got == {"layer/0/dead_frac": pytest.approx(0.7)}  # named after the producing layer
    assert model.training  # the mode is restored
    assert all(not m._forward_hooks for m in model.modules())


def test_hooks_mode_grad_norm_and_update_ratio_match_the_update():
    torch.manual_seed(0)
    model, x, y = Cut(), torch.randn(16, 4), torch.randint(0, 2, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = LayerWatch(model, hooks=True)
    watch.arm()
    before = [p.detach().clone() for p in model.fc2.parameters()]
    step(model, opt, x, y)
    grad = math.sqrt(sum(float(p.grad.pow(2).sum()) for p in model.fc2.parameters()))
    opt.zero_grad()  # a tracked loop may zero them before logging: the hooks kept the norms
    delta = math.sqrt(sum(float((p.detach() - b).pow(2).sum())
                          for p, b in zip(model.fc2.parameters(), before, strict=True)))
    weight = math.sqrt(sum(float(b.pow(2).sum()) for b in before))
    got = watch.collect(steps=2)  # the ratio is per update
    assert got["layer/fc2/grad_norm"] == pytest.approx(grad, rel=1e-5)
    assert got["layer/fc2/update_ratio"] == pytest.approx(delta / weight / 2, rel=1e-5)
    assert got["layer/fc1/grad_norm"] == 0.0


class Calls(torch.overrides.TorchFunctionMode):
    """Counts the torch calls made inside the block (attribute reads such as ``p.grad`` aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += getattr(func, "__name__", "") != "__get__"
        return func(*args, **(kwargs or {}))


def collect_calls(depth: int) -> int:
    """Torch calls of one ``collect`` on a ``depth``-layer MLP, after one update."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(4, 4) for _ in range(depth)])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    watch = LayerWatch(model)
    watch.arm()
    step(model, opt, torch.randn(8, 4), torch.randint(0, 4, (8,)))
    with Calls() as calls:
        got = watch.collect()
    assert len(got) == 2 * depth and all(v > 0 for v in got.values())
    return calls.n


def test_collect_makes_the_same_few_torch_calls_whatever_the_number_of_layers():
    # its cost on a small model is the number of torch calls (5-15 us each in a training
    # process), so it must not grow with the parameters: fused norms, one host transfer
    assert collect_calls(12) == collect_calls(2) <= 8


def test_dead_units_count_the_first_examples_of_the_first_pass_only():
    # unit j of the Linear layer fires only on inputs whose column j is positive
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3))
        model[0].bias.zero_()
    x = -torch.ones(300, 3)
    x[:256, 0] = 1.0  # unit 0 fires within the probe's 256 examples
    x[299, 1] = 1.0  # unit 1 only on the 300th example: beyond the probe, dead
    again = torch.ones(10, 3)  # a second pass in the block: every unit would fire
    watch = LayerWatch(model)
    with torch.no_grad(), watch.dead_units() as got:
        model(x)
        model(again)
    assert got == {"layer/0/dead_frac": pytest.approx(2 / 3)}
    with torch.no_grad(), watch.dead_units(examples=300) as got:
        model(x)
    assert got == {"layer/0/dead_frac": pytest.approx(1 / 3)}
    assert all(not m._forward_hooks for m in model.modules())


def test_dead_units_at_counts_every_second_evaluation_and_the_last():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU())
    watch = LayerWatch(model)
    counted = []
    for i, last in enumerate([False] * 5 + [True]):
        with torch.no_grad(), watch.dead_units_at(last) as got:
            model(torch.randn(4, 2))
        if got:
            counted.append(i)
    assert counted == [0, 2, 4, 5]


def test_loop_records_per_layer_signals_and_watch_false_changes_nothing_else():
    end, _, rows = collect(config())
    spe = end.summary["steps_per_epoch"]
    assert end.summary["layers"] == ["1", "3"]  # the mlp's Linear layers, in model order
    assert [s for s, _ in series(rows, "layer/1/grad_norm")] == [1, spe + 1, 2 * spe + 1]
    assert all(v > 0 for _, v in series(rows, "layer/3/update_ratio"))
    # dead units at every DEAD_EVERY-th (2nd) evaluation, the first included, and the last
    assert [s for s, _ in series(rows, "layer/1/dead_frac")] == [0, 2 * spe, 3 * spe]
    off_end, _, off = collect(config(watch=False))
    assert not [r for r in off if r[0].startswith("layer/")] and "layers" not in off_end.summary
    assert series(rows, "train_loss") == series(off, "train_loss")
    assert config().run_id() == config(watch=False).run_id()  # what is recorded, not the run


def test_track_watch_records_layers_whatever_the_loop_zeroes(tmp_path):
    torch.manual_seed(0)
    model, x, y = Cut(), torch.randn(64, 4), torch.randint(0, 2, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with bl.track("t", {"batch_size": 16, "n_train": 64}, store=tmp_path / "s.db") as run:
        with pytest.raises(SpecError, match="run.watch needs the torch.nn.Module"):
            run.watch(model.parameters())
        run.watch(model)
        n = 0
        for _ in range(2):
            for i in range(0, 64, 16):
                nn.functional.cross_entropy(model(x[i:i + 16]), y[i:i + 16]).backward()
                opt.step()
                opt.zero_grad()  # after the step: the hooks saw the gradients already
                n += 1
                run.log(n, train_loss=1.0)
            run.log(n, val_loss=1.0)
    with Store(tmp_path / "s.db") as st:
        rec = st.runs("t")[0]
        m = st.metrics(rec.id)
    assert m["layer/fc2/grad_norm"].step.tolist() == [5] and m["layer/fc2/grad_norm"].value[0] > 0
    assert m["layer/fc1/grad_norm"].value.tolist() == [0.0]
    assert m["layer/fc1/dead_frac"].step.tolist() == [5]
    assert rec.summary["layers"] == ["fc1", "fc2"]
    assert all(not p._post_accumulate_grad_hooks for p in model.parameters()
               if getattr(p, "_post_accumulate_grad_hooks", None) is not None)


def test_summary_lists_layers_in_model_order_and_those_frozen_on_purpose():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    model[0].requires_grad_(False)
    watch = LayerWatch(model)
    assert watch.summary() == {"layers": ["0", "2"]}
    assert watch.summary(frozen_on_purpose=True) == {"layers": ["0", "2"], "frozen_layers": ["0"]}
