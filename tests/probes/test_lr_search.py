"""lr_find over seeds, batch sizes and strategies on a tiny synthetic problem."""

import json
import math

import pytest
from lr_problem import QUICK, config

from batchlab.probes.common import ProbeError
from batchlab.probes.lr_search import lr_find
from batchlab.store import Store


def test_an_unknown_strategy_is_a_probe_error():
    with pytest.raises(ProbeError, match="unknown LR suggestion strategy"):
        lr_find(config(), strategy="magic")


def test_lr_find_over_two_batch_sizes_fits_alpha_and_stores(tmp_path):
    result = lr_find(config(), batch_sizes=[16, 64], repeats=2, strategy="trial", **QUICK)
    assert [b.batch_size for b in result.per_batch] == [16, 64]
    assert result.alpha is not None and math.isfinite(result.alpha)
    assert result.batch_size == 16 and result.suggested_lr == result.lr_for(16)
    for b in result.per_batch:
        assert b.lr is not None and b.lr_min <= b.lr <= b.lr_max
        assert len(b.tests) == 2 and [t.seed for t in b.tests] == [0, 1]
        assert set(b.by_strategy) == {"trial", "valley", "steepest", "minimum_div_10"}
        assert b.by_strategy["trial"] == b.lr and len(b.trials) == 5
        # two range tests of 40 steps at most, plus five trials of at most 30 steps each
        assert 0 < b.cost_steps <= 2 * 40 + 5 * 30
        assert b.cost_epochs == pytest.approx(b.cost_steps / math.ceil(320 / b.batch_size))
    d = result.to_dict()
    json.dumps(d, allow_nan=False)
    assert {"lrs", "losses", "suggested_lr", "batch_sizes", "suggestions", "alpha"} <= set(d)
    assert d["suggestions"] == {"16": result.lr_for(16), "64": result.lr_for(64)}
    with Store(tmp_path / "s.db") as store:
        store.add_probe("exp", "lr_range", config().model_dump(mode="json"), d)
        assert store.probes("exp", "lr_range")[0].result["alpha"] == pytest.approx(result.alpha)


def test_alpha_needs_two_batch_sizes():
    result = lr_find(config(), repeats=1, **QUICK)
    assert result.alpha is None and "2 or more batch sizes" in result.alpha_reason


def test_lr_find_text_names_the_range_test_horizon_ran_with_its_cost():
    from batchlab.cli.probes import range_test_line

    # --repeats 1: one range test beside the miniatures, paid from the same budget
    result = lr_find(config(), repeats=1, **QUICK)
    (b,) = result.per_batch
    assert len(b.tests) == 1
    steps = len(b.tests[0].lrs)
    line = range_test_line(b)
    assert line is not None and line.startswith(
        f"batch 32: range test (1 seed, {steps} steps, "
        f"{steps * 32 / 320:.2f} of this batch's {b.cost_epochs:.2f} epochs), shown beside the "
        "answer, not used for it: ")
    for rule in ("valley", "steepest", "minimum_div_10"):
        assert f"{rule} " in line
    assert "horizon" not in line
    # without one (the default), nothing to say
    assert range_test_line(lr_find(config(), **QUICK).per_batch[0]) is None
