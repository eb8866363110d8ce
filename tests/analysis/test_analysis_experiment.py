"""analyze_runs on a synthetic experiment built by hand: 4 batch sizes x 3 LRs x 2 seeds.

Each run's val accuracy rises as acc * (1 - exp(-step / tau(B))) to a known final accuracy that
peaks at a known LR per batch size, so the best config, the best LR per batch, the gap and the
steps to target are known in advance.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import regression_runs
from analysis_curves import healthy_metrics, per_step, record, series

from batchlab.analysis import ExperimentAnalysis, Thresholds, analyze_runs, fit_power_law
from batchlab.analysis import series as S

N = 2048
EPOCHS = 20
BATCHES = (16, 32, 64, 128)
LRS = (0.01, 0.02, 0.04)
BEST_LR = {16: 0.01, 32: 0.02, 64: 0.04, 128: 0.04}


def final_acc(b: int, lr: float) -> float:
    """0.95 at (16, 0.01); 2 points per x2 away from the batch's best LR, 0.5 per x2 of batch."""
    return 0.95 - 0.02 * abs(math.log2(lr / BEST_LR[b])) - 0.005 * math.log2(b / 16)


def tau(b: int) -> float:
    return 20 * (1 + 256 / b)


def full_rise(b: int) -> float:
    return 1 - math.exp(-EPOCHS * math.ceil(N / b) / tau(b))


def gap(b: int) -> float:
    return 0.01 + 0.01 * math.log2(b / 16)  # grows with the batch size


def synthetic_run(b: int, lr: float, seed: int, spread: float, *, status: str = "completed"):
    acc = final_acc(b, lr) + (spread if seed == 0 else -spread)
    spe = math.ceil(N / b)
    steps = np.arange(EPOCHS + 1) * spe
    kw = {"steps_per_epoch": spe, "seconds_per_step": 0.002 + 0.0001 * b, "n_train": N}
    rise = (1 - np.exp(-steps / tau(b))) / full_rise(b)  # exactly 1 at the end
    metrics = {
        "val_acc": series(acc * rise, steps, **kw),
        "train_acc": series((acc + gap(b)) * rise, steps, **kw),
        "val_loss": series(0.2 + 2.1 * (1 - rise), steps, **kw),
        "train_eval_loss": series(0.1 + 2.2 * (1 - rise), steps, **kw),
    }
    if status == "diverged":
        metrics["train_loss"] = per_step(lambda s: np.where(s < 50, 2.0, np.nan), 50, steps_per_epoch=spe)
    rec = record(f"b{b}-lr{lr}-s{seed}", {"batch_size": b, "lr": lr, "seed": seed}, status=status,
                 point={"train.batch_size": b, "train.lr": lr, "train.seed": seed})
    return rec, metrics


def experiment(spread: float = 0.001, seeds=(0, 1), diverged=()):
    return [synthetic_run(b, lr, s, spread, status="diverged" if (b, lr, s) in diverged else "completed")
            for b in BATCHES for lr in LRS for s in seeds]


@pytest.fixture(scope="module")
def result() -> ExperimentAnalysis:
    return analyze_runs(experiment(), "synthetic")


def test_groups_aggregate_seeds(result):
    assert len(result.runs) == 24 and len(result.groups) == 12
    g = result.groups[0]
    assert g["label"] == "batch 16, lr 0.01, constant" and g["n"] == 2 and g["point"] == {
        "train.batch_size": 16, "train.lr": 0.01}
    assert "seed" not in json.loads(g["key"])["train"]
    assert g["best_val_acc_mean"] == pytest.approx(0.95, abs=1e-4)
    assert g["best_val_acc_std"] == pytest.approx(0.001 * math.sqrt(2), rel=1e-3)
    assert g["gap_mean"] == pytest.approx(0.01, abs=1e-4) and g["reached"]


