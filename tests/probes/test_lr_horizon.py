"""The horizon strategy: miniatures of the run compared by successive halving, always an answer."""


import pytest
import torch
from torch import nn

from batchlab.data import load_dataset
from batchlab.plan import plan_runs
from batchlab.probes.lr_horizon import (
    BUDGET,
    CANDIDATES,
    MIN_STEPS,
    STEP,
    compressed,
    conventional_lr,
    horizon_lr,
    rung_steps,
)
from batchlab.probes.lr_range import HORIZON, default_range_steps, lr_find, resolve_auto_lr
from batchlab.spec import RunConfig, spec_from_dict

DATA = {"name": "synthetic", "shape": [12], "classes": 3, "size": 400}


def config(**train) -> RunConfig:
    s = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                        "train": {"batch_size": 32, "lr": 0.05, "threads": 1, "steps": 300, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)


def test_rungs_grow_by_three_end_at_a_tenth_of_the_run_and_fit_the_budget():
    rungs = rung_steps(3000, int(BUDGET * 3000), CANDIDATES)
    assert len(rungs) == 2 and rungs[1] == 3 * rungs[0] and rungs[1] <= 300
    assert CANDIDATES * rungs[0] + 3 * rungs[1] <= BUDGET * 3000
    # a short run: the rungs shrink to fit, never below MIN_STEPS
    short = rung_steps(100, int(BUDGET * 100), CANDIDATES)
    assert all(h >= MIN_STEPS for h in short) and len(short) == 1


