"""train_run with RunInputs: the caller's data, model, loss and optimizer instead of the spec's."""

import torch
from torch import nn

from batchlab.data.memory import InMemoryData
from batchlab.events import MetricRows
from batchlab.spec import ModelSpec, RunConfig, TrainSpec
from batchlab.train.inputs import RunInputs, has_accuracy
from batchlab.train.loop import evaluate, train_run


def regression_data(n=200):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])
    return InMemoryData.from_objects((x, y))


def run(data, inputs, **train):
    cfg = RunConfig(data=data.spec(), model=ModelSpec(name="python:Linear"),
                    train=TrainSpec(batch_size=20, epochs=3, lr=0.05, threads=1, **train))
    events = []
    end = train_run(cfg, events.append, inputs=inputs)
    rows = [r for e in events if isinstance(e, MetricRows) for r in e.rows]
    return end, rows


def test_regression_records_loss_only_and_learns():
    data = regression_data()
    inputs = RunInputs(load_data=data.dataset, build_model=lambda spec, d: nn.Linear(4, 1),
                       loss_fn=nn.MSELoss())
    end, rows = run(data, inputs)
    assert end.status == "completed", end.error
    names = {r[0] for r in rows}
    assert {"train_loss", "val_loss", "train_eval_loss"} <= names
    assert not names & {"val_acc", "train_acc"}
    assert "best_val_acc" not in end.summary and "final_val_acc" not in end.summary
    assert end.summary["num_classes"] is None
    val = [r[2] for r in rows if r[0] == "val_loss"]
    assert val[-1] < 0.2 * val[0]  # MSE of a linear target falls a lot in 3 epochs


def test_optimizer_factory_is_used():
    data = regression_data()
    made = []

    def make(spec, params, lr):
        opt = torch.optim.Adam(params, lr=lr)
        made.append(opt)
        return opt

    inputs = RunInputs(load_data=data.dataset, build_model=lambda spec, d: nn.Linear(4, 1),
                       loss_fn=nn.MSELoss(), make_optimizer=make)
    end, _ = run(data, inputs)
    assert end.status == "completed" and len(made) == 1
    assert made[0].state  # Adam kept moments: it took the steps


def test_evaluate_accuracy_only_for_class_scores():
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 1, 1])
    assert has_accuracy(logits, labels)
    assert not has_accuracy(logits[:, :1], labels.float())
    model = nn.Identity()
    loss, acc = evaluate(model, logits, labels)
    assert acc == 2 / 3
    loss, acc = evaluate(model, logits[:, :1], torch.zeros(3, 1), nn.MSELoss())
    assert acc is None and abs(loss - (4 + 0 + 9) / 3) < 1e-6


def test_noise_scale_in_a_run_uses_the_callers_loss():
    """The meter's micro-batch gradients are of the caller's loss, not of cross-entropy."""
    data = regression_data()
    calls = {"n": 0}

    def mse(out, y):
        calls["n"] += 1
        return ((out - y) ** 2).mean()

    def calls_of(**train):
        calls["n"] = 0
        inputs = RunInputs(load_data=data.dataset, build_model=lambda spec, d: nn.Linear(4, 1),
                           loss_fn=mse)
        end, rows = run(data, inputs, **train)
        assert end.status == "completed", end.error
        return calls["n"], end, rows

    plain, _, _ = calls_of()
    measured, end, rows = calls_of(measure_noise_scale=True, noise_scale_every=2)
    assert end.summary["noise_scale_measurements"] >= 10
    assert any(r[0] == "noise_scale" for r in rows)
    assert measured >= plain + 2 * end.summary["noise_scale_measurements"]


def test_evaluate_runs_in_eval_mode_and_leaves_the_model_in_the_mode_it_found():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 3))
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    model.train()
    first = evaluate(model, x, y)
    assert model.training and all(m.training for m in model.modules())
    assert evaluate(model, x, y) == first  # no dropout while evaluating: the same numbers
    model.eval()
    assert evaluate(model, x, y) == first
    assert not any(m.training for m in model.modules())  # was: always back in train mode


class BreaksLater(nn.Module):
    """Trains, then its forward calls torch with a wrong shape (as a bug on a rare batch would)."""

    def __init__(self):
        super().__init__()
        self.fc, self.calls = nn.Linear(4, 1), 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 5:
            return self.fc(x[:, :3])  # torch raises inside torch's own code
        return self.fc(x)


def test_a_failed_runs_error_names_the_users_line_not_torchs():
    import inspect

    data = regression_data()
    inputs = RunInputs(load_data=data.dataset, build_model=lambda spec, d: BreaksLater(),
                       loss_fn=nn.MSELoss())
    end, _ = run(data, inputs)
    line = inspect.getsource(BreaksLater).splitlines().index(
        "            return self.fc(x[:, :3])  # torch raises inside torch's own code")
    at = inspect.getsourcelines(BreaksLater)[1] + line
    assert end.status == "failed" and end.error.startswith("RuntimeError: mat1 and mat2 shapes")
    assert end.error.endswith(f"(at test_loop_inputs.py:{at} in forward)")