def test_best_config_and_runner_up_beyond_noise(result):
    best = result.best
    assert best["group"]["label"] == "batch 16, lr 0.01, constant"
    assert best["runner_up"]["label"] == "batch 32, lr 0.02, constant"
    assert best["difference"] == pytest.approx(0.005, abs=1e-4)
    assert best["noise_source"] == "seeds" and not best["within_noise"]
    assert ("the best two configs differ by 0.5 points, beyond seed noise (std 0.14 points); "
            "runner-up: batch 32, lr 0.02, constant (best val acc 94.5%).") in result.conclusions


def test_within_noise_with_a_large_seed_spread():
    best = analyze_runs(experiment(spread=0.01), "noisy").best
    assert best["within_noise"] and best["noise"] == pytest.approx(0.01 * math.sqrt(2), rel=1e-3)


@pytest.mark.parametrize("floor, within", [(0.01, True), (0.001, False)])
def test_single_seed_uses_the_noise_floor(floor, within):
    result = analyze_runs(experiment(spread=0.0, seeds=(0,)), "one", th=Thresholds(noise_floor=floor))
    assert result.best["noise_source"] == "threshold" and result.best["within_noise"] is within
    assert ("within" if within else "beyond") + " the single-seed noise floor" in " ".join(result.conclusions)


def test_best_lr_per_batch_and_its_exponent(result):
    assert [(r["batch_size"], r["lr"]) for r in result.best_lr_by_batch] == list(BEST_LR.items())
    expected = fit_power_law(list(BEST_LR), list(BEST_LR.values()))
    assert result.lr_exponent.alpha == pytest.approx(expected.alpha)
    text = " ".join(result.conclusions)
    # 0.70 is nearer 0.5 than 1, but its interval holds both: no rule may be named
    verdict = result.lr_rule
    assert verdict.rule is None and set(verdict.consistent) >= {"linear", "square-root"}
    assert verdict.grid_ratio == pytest.approx(2.0) and verdict.grid_halfwidth == pytest.approx(1 / 3)
    # the fit's own 95% interval: t(2 dof) x the standard error of the slope in log-log
    x, y = np.log(list(BEST_LR)), np.log(list(BEST_LR.values()))
    resid = y - np.polyval(np.polyfit(x, y, 1), x)
    se = math.sqrt(resid @ resid / 2 / ((x - x.mean()) @ (x - x.mean())))
    assert verdict.half_width == pytest.approx(4.303 * se, rel=1e-3)
    assert (f"best LR grows as B^{expected.alpha:.2f} ± {4.303 * se:.2f} (95%; R²={expected.r2:.2f}, "
            "4 batch sizes): cannot tell apart the linear rule") in text
    assert "closest" not in text
    assert "a finer LR grid (steps of x2 limit α to ±0.33" in text and "more batch sizes" in text


def test_time_to_target_per_batch(result):
    assert result.target == pytest.approx(0.95 * 0.951, rel=1e-4)  # 95% of the best seed's best
    for row in result.to_target_by_batch:
        b = row["batch_size"]
        acc = final_acc(b, BEST_LR[b])  # the mean over seeds is the unperturbed accuracy
        analytic = -tau(b) * math.log(1 - result.target / acc * full_rise(b))
        assert row["reached"] and abs(row["steps"] - analytic) < math.ceil(N / b)
        assert row["examples"] == pytest.approx(row["steps"] * b, rel=1e-6)
        assert row["epochs"] == pytest.approx(row["examples"] / N)
    fastest = min(result.to_target_by_batch, key=lambda r: r["wall_time"])
    text = " ".join(result.conclusions)
    assert (f"batch {fastest['batch_size']} reaches the target (val acc {result.target:.4g}) first in "
            f"wall time: {fastest['wall_time']:.3g} s") in text


def test_generalisation_gap_grows_with_batch(result):
    assert [r["gap"] for r in result.gap_by_batch] == pytest.approx([gap(b) for b in BATCHES], abs=1e-4)
    assert "gap (final train - val acc, best config per batch) grows with batch size: 1 point at " \
           "batch 16, 4 points at batch 128" in " ".join(result.conclusions)


