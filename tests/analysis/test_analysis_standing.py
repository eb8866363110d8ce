"""The rules a run's own numbers imply (issue 8), pinned on hand-made curves: collapsed, healthy
only within noise of the sweep's best (or clearly trained alone), true initial losses, not
converged only beyond the curve's noise, and the loss-only case."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_curves import healthy_metrics, per_epoch, per_step

from batchlab.analysis import RunContext, Thresholds, diagnose_run

LN10 = math.log(10)
TEN = RunContext(n_classes=10)


def kinds(found) -> list[str]:
    return [f.kind for f in found]


def only(found, kind: str):
    (match,) = [f for f in found if f.kind == kind]
    return match


def collapsing_run() -> dict:
    """Learns to 92.5% by epoch 8, collapses at epoch 12 to 17.8% with the loss back at ln 10."""
    acc = lambda e: np.where(e < 12, np.minimum(0.925, 1 - np.exp(-e / 2)), 0.178)  # noqa: E731
    loss = lambda e: np.where(e < 12, 0.25 + 2.05 * np.exp(-e / 2), 2.29)  # noqa: E731
    return {"val_acc": per_epoch(acc), "train_acc": per_epoch(acc), "val_loss": per_epoch(loss),
            "train_eval_loss": per_epoch(loss)}


# ------------------------------------------------------------------------------ collapsed
def test_a_run_that_collapses_from_92_to_18_percent_is_collapsed_and_says_when():
    found = diagnose_run(collapsing_run(), "completed", {}, context=TEN)
    assert "healthy" not in kinds(found) and kinds(found)[0] == "collapsed"
    f = only(found, "collapsed")
    assert f.step == 120 and f.epoch == 12  # the first evaluation after the fall
    assert "collapsed at step 120 (epoch 12): val acc fell from 92.5%" in f.message
    assert "to 17.8%" in f.message and "keeping 9.45% of its gain over chance" in f.message
    assert f.numbers["best_val_acc"] == pytest.approx(0.925)


def test_a_final_val_acc_of_15_percent_on_10_classes_is_at_chance_never_healthy():
    m = healthy_metrics()
    m["val_acc"] = per_epoch(lambda e: 0.15 * (1 - np.exp(-e)))
    found = diagnose_run(m, "completed", {}, context=TEN)
    f = only(found, "collapsed")
    assert "healthy" not in kinds(found)
    assert "never rose above chance" in f.message and "<= 15%" in f.message
    assert f.numbers["chance_level"] == pytest.approx(0.15)


def test_the_loss_back_at_ln_classes_is_collapsed_without_any_accuracy():
    loss = lambda e: np.where(e < 10, 0.3 + 2.0 * np.exp(-e / 2), LN10 * 1.01)  # noqa: E731
    m = {"train_eval_loss": per_epoch(loss), "val_loss": per_epoch(loss)}
    f = only(diagnose_run(m, "completed", {}, context=TEN), "collapsed")
    assert f.step == 100 and f.numbers["chance_loss"] == pytest.approx(LN10)
    assert "then came back to 2.33" in f.message and "ln 10 = 2.3" in f.message


def test_a_loss_that_never_fell_is_no_collapse_of_the_loss():
    m = {"train_eval_loss": per_epoch(lambda e: LN10 - 0.001 * e)}
    assert "collapsed" not in kinds(diagnose_run(m, "completed", {}, context=TEN))


def test_overfitting_giving_back_a_few_points_is_not_collapsed():
    m = healthy_metrics()
    m["val_acc"] = per_epoch(lambda e: np.where(e < 10, 0.9, 0.84))
    assert "collapsed" not in kinds(diagnose_run(m, "completed", {}, context=TEN))


def test_the_number_of_classes_comes_from_the_summary_and_nothing_without_it():
    m = collapsing_run()
    assert "collapsed" in kinds(diagnose_run(m, "completed", {"num_classes": 10}))
    assert "collapsed" not in kinds(diagnose_run(m, "completed", {}))  # chance unknown: silent


# ------------------------------------------------------------------------------ healthy
def sweep(best: float, noise: float | None = None) -> RunContext:
    return RunContext(n_classes=10, sweep_best_val_acc=best, noise=noise)


def test_healthy_only_within_noise_of_the_sweeps_best():
    m = healthy_metrics()  # ends at 97%
    f = only(diagnose_run(m, "completed", {}, context=sweep(0.975)), "healthy")
    assert "within noise (1 point) of the sweep's best 97.5%" in f.message
    below = only(diagnose_run(m, "completed", {}, context=sweep(0.995)), "below_best")
    assert "2.5 points under the best configuration's 99.5% (noise 1 point)" in below.message
    # a larger seed noise widens the band
    assert kinds(diagnose_run(m, "completed", {}, context=sweep(0.995, noise=0.03))) == ["healthy"]


def test_the_runs_own_scatter_widens_the_noise():
    m = healthy_metrics()
    wobble = np.where(np.arange(21) % 2 == 0, 0.015, -0.015)
    m["val_acc"] = per_epoch(lambda e: 0.95 * (1 - np.exp(-e / 2)) + np.where(e > 5, wobble, 0))
    # ends at 96.5%, 1.3 points under the best: beyond the 1-point floor, within its own scatter
    f = only(diagnose_run(m, "completed", {}, context=sweep(0.978)), "healthy")
    assert 0.013 < f.numbers["noise"] < 0.02
    assert kinds(diagnose_run(m, "completed", {}, context=sweep(0.99))) == ["below_best"]


def under_trained_run() -> dict:
    """Batch 256 / lr 0.003: val acc creeps to 73%, train loss 2.32 -> 2.08 (a straight line)."""
    return {"val_acc": per_epoch(lambda e: 0.1 + 0.0315 * e),
            "train_acc": per_epoch(lambda e: 0.1 + 0.0315 * e),
            "val_loss": per_epoch(lambda e: 2.32 - 0.012 * e),
            "train_eval_loss": per_epoch(lambda e: 2.32 - 0.012 * e)}


def test_an_under_trained_run_is_not_healthy_in_a_sweep():
    found = diagnose_run(under_trained_run(), "completed", {}, context=sweep(0.97))
    f = only(found, "not_converged")
    assert "healthy" not in kinds(found)
    assert f.numbers["rate_ratio"] == pytest.approx(1.0)  # still falling at its average rate


def test_an_under_trained_run_alone_is_undertrained():
    m = under_trained_run()
    found = diagnose_run(m, "completed", {}, Thresholds(not_converged_rate=2.0), TEN)
    f = only(found, "undertrained")
    assert "the training loss fell only 10.3% (2.32 -> 2.08)" in f.message
    alone = diagnose_run(healthy_metrics(), "completed", {}, context=TEN)
    assert kinds(alone) == ["healthy"]


# ------------------------------------------------------------------------------ true numbers
def test_exploding_quotes_the_loss_before_the_blow_up_not_a_median_of_it():
    m = healthy_metrics()
    # the first loss is 2.34; from step 4 on it blows up to thousands within the first 10 steps
    m["train_loss"] = per_step(lambda s: np.where(s < 4, 2.34 - 0.01 * (s - 1), 2.3 * 10.0 ** (s / 3)), 30)
    f = only(diagnose_run(m, "completed", {}), "exploding")
    assert f.numbers["initial_loss"] == pytest.approx(2.33)
    assert "its initial 2.33" in f.message
    assert f.numbers["peak_loss"] == pytest.approx(2.3e10)


def test_a_flat_noisy_val_loss_is_not_not_converged():
    rng = np.random.default_rng(3)
    m = healthy_metrics()
    noise = rng.normal(0, 0.02, 21)
    noise[16], noise[20] = 0.03, -0.03  # the end points alone would say it fell 20%
    m["val_loss"] = per_epoch(lambda e: 0.3 + noise)
    assert "not_converged" not in kinds(diagnose_run(m, "completed", {}))


def test_a_noisy_but_clearly_falling_val_loss_is_not_converged():
    rng = np.random.default_rng(4)
    m = healthy_metrics()
    m["val_loss"] = per_epoch(lambda e: 2.3 - 0.1 * e + rng.normal(0, 0.005, e.size))
    f = only(diagnose_run(m, "completed", {}), "not_converged")
    assert f.numbers["relative_fall"] > 0.05 and f.numbers["fall_noise"] < 0.1 * 0.4


# ------------------------------------------------------------------------------ loss only
def loss_run(final: float) -> dict:
    loss = lambda e: final + (2.0 - final) * np.exp(-e / 2)  # noqa: E731
    return {"train_eval_loss": per_epoch(loss), "val_loss": per_epoch(loss)}


def test_without_accuracy_the_loss_decides_healthy_in_a_sweep():
    ctx = RunContext(sweep_best_val_loss=0.2)
    assert kinds(diagnose_run(loss_run(0.205), "completed", {}, context=ctx)) == ["healthy"]
    f = only(diagnose_run(loss_run(0.4), "completed", {}, context=ctx), "below_best")
    assert "val loss ends at 0.4, 100% above the best configuration's 0.2" in f.message


def test_without_accuracy_a_lone_run_is_judged_by_its_loss():
    assert kinds(diagnose_run(loss_run(0.2), "completed", {})) == ["healthy"]
    assert kinds(diagnose_run(loss_run(1.5), "completed", {})) == ["undertrained"]


def test_alone_with_nothing_to_judge_the_level_by_gets_no_verdict():
    """Only a val acc and no number of classes: 'healthy' would be a guess."""
    m = {"val_acc": per_epoch(lambda e: 0.6 * (1 - np.exp(-e / 2)))}
    assert diagnose_run(m, "completed", {}) == []
    assert kinds(diagnose_run(m, "completed", {}, context=TEN)) == ["healthy"]


def test_a_short_runs_fall_from_its_start_is_no_noise():
    """Two epochs: the final window reaches back to the untrained model's loss; its fall is no
    scatter, so a val loss 2.6x the best's is below the best, not within noise."""
    ctx = RunContext(sweep_best_val_loss=0.04)
    short = {"val_loss": per_epoch(lambda e: np.array([0.83, 0.3, 0.104]), epochs=2)}
    f = only(diagnose_run(short, "completed", {}, context=ctx), "below_best")
    assert f.numbers["noise"] == pytest.approx(0.05)
    acc = {"val_acc": per_epoch(lambda e: np.array([0.1, 0.5, 0.7]), epochs=2)}
    assert kinds(diagnose_run(acc, "completed", {}, context=sweep(0.9))) == ["below_best"]
