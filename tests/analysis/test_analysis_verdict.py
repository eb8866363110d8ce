"""One label and one sentence per run (issue 22): the most severe finding labels the run, each
fact is said once, every finding stays in the evidence."""

from __future__ import annotations

from batchlab.analysis.findings import Finding
from batchlab.analysis.verdict import run_verdict

COLLAPSE = Finding("collapsed", "collapsed at step 450 (epoch 10): val acc fell from 94.2% ...", 450,
                   10.0, {"final_val_acc": 0.0917, "best_val_acc": 0.942, "collapse_step": 450.0})
REASON = ("pruned: collapsed to chance: val acc 0.0917 (chance 1/10 = 0.1) at or below 0.31 for 3 "
          "evaluations (epoch 10 to 12), after reaching 0.942 at epoch 1")


def unstable(step: int) -> Finding:
    return Finding("unstable", "unstable: ... it drops 49.4 points", step, 10.0,
                   {"change_std": 0.165, "largest_drop": 0.494})


def test_a_pruned_collapse_is_said_once_and_a_separate_swing_is_named():
    pruned = Finding("pruned", REASON, 540, None, {"step": 540.0})
    same = run_verdict([pruned, COLLAPSE, unstable(450)], "pruned")
    assert same.label == "pruned"
    assert same.sentence == ("Stopped early because its val acc fell from 94.2% to chance at epoch 10 "
                             "(it ends at 9.17%).")
    assert same.evidence[0] == REASON and len(same.evidence) == 3
    other = run_verdict([pruned, COLLAPSE, unstable(200)], "pruned")  # a swing before the collapse
    assert other.sentence.endswith("(it ends at 9.17%); also unstable.")


def test_labels_follow_the_most_severe_finding_and_a_note_never_labels():
    overfit = Finding("overfitting", "overfits from epoch 5: ...", 50, 5.0,
                      {"train_acc": 1.0, "val_acc": 0.9, "gap": 0.1})
    bn = Finding("small_bn_batch", "BatchNorm ...", None, None, {"micro_batch_size": 8.0})
    healthy = Finding("healthy", "healthy: ...", None, None, {"final_val_acc": 0.97,
                                                              "sweep_best_val_acc": 0.975})
    v = run_verdict([overfit, bn], "completed")
    assert (v.label, v.sentence) == ("overfits", "It overfits at epoch 5: train acc 100% against val "
                                                 "acc 90%; also small BN batch.")
    ok = run_verdict([bn, healthy], "completed")
    assert (ok.label, ok.sentence) == ("ok", "It trained well: 97% val acc within noise of the "
                                             "best; also small BN batch.")


def test_runs_without_findings_say_their_status():
    failed = run_verdict([], "failed", "RuntimeError: CUDA out of memory\nTraceback ...")
    assert (failed.label, failed.sentence) == ("failed", "It failed: RuntimeError: CUDA out of memory.")
    assert run_verdict([], "pending").label == "pending"
    assert run_verdict([], "running").sentence == "No evaluation yet."
    halving = run_verdict([Finding("pruned", "pruned: successive halving: ranks 2 of 2", None, None, {})],
                          "pruned")
    assert (halving.label, halving.sentence) == ("pruned", "Stopped early: successive halving.")


def test_a_per_layer_finding_says_its_plain_sentence_without_the_numbers():
    dead = Finding("dead_units", "81.2% of `conv3`'s units are dead: its ReLU outputs 0 on every "
                   "probe example at step 500", 500, 10.0, {"dead_fraction": 0.812})
    assert run_verdict([dead], "completed").sentence == "81.2% of `conv3`'s units are dead."


def test_a_run_not_finished_is_judged_so_far():
    healthy = Finding("healthy", "healthy: val acc 97%", None, None, {"final_val_acc": 0.97})
    v = run_verdict([healthy], "interrupted")
    assert v.label == "ok" and v.sentence.startswith("So far (not finished): ")
    assert not run_verdict([healthy], "completed").sentence.startswith("So far")


def test_a_run_at_chance_from_the_start_never_learned_it_did_not_collapse():
    never = Finding("collapsed", "collapsed: val acc never rose above chance", None, None,
                    {"final_val_acc": 0.1, "best_val_acc": 0.11, "chance_level": 0.15, "n_classes": 10.0})
    v = run_verdict([never], "completed")
    assert v.label == "never learned" and "never rose above chance" in v.sentence
    fell = Finding("collapsed", "collapsed at step 40", 40, 2.0,
                   {"final_val_acc": 0.1, "best_val_acc": 0.6, "chance_level": 0.15,
                    "n_classes": 10.0, "collapse_step": 40.0})
    assert run_verdict([fell], "completed").label == "collapsed"


def test_a_regression_runs_standing_is_said_in_val_loss_with_its_numbers():
    """A regression's run behind the best said only 'It ends below the best.' (no numbers, and a
    loss that is higher, not lower); its evidence had them."""
    behind = Finding("below_best", "below the sweep's best: val loss ends at 1.97, 423% above the "
                     "best configuration's 0.376 (noise 14.4%)", None, None,
                     {"final_val_loss": 1.9686, "sweep_best_val_loss": 0.3763, "noise": 0.144})
    v = run_verdict([behind], "completed")
    assert (v.label, v.sentence) == ("below best", "It ends at val loss 1.97, 423% above the best's 0.376.")
    well = Finding("healthy", "healthy: val loss 0.376, within noise (31.9%) of the sweep's best "
                   "0.376", None, None, {"final_val_loss": 0.3763, "sweep_best_val_loss": 0.3763,
                                          "noise": 0.319})
    assert run_verdict([well], "completed").sentence == (
        "It trained well: val loss 0.376 within noise of the best.")


def test_an_exploding_runs_sentence_names_its_peak_when_far_above_the_first_crossing():
    """'Its training loss rose to 14.8x its start at epoch 1.' of a loss that peaked at 1.56e+06
    from 1.29 (1.2 million times its start): the sentence said only where it crossed the line."""
    boom = Finding("exploding", "exploding: train loss 19 at step 20 (epoch 1), 14.8x its initial "
                   "1.29 (peak 1.56e+06)", 20, 1.0,
                   {"loss": 19.0, "initial_loss": 1.29, "peak_loss": 1.56e6, "factor": 14.8})
    assert run_verdict([boom], "completed").sentence == (
        "Its training loss rose to 14.8x its start at epoch 1, peaking at 1.21e+06x.")
    near = Finding("exploding", "exploding: ...", 20, 1.0,
                   {"loss": 19.0, "initial_loss": 1.29, "peak_loss": 20.2, "factor": 14.8})
    assert run_verdict([near], "completed").sentence == (
        "Its training loss rose to 14.8x its start at epoch 1.")