def test_critical_batch_is_fitted_or_explained(result):
    text = " ".join(result.conclusions)
    if result.critical_batch is None:
        assert "no critical batch size:" in text
    else:
        assert f"critical batch size ≈ {result.critical_batch.b_crit:.3g}" in text


def test_a_scaling_rule_fits_the_effective_lr():
    runs = [(record(f"b{b}", {"batch_size": b, "scale_lr": "sqrt"},
                    summary={"effective_lr": 0.01 * math.sqrt(b / 32)}), healthy_metrics())
            for b in (32, 128, 512)]
    result = analyze_runs(runs, "sqrt")
    assert [r["lr"] for r in result.best_lr_by_batch] == [0.01] * 3
    assert result.lr_exponent.alpha == pytest.approx(0.5)
    assert ("best LR grows as B^0.50 ± 0.00 (95%; R²=1.00, 3 batch sizes): the square-root rule "
            "(lr ∝ √B); the interval excludes the linear rule") in " ".join(result.conclusions)


def test_a_config_that_diverged_for_one_seed_is_never_best():
    result = analyze_runs(experiment(diverged={(16, 0.01, 1)}), "div")
    assert result.best["group"]["label"] == "batch 32, lr 0.02, constant"
    assert result.groups[0]["n_diverged"] == 1 and not result.groups[0]["eligible"]
    assert "1 of 24 runs diverged: batch 16, lr 0.01, constant." in result.conclusions
    assert [f.kind for f in result.runs[1].findings][0] == "diverged"


def test_to_dict_is_strict_json(result):
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["best"]["group"]["label"] == "batch 16, lr 0.01, constant"
    assert data["runs"][0]["findings"][0]["kind"] in ("healthy", "not_converged")
    assert data["lr_exponent"]["n"] == 4


# ------------------------------------------------------------------------------ edge cases
def test_no_runs():
    result = analyze_runs([], "empty")
    assert result.runs == [] and result.groups == [] and result.best is None and result.target is None
    assert result.conclusions == ["experiment 'empty' has no runs: nothing to analyse yet."]
    json.dumps(result.to_dict(), allow_nan=False)


def test_all_runs_diverged():
    m = healthy_metrics()
    m["train_loss"] = per_step(lambda s: np.where(s < 30, 2.0, np.nan), 30)
    runs = [(record(f"r{i}", {"lr": 1.0, "seed": i}, status="diverged", summary={"diverged_at_step": 30}),
             m) for i in range(2)]
    result = analyze_runs(runs, "boom")
    assert result.best is None and all(r.findings[0].kind == "diverged" for r in result.runs)
    assert result.to_target_by_batch[0]["reached"] is False
    text = " ".join(result.conclusions)
    assert "all 2 runs diverged" in text and "no configuration qualifies as best" in text
    json.dumps(result.to_dict(), allow_nan=False)


def test_single_run():
    result = analyze_runs([(record("solo", {}), healthy_metrics())], "solo")
    assert result.best["group"]["n"] == 1 and result.best["runner_up"] is None
    assert not result.best["within_noise"] and result.lr_exponent is None
    assert result.critical_batch is None and result.runs[0].findings[0].kind == "healthy"
    text = " ".join(result.conclusions)
    assert result.conclusions[0] == "1 run in 'solo': 1 completed."
    assert "best config: batch 32, lr 0.01, constant: best val acc 0.97 (1 seed" in text
    assert "no critical batch size: a critical batch size needs steps-to-target at 3 or more" in text


