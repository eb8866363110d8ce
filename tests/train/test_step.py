"""The training step chosen once per run: the plain three lines for the defaults, the general
(accumulating, mixed-precision) step otherwise; both give the same update."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from batchlab.train.accumulate import accumulate_gradients
from batchlab.train.precision import make_precision
from batchlab.train.step import make_train_step

CPU = torch.device("cpu")


def setup(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g))
            for n in (16, 16, 16, 5)]  # a short last batch, as at an epoch end


def general_step(model, optimizer, micro, precision):
    """The update spelled out with the general building blocks, for comparison."""
    def step(xb, yb):
        optimizer.zero_grad(set_to_none=True)
        loss = accumulate_gradients(model, F.cross_entropy, xb, yb, micro, precision)
        precision.step(optimizer)
        return loss
    return step


def test_the_default_step_is_the_plain_one_and_equals_the_general_step_bit_for_bit():
    fp32 = make_precision("fp32", CPU)
    model_a, opt_a = setup()
    plain = make_train_step(model_a, F.cross_entropy, opt_a, 16, 16, fp32)
    assert plain.__name__ == "plain_step"
    model_b, opt_b = setup()
    general = general_step(model_b, opt_b, 16, fp32)
    for xb, yb in batches():
        loss_a, loss_b = plain(xb, yb), general(xb, yb)
        assert not loss_a.requires_grad and loss_a.dtype == torch.float32 and loss_a.dim() == 0
        assert loss_a.dtype == loss_b.dtype
        assert torch.equal(loss_a, loss_b)
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(("precision", "micro"), [("fp32", 8), ("bf16", 16), ("fp16", 16)])
def test_accumulation_or_mixed_precision_takes_the_general_step(precision, micro):
    prec = make_precision(precision, CPU)
    model_a, opt_a = setup()
    step = make_train_step(model_a, F.cross_entropy, opt_a, 16, micro, prec)
    assert step.__name__ == "step"
    model_b, opt_b = setup()
    expected = general_step(model_b, opt_b, micro, make_precision(precision, CPU))
    for xb, yb in batches():
        assert torch.equal(step(xb, yb), expected(xb, yb))
    for a, b in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_batchnorm_models_partial_batch_never_forwards_one_example_alone():
    # batch 8 in micro-batches of 2: an epoch's last batch of 3 would end with a part of 1,
    # which BatchNorm refuses in training; that part joins the one before (one forward of 3)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sizes: list[int] = []
    model[1].register_forward_pre_hook(lambda _m, args: sizes.append(len(args[0])))
    step = make_train_step(model, F.cross_entropy, opt, 8, 2, make_precision("fp32", CPU))
    g = torch.Generator().manual_seed(1)
    loss = step(torch.randn(3, 6, generator=g), torch.randint(0, 3, (3,), generator=g))
    assert torch.isfinite(loss) and sizes == [3]
    step(torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g))
    assert sizes == [3, 2, 2, 2, 2]  # a full batch keeps its equal parts
