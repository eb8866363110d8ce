"""train.precision (autocast, fp16's grad scaler) and train.channels_last, in the loop and alone."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchlab.errors import SpecError
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.train.inputs import RunInputs, spec_model
from batchlab.train.loop import evaluate, train_run
from batchlab.train.precision import as_channels_last, check_channels_last, make_precision

CPU = torch.device("cpu")
needs_cuda = pytest.mark.cuda  # skipped without a CUDA GPU (tests/conftest.py)


def config(model=None, data=None, **train) -> RunConfig:
    s = spec_from_dict({
        "data": data or {"name": "digits", "limit": 500},
        "model": model or {"name": "mlp", "hidden": [64]},
        "train": {"lr": 0.1, "threads": 1, "checkpoint": False,
                  **({} if "steps" in train else {"epochs": 3}), **train},
    })
    return RunConfig(data=s.data, model=s.model, train=s.train)


def run(cfg):
    models = []

    def build(spec, data):
        models.append(spec_model(spec, data))
        return models[-1]

    end = train_run(cfg, lambda e: None, inputs=RunInputs(build_model=build))
    return end, models[0]


@pytest.fixture(scope="module")
def fp32_end():
    return run(config())[0]


def test_fp32_is_no_autocast_and_no_scaler():
    p = make_precision("fp32", CPU)
    assert p.scaler is None
    with p.autocast():
        assert not torch.is_autocast_enabled("cpu")


def test_fp16_gets_a_grad_scaler_and_bf16_none():
    assert make_precision("bf16", CPU).scaler is None
    assert isinstance(make_precision("fp16", CPU).scaler, torch.amp.GradScaler)


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_to_the_fp32_accuracy_on_cpu(precision, fp32_end):
    fp32 = fp32_end
    end, _ = run(config(precision=precision))
    assert end.status == "completed", end.error
    assert end.summary["final_val_acc"] > 0.85
    assert end.summary["final_val_acc"] == pytest.approx(fp32.summary["final_val_acc"], abs=0.04)


class DtypeSpy(nn.Module):
    """A linear model recording the dtype of its output (bfloat16 under bf16 autocast)."""

    def __init__(self):
        super().__init__()
        self.fc, self.seen = nn.Linear(4, 3), []

    def forward(self, x):
        out = self.fc(x)
        self.seen.append(out.dtype)
        return out


def test_evaluation_runs_under_the_runs_autocast():
    model, x, y = DtypeSpy(), torch.randn(10, 4), torch.randint(0, 3, (10,))
    loss, acc = evaluate(model, x, y, F.cross_entropy, make_precision("bf16", CPU))
    assert model.seen == [torch.bfloat16] and 0 <= acc <= 1 and loss > 0
    evaluate(model, x, y, F.cross_entropy)
    assert model.seen[-1] == torch.float32


def test_bf16_computes_the_loss_in_float32_from_bf16_logits():
    """Why the loop does not cast the logits before the loss: under CPU bf16 autocast
    cross_entropy is on torch's float32 list, so the loss and its gradient are exactly those of
    the logits cast to float32 (bench/README.md: bf16's accuracy on the quality cases)."""
    torch.manual_seed(0)
    model, x, y = nn.Linear(4, 3), torch.randn(16, 4), torch.randint(0, 3, (16,))
    grads = []
    for cast in (False, True):
        model.zero_grad()
        with make_precision("bf16", CPU).autocast():
            logits = model(x)
            loss = F.cross_entropy(logits.float() if cast else logits, y)
        assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
        loss.backward()
        grads.append((loss.detach(), model.weight.grad.clone()))
    assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])


def test_channels_last_puts_conv_weights_and_inputs_in_channels_last():
    cfg = config({"name": "lenet5"}, {"name": "synthetic", "shape": [3, 28, 28], "size": 120},
                 steps=2, batch_size=16, channels_last=True)
    end, model = run(cfg)
    assert end.status == "completed", end.error
    convs = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert not all(w.is_contiguous() for w in convs)  # really reordered, not trivially both
    x = torch.randn(2, 3, 4, 5)
    assert as_channels_last(x).is_contiguous(memory_format=torch.channels_last)
    assert as_channels_last(torch.randn(2, 3)).is_contiguous()  # other ranks unchanged


def test_channels_last_on_flat_data_is_refused_with_the_fix():
    with pytest.raises(SpecError, match=r"examples have shape \(12,\); set train.channels_last = false"):
        check_channels_last((12,))
    end, _ = run(config(data={"name": "synthetic", "shape": [12], "size": 100}, channels_last=True))
    assert end.status == "failed" and "train.channels_last = true needs image inputs" in end.error


@needs_cuda
def test_fp16_on_cuda_trains_with_a_grad_scaler():
    p = make_precision("fp16", torch.device("cuda"))
    assert p.scaler is not None and p.scaler.is_enabled()
    for precision in ("fp16", "bf16"):
        end, model = run(config({"name": "lenet5"}, {"name": "synthetic", "shape": [1, 28, 28],
                                                    "size": 512}, device="cuda", batch_size=64,
                                epochs=2, precision=precision, channels_last=True))
        assert end.status == "completed", end.error
        assert end.summary["final_val_acc"] > 0.5  # synthetic classes are separable
        assert next(model.parameters()).is_cuda