def test_pending_runs_without_metrics():
    runs = [(record(f"p{i}", {"seed": i}, status="pending"), {}) for i in range(3)]
    result = analyze_runs(runs, "later")
    assert result.target is None and result.best is None
    assert all(r.findings == [] and r.hit is None for r in result.runs)
    assert result.groups[0]["n"] == 0 and result.groups[0]["n_runs"] == 3
    assert result.conclusions[:2] == [
        "3 runs in 'later': 3 pending.",
        "no run has recorded an evaluation yet: nothing to compare until they train "
        "('batchlab sweep' trains pending runs).",
    ]


def test_given_target_is_used_as_is(result):
    given = analyze_runs(experiment(), "synthetic", target=0.5)
    assert given.target == 0.5 and "target: val acc 0.5 (given)." in given.conclusions
    assert all(r.hit is not None and r.hit.target == 0.5 for r in given.runs)


def test_runs_are_judged_against_the_sweeps_best_and_chance():
    """A 2-config sweep on 10 classes: the collapsed run is named in the conclusions, the good
    one is healthy, and a run ending 5 points under the best is below_best, not healthy."""
    lower = healthy_metrics()
    lower["val_acc"] = series(0.92 * (1 - np.exp(-np.arange(21) / 2)), np.arange(21) * 10)
    collapsed = healthy_metrics()
    collapsed["val_acc"] = series(np.where(np.arange(21) < 12, 0.9, 0.11), np.arange(21) * 10)
    runs = [(record(name, {"lr": lr}, summary={"num_classes": 10}), m)
            for name, lr, m in (("good", 0.01, healthy_metrics()), ("lower", 0.1, lower),
                                ("gone", 1.0, collapsed))]
    result = analyze_runs(runs, "ten")
    found = {r.run_id: [f.kind for f in r.findings] for r in result.runs}
    assert found["good"] == ["healthy"] and found["lower"] == ["below_best"]
    assert found["gone"][0] == "collapsed"
    text = " ".join(result.conclusions)
    assert "1 run collapsed to chance (val acc at chance, or the loss back at ln C): batch 32, lr 1" in text
    assert "1 run ended below the best configuration by more than the noise: batch 32, lr 0.1" in text


# ------------------------------------------------------------------ a regression: by val loss


def test_a_regression_ranks_its_configurations_by_validation_loss():
    """No run records an accuracy: groups carry the loss, rank by the lowest, and the 4% between
    the best two is within the 5% single-seed floor (relative: a loss has no fixed scale)."""
    result = analyze_runs(regression_runs.sweep(), "reg")
    g = next(g for g in result.groups if g["label"] == "batch 16, lr 0.01, constant")
    assert g["metric"] == "val_loss" and g["eligible"] and g["n"] == 1
    assert g["best_val_loss_mean"] == pytest.approx(0.1) and g["final_val_loss_mean"] == pytest.approx(0.1)
    assert g["final_train_loss_mean"] == pytest.approx(0.08) and g["best_val_acc_mean"] is None
    best = result.best
    assert best["group"] is g and best["runner_up"]["label"] == "batch 64, lr 0.01, constant"
    assert best["metric"] == "best_val_loss_mean" and best["noise_source"] == "threshold"
    assert best["difference"] == pytest.approx(0.04) and best["noise"] == 0.05 and best["within_noise"]
    assert [(r["batch_size"], r["lr"], round(r["best_val_loss"], 4)) for r in result.best_lr_by_batch] == [
        (16, 0.01, 0.1), (64, 0.01, 0.104)]
    assert [(r["train_loss"], r["val_loss"]) for r in result.gap_by_batch] == [
        pytest.approx((0.08, 0.1)), pytest.approx((0.0832, 0.104))]
    assert result.conclusions[1:3] == [
        "no accuracy recorded (a regression or a loss without classes): configurations are compared "
        "by validation loss; best config: batch 16, lr 0.01, constant: lowest val loss 0.1 (1 seed, "
        "final 0.1).",
        "the best two configs differ by 4% in val loss, within the single-seed noise floor (5%) "
        "(another seed could swap them); runner-up: batch 64, lr 0.01, constant (lowest val loss 0.104)."]