def test_the_schedule_is_squeezed_into_the_trial_keeping_its_shape():
    cfg = config(schedule={"name": "multistep", "unit": "step", "milestones": [150, 225], "gamma": 0.1})
    f = compressed(cfg, 400, 30)  # the 300-step run in 30 steps: decays at trial steps 15 and 23
    assert [f(s) for s in (0, 14, 15, 22, 23, 29)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = compressed(config(schedule={"name": "cosine", "warmup": 30, "warmup_unit": "step"}), 400, 10)
    assert cos(0) == pytest.approx(1 / 30) and cos(1) == pytest.approx(1.0, abs=0.05)
    assert cos(9) < 0.05  # annealed at the end, as the run will be
    assert compressed(config(), 400, 7)(6) == 1.0


def test_conventional_lr_follows_the_optimizer_family():
    p = [nn.Parameter(torch.zeros(1))]
    assert conventional_lr(torch.optim.SGD(p, lr=1)) == 0.1
    assert conventional_lr(torch.optim.SGD(p, lr=1, momentum=0.9)) == 0.01
    assert conventional_lr(torch.optim.Adam(p)) == 1e-3
    assert conventional_lr(torch.optim.Adagrad(p)) == 0.01


def test_horizon_answers_within_its_ladder_and_costs_at_most_its_budget():
    cfg = config()
    data = load_dataset(cfg.data)
    out = horizon_lr(cfg, data, top=3.0)
    lrs = [t.lr for t in out.rungs[0]]
    assert lrs[-1] == pytest.approx(3.0) and lrs[0] == pytest.approx(3.0 / STEP ** (CANDIDATES - 1))
    assert min(lrs) <= out.lr <= max(lrs)
    assert out.steps == sum(t.steps for t in out.trials) <= BUDGET * 300
    assert out.confidence in ("high", "medium") and f"{out.lr:.3g}" in out.reason


def test_horizon_always_answers_even_when_nothing_learns():
    # labels the inputs cannot predict: every candidate "learned nothing"
    cfg = config()
    data = load_dataset(cfg.data)
    data = type(data)(**{**data.__dict__, "train_y": data.train_y[torch.randperm(len(data.train_y))],
                         "val_y": data.val_y[torch.randperm(len(data.val_y))]})
    out = horizon_lr(cfg, data, top=1e4)  # the whole ladder blows up, and its extension too
    assert out.lr > 0 and out.confidence == "low"
    assert "no candidate" in out.reason and "check the data" in out.reason


def test_without_a_range_test_and_nothing_learned_the_answer_is_the_conventional_lr():
    cfg = config()  # SGD with momentum: conventionally 0.01
    data = load_dataset(cfg.data)
    data = type(data)(**{**data.__dict__, "train_y": data.train_y[torch.randperm(len(data.train_y))],
                         "val_y": data.val_y[torch.randperm(len(data.val_y))]})
    out = horizon_lr(cfg, data, top=None)  # no edge from a range test; labels nothing can learn
    assert out.lr == pytest.approx(0.01) and out.confidence == "low"
    assert "conventional LR 0.01" in out.reason and "too short to tell" in out.reason


def test_lr_find_horizon_without_a_usable_range_test_starts_from_the_optimizers_default():
    cfg = config()
    # a range that blows up at once: the range test is not usable, the answer still comes
    res = lr_find(cfg, start_lr=1e4, end_lr=1e6)
    b = res.per_batch[0]
    assert res.suggested_lr is not None and b.confidence == "low"
    assert any("range test" in note for note in b.tried)
    assert any("conventional" in note for note in b.tried)


def test_lr_find_defaults_to_horizon_with_a_short_range_test_and_reports_its_cost():
    cfg = config()
    assert default_range_steps(HORIZON, cfg, 320) == 30  # a tenth of the 300-step run
    assert default_range_steps("valley", cfg, 320) == 100
    res = lr_find(cfg)
    b = res.per_batch[0]
    assert res.strategy == HORIZON and res.suggested_lr is not None and b.confidence is not None
    assert b.cost_steps == len(b.tests[0].lrs) + sum(t.steps for t in b.trials) <= 0.5 * 300
    d = res.to_dict()["per_batch"][0]
    assert d["confidence"] == b.confidence and d["rung_steps"] == b.rung_steps


def test_auto_lr_never_aborts_when_a_curve_rule_finds_nothing():
    spec = spec_from_dict({"name": "auto", "data": DATA, "model": {"name": "mlp", "hidden": [16]},
                           "train": {"batch_size": 32, "lr": "auto", "threads": 1, "steps": 200}})
    runs = plan_runs(spec)
    # a range far below anything that trains: the loss stays flat, valley suggests nothing
    resolved = resolve_auto_lr(runs, strategy="valley", start_lr=1e-9, end_lr=1e-8)
    assert resolved[0].config.train.lr > 0


def test_uninformed_answers_below_the_range_minimum_capped_by_the_miniatures_that_blew_up():
    from batchlab.probes.lr_horizon import PRIOR_BELOW, _stable_ceiling, _uninformed
    from batchlab.probes.lr_trial import Baseline, Trial

    base = Baseline(val_loss=2.3, chance_acc=0.1, n_val=500)
    calm = [Trial(lr, 11, 2.2, 0.2, None) for lr in (0.003, 0.01, 0.03)]
    # miniatures that barely learned and none blew up: a third of the range test's minimum
    out = _uninformed(0.03, 1e-3, True, calm[0], base, [calm], 33, [])
    assert out.lr == pytest.approx(0.03 / PRIOR_BELOW) and out.confidence == "low"
    # a range minimum far above LRs whose miniatures blew up (non-finite, or 10x the
    # untrained loss) is capped by the highest LR that stayed stable
    wild = calm + [Trial(0.1, 11, 2.9, 0.1, None), Trial(0.3, 11, 55.0, 0.1, "learned nothing"),
                   Trial(1.0, 3, float("nan"), float("nan"), "non-finite")]
    assert _stable_ceiling(wild, base, 4.6) == 0.1
    assert _stable_ceiling(wild[4:], base, 4.6) == 4.6  # none stable: nothing to cap with
    out = _uninformed(4.6, 1e-3, True, calm[0], base, [wild], 40, [])
    assert out.lr == pytest.approx(0.1 / PRIOR_BELOW)
    assert "did not blow up" in out.reason and "4.6" in out.reason
    # without a range test: the optimizer's conventional LR, whatever the miniatures did
    assert _uninformed(4.6, 1e-3, False, calm[0], base, [wild], 40, []).lr == 1e-3
