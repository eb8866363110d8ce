"""The LR scaling rule: exact values for the linear and sqrt rules."""

from __future__ import annotations

import math

import pytest

from batchlab.errors import SpecError
from batchlab.train.scaling import scaled_lr


@pytest.mark.parametrize(
    "lr,batch,rule,base,want",
    [
        (0.1, 128, "linear", 32, 0.4),
        (0.1, 128, "sqrt", 32, 0.2),
        (0.1, 128, "none", 32, 0.1),
        (0.1, 8, "linear", 32, 0.025),
        (0.1, 8, "sqrt", 32, 0.05),
        (0.05, 256, "linear", 256, 0.05),
        (0.05, 256, "sqrt", 256, 0.05),
        (0.01, 96, "linear", 32, 0.03),
        (0.01, 64, "sqrt", 32, 0.01 * math.sqrt(2)),
    ],
)
def test_scaled_lr_values(lr, batch, rule, base, want):
    assert math.isclose(scaled_lr(lr, batch, rule, base), want, rel_tol=1e-12)


def test_exact_for_powers_of_two():
    assert scaled_lr(0.1, 128, "linear", 32) == 0.4
    assert scaled_lr(0.1, 128, "sqrt", 32) == 0.2
    assert scaled_lr(0.1, 128, "none", 32) == 0.1


def test_sqrt_is_half_of_linear_in_log_space():
    for batch in (1, 7, 48, 1000):
        lin = scaled_lr(1.0, batch, "linear", 32)
        assert math.isclose(scaled_lr(1.0, batch, "sqrt", 32) ** 2, lin, rel_tol=1e-12)


def test_unknown_rule():
    with pytest.raises(SpecError, match=r"train\.scale_lr"):
        scaled_lr(0.1, 64, "cubic", 32)  # type: ignore[arg-type]


@pytest.mark.parametrize("batch,base", [(0, 32), (32, 0)])
def test_bad_batch_sizes(batch, base):
    with pytest.raises(ValueError):
        scaled_lr(0.1, batch, "linear", base)