def test_a_regression_with_seeds_compares_by_their_relative_spread():
    """2 seeds at ±10%: the pooled seed std is ~14% of the best's loss, so 4% is within it."""
    best = analyze_runs(regression_runs.sweep(seeds=(0, 1), spread=0.1), "reg").best
    std16, std64 = 0.1 * 0.2 / np.sqrt(2), 0.104 * 0.2 / np.sqrt(2)
    assert best["group"]["best_val_loss_std"] == pytest.approx(std16)
    assert best["noise_source"] == "seeds" and best["within_noise"]
    assert best["noise"] == pytest.approx(np.sqrt((std16 ** 2 + std64 ** 2) / 2) / 0.1)
    beyond = analyze_runs(regression_runs.sweep(), "reg", th=Thresholds(loss_noise_floor=0.01)).best
    assert not beyond["within_noise"] and beyond["noise"] == 0.01


def test_a_regressions_runs_are_judged_against_the_best_configurations_final_loss():
    result = analyze_runs(regression_runs.sweep(), "reg")
    found = {r.run_id: r.findings[-1] for r in result.runs}
    assert found["b64-lr0.01-s0"].kind == "healthy"  # 0.104 is within 5% of 0.1
    assert found["b64-lr0.01-s0"].numbers["sweep_best_val_loss"] == pytest.approx(0.1)
    assert found["b16-lr0.1-s0"].kind == "below_best"
    assert "val loss ends at 0.3, 200% above the best configuration's 0.1" in found["b16-lr0.1-s0"].message


def test_a_regressions_runs_are_judged_against_the_lowest_final_loss_not_the_lowest_minimum():
    """A configuration can lead by its lowest loss and end above another (it overfits): the
    runs are judged where they end, so the reference is the lowest final loss of a
    configuration (as the judgement bench's grid defines the best), not the leader's end."""
    runs = regression_runs.sweep()
    steps = np.arange(11, dtype=float) * 10
    dip = np.array([2.0, 1.0, 0.5, 0.2, 0.05, 0.08, 0.12, 0.16, 0.2, 0.24, 0.28])
    runs[1] = (runs[1][0], {"val_loss": series(dip, steps), "train_eval_loss": series(0.5 * dip, steps)})
    result = analyze_runs(runs, "reg")
    assert result.best["group"]["label"].startswith("batch 16, lr 0.01")  # lowest minimum: 0.05
    found = {r.run_id: r.findings[-1] for r in result.runs}
    assert found["b64-lr0.01-s0"].numbers["sweep_best_val_loss"] == pytest.approx(0.104)
    assert found["b64-lr0.01-s0"].kind == "healthy"
    assert found["b16-lr0.01-s0"].kind != "healthy"  # ends at 0.28, far above 0.104


def test_a_run_that_failed_is_labelled_failed_with_its_error_and_never_ranked():
    """A run stopped by an error after a few steps is not 'collapsed' nor 'below best': its
    curves say nothing of the run it would have been. Its configuration is not ranked."""
    runs = experiment(seeds=(0,))
    rec, metrics = synthetic_run(64, 0.1, 0, 0.001, status="failed")
    cut = {k: S.head(v, 2) for k, v in metrics.items()}  # two evaluations, then the error
    runs = [r for r in runs if r[0].id != rec.id] + [
        (dataclasses.replace(rec, error="RuntimeError: boom at step 30"), cut)]
    result = analyze_runs(runs, "f")
    failed = next(r for r in result.runs if r.run_id == rec.id)
    assert failed.verdict.label == "failed"
    assert failed.verdict.sentence == "It failed: RuntimeError: boom at step 30."
    assert {f.kind for f in failed.findings} <= {"diverged", "exploding"}
    group = next(g for g in result.groups if rec.id in g["run_ids"])
    assert not group["eligible"] and rec.id not in result.best["group"]["run_ids"]
