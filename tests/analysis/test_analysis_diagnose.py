"""diagnose_run on hand-made curves whose diagnosis is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_curves import healthy_metrics, per_epoch, per_step, series

from batchlab.analysis import KINDS, Finding, Thresholds, diagnose_run, wants_step_loss


def kinds(found: list[Finding]) -> list[str]:
    return [f.kind for f in found]


def only(found: list[Finding], kind: str) -> Finding:
    (match,) = [f for f in found if f.kind == kind]
    return match


def test_healthy_run_is_healthy_and_says_its_numbers():
    found = diagnose_run(healthy_metrics(), "completed", {})
    assert kinds(found) == ["healthy"]
    assert "97%" in found[0].message and found[0].numbers["final_val_acc"] == pytest.approx(0.97, abs=1e-3)


def test_overfitting_from_the_epoch_the_val_loss_turns():
    m = healthy_metrics()
    m["val_loss"] = per_epoch(lambda e: np.where(e <= 7, 1.0 - 0.08 * e, 0.44 + 0.05 * (e - 7)))
    m["val_acc"] = per_epoch(lambda e: np.minimum(0.45, 0.1 + 0.05 * e))
    m["train_acc"] = per_epoch(lambda e: np.minimum(1.0, 0.1 + 0.1 * e))
    found = diagnose_run(m, "completed", {})
    assert kinds(found) == ["overfitting"]
    f = found[0]
    assert f.epoch == 7 and f.step == 70
    assert "from epoch 7" in f.message and "train acc 100%, val acc 45%" in f.message
    assert f.numbers["val_loss_min"] == pytest.approx(0.44) and f.numbers["gap"] == pytest.approx(0.55)


def test_overfitting_by_accuracy_gap_alone_starts_where_the_gap_opens():
    m = healthy_metrics()
    m["train_acc"] = per_epoch(lambda e: np.where(e < 12, 0.9, 1.0))
    m["val_acc"] = per_epoch(lambda e: np.full_like(e, 0.85))
    f = only(diagnose_run(m, "completed", {}), "overfitting")
    assert f.epoch == 12 and "gap 15 points" in f.message


def test_an_accuracy_gap_of_the_untrained_model_is_no_onset_of_overfitting():
    """A synthetic split where the untrained model already scored 14 points higher on train than
    on val read 'It overfits at epoch 0': nothing had trained yet."""
    m = healthy_metrics(4)
    m["train_acc"] = series([0.375, 0.441, 0.531, 0.746, 0.926], [0, 10, 20, 30, 40])
    m["val_acc"] = series([0.2375, 0.2625, 0.4125, 0.55, 0.75], [0, 10, 20, 30, 40])
    f = only(diagnose_run(m, "completed", {}), "overfitting")
    assert (f.epoch, f.step) == (1, 10)
    assert f.message.startswith("overfits from epoch 1: train acc 92.6%, val acc 75% (gap 17.6 points)")


@pytest.mark.parametrize("status, summary", [("diverged", {"diverged_at_step": 57}), ("completed", {})])
def test_diverged_at_the_first_non_finite_loss(status, summary):
    m = healthy_metrics()
    m["train_loss"] = per_step(lambda s: np.where(s < 57, 2.3 - 0.01 * s, np.nan), 57)
    found = diagnose_run(m, status, summary)
    f = only(found, "diverged")
    assert f.step == 57 and f.epoch == pytest.approx(5.7)
    assert "diverged at step 57 (epoch 5.7)" in f.message and "nan" in f.message
    # a run that stopped early is not judged on convergence or plateaus
    assert not {"not_converged", "plateau", "lr_too_small", "healthy"} & set(kinds(found))


def test_diverged_status_without_a_step_still_reports():
    assert kinds(diagnose_run({}, "diverged", {})) == ["diverged"]


def test_exploding_loss_reports_the_first_step_above_the_factor():
    m = healthy_metrics()
    m["train_loss"] = per_step(lambda s: np.where(s < 60, 2.3, 2.3 * 1.2 ** (s - 60)), 120)
    f = only(diagnose_run(m, "completed", {}), "exploding")
    first = 60 + math.ceil(math.log(10) / math.log(1.2) + 1e-9)  # first step above 10x 2.3
    assert f.step == first and f.numbers["initial_loss"] == pytest.approx(2.3)
    assert f"step {first}" in f.message and "initial 2.3" in f.message



def test_exploding_after_fast_learning_quotes_the_untrained_loss():
    """A loss logged every 9 steps that fell from 0.72 to 0.01 by the second point and blew up
    later (Adam at LR 0.1 on breast cancer, in the judgement bench): the initial loss is the
    first one, not the median of the two inside the first ten steps (0.36)."""
    m = healthy_metrics()
    steps = np.arange(0, 200, 9)
    loss = np.where(steps == 0, 0.72, np.where(steps == 126, 21.9, 0.05))
    loss[1] = 0.01
    m["train_loss"] = series(loss, steps)
    f = only(diagnose_run(m, "completed", {}), "exploding")
    assert f.numbers["initial_loss"] == pytest.approx(0.72) and "initial 0.72" in f.message
    assert f.step == 126

def test_exploding_is_seen_in_the_evaluated_loss_without_per_step_losses():
    m = healthy_metrics()
    del m["train_loss"]
    m["train_eval_loss"] = per_epoch(lambda e: np.where(e == 5, 30.0, 2.3 * np.exp(-e / 4)))
    f = only(diagnose_run(m, "completed", {}), "exploding")
    assert f.step == 50 and f.numbers["initial_loss"] == pytest.approx(2.3)


def eval_only(metrics):
    return {k: v for k, v in metrics.items() if k != "train_loss"}


def test_per_step_loss_is_wanted_only_when_evaluations_leave_a_question():
    healthy = eval_only(healthy_metrics())
    assert not wants_step_loss(healthy, "completed")
    assert wants_step_loss(healthy, "diverged")  # the step and the last finite loss
    assert wants_step_loss({}, "pending")  # nothing evaluated to judge on
    flat = {**healthy, "train_eval_loss": per_epoch(lambda e: 2.3 - 0.001 * e)}
    assert wants_step_loss(flat, "completed")  # too-small LR or a collapse? only the peak tells
    spike = {**healthy, "train_eval_loss": per_epoch(lambda e: np.where(e == 3, 2.5, 2.3 * np.exp(-e)))}
    assert wants_step_loss(spike, "completed")


def test_oscillating_val_acc_is_unstable():
    m = healthy_metrics()
    m["val_acc"] = per_epoch(lambda e: np.where(e < 10, 0.9, np.where(e % 2 == 0, 0.9, 0.6)))
    f = only(diagnose_run(m, "completed", {}), "unstable")
    assert f.numbers["largest_drop"] == pytest.approx(0.3)
    assert "drops 30 points at step 110" in f.message


def test_one_jump_at_an_lr_decay_is_not_unstable():
    m = healthy_metrics()
    m["val_acc"] = per_epoch(lambda e: np.where(e < 15, 0.85, 0.95))
    assert "unstable" not in kinds(diagnose_run(m, "completed", {}))


def test_still_improving_val_loss_is_not_converged():
    m = healthy_metrics()
    m["val_loss"] = per_epoch(lambda e: 2.3 * np.exp(-e / 15))
    m["train_eval_loss"] = per_epoch(lambda e: 2.3 * np.exp(-e / 15))
    f = only(diagnose_run(m, "completed", {}), "not_converged")
    # the fall of a straight line fitted to epochs 16..20, relative to its value at epoch 16
    e = np.arange(16, 21)
    slope, icpt = np.polyfit(e * 10, 2.3 * np.exp(-e / 15), 1)
    expected = -slope * 40 / (slope * 160 + icpt)
    assert expected == pytest.approx(1 - math.exp(-4 / 15), rel=0.01)  # ~ the end-point fall
    assert f.numbers["relative_fall"] == pytest.approx(expected)
    assert f"{100 * expected:.3g}% of its level" in f.message


def test_flat_loss_means_lr_too_small():
    rng = np.random.default_rng(0)
    m = {
        "train_eval_loss": per_epoch(lambda e: 2.30 - 0.001 * e),
        "val_loss": per_epoch(lambda e: 2.31 - 0.001 * e),
        "val_acc": per_epoch(lambda e: 0.10 + 0.001 * e),
        "train_acc": per_epoch(lambda e: 0.10 + 0.001 * e),
        "train_loss": per_step(lambda s: 2.3 + rng.normal(0, 0.05, s.size)),
    }
    f = only(diagnose_run(m, "completed", {}), "lr_too_small")
    assert f.numbers["relative_fall"] == pytest.approx(0.02 / 2.3)
    assert "0.87%" in f.message and "2.3 -> lowest 2.28" in f.message


def test_flat_loss_after_a_spike_is_not_lr_too_small():
    """A collapse to chance (LR too large) ends as flat as a too-small LR but spiked first."""
    m = {"train_eval_loss": per_epoch(lambda e: np.full_like(e, 2.3)),
         "train_loss": per_step(lambda s: np.where(s == 5, 8.0, 2.3))}
    assert "lr_too_small" not in kinds(diagnose_run(m, "completed", {}))


def test_per_step_loss_alone_is_enough_for_lr_too_small():
    m = {"train_loss": per_step(lambda s: 2.3 - 0.0001 * s)}
    assert kinds(diagnose_run(m, "completed", {})) == ["lr_too_small"]


def test_a_long_stall_then_progress_is_a_plateau():
    m = healthy_metrics()
    m["train_eval_loss"] = per_epoch(
        lambda e: np.interp(e, [0, 3, 12, 13, 20], [2.3, 0.5, 0.49, 0.05, 0.05]))
    f = only(diagnose_run(m, "completed", {}), "plateau")
    assert f.epoch == 3 and f.numbers["end_step"] == 120
    assert "from epoch 3 to epoch 12 (45% of training)" in f.message


def test_thresholds_are_honoured():
    m = healthy_metrics()
    m["val_loss"] = per_epoch(lambda e: 2.3 * np.exp(-e / 15))
    lax = Thresholds(not_converged_slope=0.5, not_converged_rate=1.0)
    assert "not_converged" not in kinds(diagnose_run(m, "completed", {}, lax))


@pytest.mark.parametrize("metrics", [
    {},
    {"val_acc": series([], [])},
    {"val_acc": series([math.nan] * 5, range(5)), "val_loss": series([math.nan] * 5, range(5))},
    {"train_loss": series([math.nan, math.nan], [1, 2])},
    {"val_acc": series([0.5], [0]), "val_loss": series([1.0], [0]), "train_acc": series([0.6], [0]),
     "train_eval_loss": series([1.0], [0]), "train_loss": series([2.0], [1])},
    {"val_loss": series([1.0, 0.0, 1.0], [0, 10, 20]), "train_eval_loss": series([0.0, 0.0], [0, 10]),
     "val_acc": series([math.inf, 0.5, -math.inf], [0, 10, 20])},
])
def test_never_raises_on_empty_short_or_non_finite_series(metrics):
    found = diagnose_run(metrics, "completed", {})
    assert all(f.kind in KINDS for f in found)


def test_a_run_without_data_gets_no_verdict():
    assert diagnose_run({}, "pending", {}) == []


@pytest.mark.parametrize(("summary", "noted"), [
    ({"has_batchnorm": True, "micro_batch_size": 8}, True),
    ({"has_batchnorm": True, "micro_batch_size": 16}, False),
    ({"has_batchnorm": False, "micro_batch_size": 4}, False),
    ({"micro_batch_size": 4}, False),  # not recorded (a tracked loop, an older run): silent
    ({"has_batchnorm": True}, False),
])
def test_batchnorm_below_16_per_forward_pass_is_noted_beside_the_standing(summary, noted):
    found = diagnose_run(healthy_metrics(), "completed", summary)
    assert kinds(found) == (["small_bn_batch", "healthy"] if noted else ["healthy"])
    if noted:
        note = only(found, "small_bn_batch")
        assert note.message.startswith("BatchNorm normalised batches of 8 examples per forward pass: "
                                       "below ~16 its batch statistics are noisy")
        assert note.numbers == {"micro_batch_size": 8.0, "bn_min_batch": 16.0}
    assert kinds(diagnose_run(healthy_metrics(), "completed", summary,
                              Thresholds(bn_min_batch=4))) == ["healthy"]


def test_the_trainer_records_what_the_batchnorm_note_needs():
    from batchlab.spec import RunConfig, spec_from_dict
    from batchlab.train.loop import train_run

    s = spec_from_dict({"data": {"name": "synthetic", "shape": [3, 32, 32], "size": 60},
                        "model": {"name": "mobilenet_v2", "width": 0.25},
                        "train": {"batch_size": 16, "accumulate": 2, "steps": 1, "threads": 1,
                                  "checkpoint": False}})
    end = train_run(RunConfig(data=s.data, model=s.model, train=s.train), lambda e: None)
    assert end.status == "completed", end.error
    assert end.summary["has_batchnorm"] is True and end.summary["micro_batch_size"] == 8
    assert "small_bn_batch" in kinds(diagnose_run(healthy_metrics(), "completed", end.summary))


def test_the_conclusions_name_the_runs_with_the_batchnorm_note():
    from batchlab.analysis.conclusions import diagnosis_sentences
    from batchlab.analysis.groups import RunFacts

    def facts(label):
        return RunFacts("r-" + label, "completed", label, label, {}, {}, True, 0.9, 0.9, 0.9, 0.1)

    note = diagnose_run(healthy_metrics(), "completed", {"has_batchnorm": True, "micro_batch_size": 4})
    plain = diagnose_run(healthy_metrics(), "completed", {})
    text = diagnosis_sentences([(facts("batch 4"), note), (facts("batch 64"), plain)])
    assert text[0] == ("1 run trained BatchNorm on fewer than 16 examples per forward pass (noisy batch "
                       "statistics; a larger micro-batch or a model without BatchNorm may do better): "
                       "batch 4.")


def test_a_loss_logged_every_50_steps_that_learns_then_returns_to_chance_is_no_explosion():
    # a tracked loop or an imported log keeps one loss in 50 steps: its first ten points span
    # 500 steps of learning, and their median (0.1) is no initial loss; the climb back to
    # 2.3 (chance for 10 classes) is a collapse, not a loss 10x its initial value
    m = healthy_metrics()
    steps = np.arange(0, 1000, 50)
    values = np.where(steps == 0, 2.3, np.where(steps < 600, 0.1, 2.3))
    m["train_loss"] = series(values, steps)
    assert "exploding" not in kinds(diagnose_run(m, "completed", {}))


@pytest.mark.parametrize(("summary", "noted"), [
    ({"has_batchnorm": True, "micro_batch_size": 32, "devices": 2, "sync_batchnorm": False}, True),
    ({"has_batchnorm": True, "micro_batch_size": 32, "devices": 2, "sync_batchnorm": True}, False),
    ({"has_batchnorm": False, "micro_batch_size": 32, "devices": 2, "sync_batchnorm": False}, False),
    ({"has_batchnorm": True, "micro_batch_size": 32}, False),  # one process: nothing recorded
])
def test_batchnorm_per_process_in_a_ddp_run_is_noted_beside_the_standing(summary, noted):
    found = diagnose_run(healthy_metrics(), "completed", summary)
    assert kinds(found) == (["bn_per_process", "healthy"] if noted else ["healthy"])
    if noted:
        note = only(found, "bn_per_process")
        assert note.message.startswith(
            "BatchNorm normalised each of the 2 processes' share of every batch (32 examples per "
            "forward pass), not the global batch")
        assert "train.sync_batchnorm = true" in note.message
