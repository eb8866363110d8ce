"""The trial strategy: candidates below the range test's minimum, confirmed by short runs."""

import math

import pytest
import torch

from batchlab.data import load_dataset
from batchlab.probes.lr_trial import (
    CANDIDATES,
    LADDER,
    MAX_TRIAL_STEPS,
    MIN_TRIAL_STEPS,
    Baseline,
    Trial,
    choose,
    confirm_lr,
    ladder,
    refine,
    trial_steps,
)
from batchlab.spec import RunConfig, spec_from_dict

DATA = {"name": "synthetic", "shape": [12], "classes": 3, "size": 400}


def config(**train) -> RunConfig:
    s = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                        "train": {"batch_size": 32, "lr": 0.05, "threads": 1, "epochs": 5, **train}})
    return RunConfig(data=s.data, model=s.model, train=s.train)


def test_the_ladder_goes_down_from_the_anchor_in_half_decades():
    lrs = ladder(1.0)
    assert len(lrs) == CANDIDATES and lrs[-1] == 1.0 and lrs == sorted(lrs)
    assert [b / a for a, b in zip(lrs, lrs[1:], strict=False)] == pytest.approx([LADDER] * (CANDIDATES - 1))
    assert lrs[0] == pytest.approx(0.01)


def test_a_trial_lasts_about_an_epoch_within_bounds_and_never_past_the_run():
    assert trial_steps(3200, 32, None, 10) == 100  # one epoch
    assert trial_steps(320, 32, None, 10) == MIN_TRIAL_STEPS  # a 10-step epoch ranks by noise
    assert trial_steps(10**6, 32, None, 1) == MAX_TRIAL_STEPS  # a huge epoch is capped
    assert trial_steps(320, 32, 12, None) == 12  # never longer than the user's run
    assert trial_steps(1000, 256, None, 2) == 8  # 4 steps per epoch x 2 epochs


def trials(losses, rejected=()):
    return [Trial(lr, 10, loss, 0.5, "x" if i in rejected else None)
            for i, (lr, loss) in enumerate(zip(ladder(1.0), losses, strict=True))]


def test_refine_moves_towards_the_better_neighbour_by_at_most_half_a_step():
    ts = trials([2.0, 1.0, 0.5, 0.6, 1.5])
    lr = refine(ts, 2)
    assert ts[2].lr < lr < ts[3].lr  # the right neighbour is nearly as good
    assert lr <= ts[2].lr * LADDER ** 0.5 + 1e-12
    symmetric = trials([2.0, 1.0, 0.5, 1.0, 2.0])
    assert refine(symmetric, 2) == pytest.approx(symmetric[2].lr)
    # a near-tie on one side, a cliff on the other: at most half a step towards the tie
    steep = trials([2.0, 0.50, 0.49, 50.0, 90.0])
    assert steep[2].lr / LADDER ** 0.5 - 1e-12 <= refine(steep, 2) < steep[2].lr


def test_refine_keeps_the_best_at_the_edges_and_next_to_a_rejected_candidate():
    ts = trials([0.5, 1.0, 2.0, 3.0, 4.0])
    assert refine(ts, 0) == ts[0].lr
    ts = trials([3.0, 2.0, 1.0, 0.9, math.nan], rejected=(0,))
    assert refine(ts, 1) == ts[1].lr  # a rejected neighbour below: no parabola


def test_refine_steps_back_from_the_edge_of_what_trains():
    ts = trials([3.0, 2.0, 1.0, 0.9, math.nan], rejected=(4,))
    assert refine(ts, 3) == pytest.approx(ts[3].lr / LADDER ** 0.5)
    flat = trials([1.0, 1.0, 1.0, 1.0, 1.0])
    assert refine(flat, 2) == flat[2].lr


def test_confirm_rejects_the_diverging_candidates_and_picks_one_that_trains():
    cfg = config()
    data = load_dataset(cfg.data)
    out = confirm_lr(cfg, data, anchor=1e4)  # the ladder runs 100 .. 1e4: every LR blows up
    assert out.lr is None and all(t.rejected for t in out.trials)
    assert "every candidate LR" in out.reason and "set train.lr yourself" in out.reason
    out = confirm_lr(cfg, data, anchor=3.0)  # 0.03 .. 3
    assert out.lr is not None and out.initial_val_loss > 0
    kept = [t for t in out.trials if t.rejected is None]
    assert kept and min(t.lr for t in kept) <= out.lr <= max(t.lr for t in kept) * LADDER ** 0.5
    top = max(t.val_acc for t in kept)
    assert top > 0.9  # three well separated classes
    assert out.steps == sum(t.steps for t in out.trials)
    named = [t for t in kept if f"at lr {t.lr:.3g}" in out.reason]
    assert len(named) == 1 and named[0].val_acc >= top - 0.05  # the best, or tied with it
    assert named[0].val_loss == min(t.val_loss for t in kept if t.val_acc >= named[0].val_acc)


def test_confirm_is_deterministic_and_leaves_the_global_rng_alone():
    cfg = config()
    data = load_dataset(cfg.data)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = confirm_lr(cfg, data, anchor=1.0, steps=5)
    assert torch.equal(torch.get_rng_state(), before)
    b = confirm_lr(cfg, data, anchor=1.0, steps=5)
    assert a == b


def test_learned_means_a_lower_loss_or_an_accuracy_clearly_above_chance():
    base = Baseline(val_loss=2.3, chance_acc=0.1, n_val=400)  # se(0.1) = 0.015
    assert base.learned(2.0, 0.1)  # the loss fell
    assert base.learned(2.43, 0.33)  # a BatchNorm net early at a high LR: loss up, accuracy up
    assert not base.learned(2.3, 0.12)  # within two standard errors of chance
    assert not base.learned(6.8, 0.11)
    assert not base.learned(math.nan, math.nan)


def test_choose_takes_the_best_accuracy_and_breaks_ties_within_noise_by_loss():
    base = Baseline(2.3, 0.1, 360)  # se(0.908) = 0.015
    ts = [Trial(0.007, 30, 1.76, 0.708, None), Trial(0.023, 30, 0.64, 0.908, None),
          Trial(0.074, 30, 0.25, 0.906, None), Trial(0.23, 30, 0.33, 0.894, None),
          Trial(0.74, 30, 0.69, 0.853, None)]
    assert choose(ts, base) == 2  # 0.906 ties 0.908 within noise, at a far lower loss
    ts[1] = Trial(0.023, 30, 0.64, 0.960, None)
    assert choose(ts, base) == 1  # now clearly the most accurate
    ts[1] = Trial(0.023, 30, 0.64, 0.960, "x")
    assert choose(ts, base) == 2  # rejected trials never win
    assert choose([Trial(1.0, 3, math.nan, math.nan, "x")], base) is None
    no_acc = [Trial(0.1, 5, 0.5, math.nan, None), Trial(0.3, 5, 0.4, math.nan, None)]
    assert choose(no_acc, base) == 1  # without accuracy the loss decides
