"""The answer first (issue 22): what to pick, how sure, why, the findings by question; the words
are checked against the numbers beside them (the best row, the time-to-target table, the runs'
findings), and every dense conclusion stays one level down."""

from __future__ import annotations

import re

import pytest
import regression_runs
from answer_runs import BATCHES, sweep

from batchlab.analysis import Thresholds, analyze_runs
from batchlab.analysis.answer import FAILED, LR, QUESTIONS, TIME, WORKED


@pytest.fixture(scope="module")
def result():
    return analyze_runs(sweep(), "ans")


def test_the_pick_is_the_best_configuration_with_its_numbers(result):
    a, g = result.answer, result.best["group"]
    assert a.headline == "Pick batch 256, lr 0.1, constant." == f"Pick {g['label']}."
    assert a.pick["label"] == g["label"] and a.pick["batch_size"] == 256 and a.pick["lr"] == 0.1
    score = re.fullmatch(r"Best val acc ([\d.]+)% ± ([\d.]+) points over 2 seeds; it reaches the "
                         r"target \(val acc ([\d.]+)%\) in ([\d.]+) s \(([\d,]+) steps\)\.", a.score)
    assert score, a.score
    acc, spread, target, seconds, steps = score.groups()
    assert float(acc) == pytest.approx(100 * g["best_val_acc_mean"], abs=0.05)
    assert float(spread) == pytest.approx(100 * g["best_val_acc_std"], rel=0.05)
    assert float(target) == pytest.approx(100 * result.target, abs=0.05)
    assert float(seconds) == pytest.approx(g["wall_time_to_target_mean"], rel=0.005)
    assert int(steps.replace(",", "")) == round(g["steps_to_target_mean"])


def test_the_answer_names_the_target_time_the_table_shows(result):
    """The pick's time is its row of the time-to-target table, and 'reaches the target first'
    names the batch with the least wall time in that table, with its time."""
    rows = {r["batch_size"]: r for r in result.to_target_by_batch}
    own = rows[256]
    assert own["wall_time_label"] == result.answer.pick["label"]
    assert result.answer.pick["wall_time_to_target"] == own["wall_time"]
    fastest = min(rows.values(), key=lambda r: r["wall_time"])
    slowest = max(rows.values(), key=lambda r: r["wall_time"])
    first = result.answer.groups[TIME][0].sentence
    assert first == (f"Batch {fastest['batch_size']} reaches the target first: "
                     f"{fastest['wall_time']:.3g} s, against {slowest['wall_time']:.3g} s at batch "
                     f"{slowest['batch_size']}.")
    assert f"It is also the fastest to the target: {own['wall_time']:.3g} s." in result.answer.why


def test_why_says_where_in_the_grid_it_failed_in_the_fields_words(result):
    a = result.answer
    failed = a.groups[FAILED][0].sentence
    assert failed == ("LR 0.1 is too large below batch 256: 4 runs collapsed to chance by epoch 3 "
                      "(1 of them stopped early).")
    assert a.why[0] == failed and len(a.why) <= 3
    collapsed = [r for r in result.runs if any(f.kind == "collapsed" for f in r.findings)]
    assert len(collapsed) == 4 and {r.config["train"]["lr"] for r in collapsed} == {0.1}
    assert {r.config["train"]["batch_size"] for r in collapsed} == {b for b in BATCHES if b < 256}
    assert sum(r.status == "pruned" for r in collapsed) == 1


def test_how_sure_compares_the_margin_with_the_seed_noise(result):
    best = result.best
    assert not best["within_noise"]
    margin, noise = f"{100 * best['difference']:.2g}", f"{100 * best['noise']:.2g}"
    assert (margin, noise) == ("1", "0.28")
    assert result.answer.sure == (f"Sure: it leads the runner-up ({best['runner_up']['label']}) by "
                                  "1 point, beyond seed noise (0.28 points).")


def test_within_noise_names_every_configuration_that_could_swap(result):
    runs = [(rec, m) for rec, m in sweep()]
    # the runner-up's seeds scattered wide: its mean stays, the noise grows past the margin
    for rec, metrics in runs:
        if rec.config["train"]["batch_size"] == 16 and rec.config["train"]["lr"] == 0.01:
            sign = 1 if rec.config["train"]["seed"] else -1
            v = metrics["val_acc"]
            metrics["val_acc"] = v.__class__(v.step, v.value * (1 + sign * 0.03), v.epoch, v.examples,
                                             v.wall_time)
    close = analyze_runs(runs, "close")
    assert close.best["within_noise"]
    assert close.answer.sure.startswith("Not sure: within seed noise (")
    assert close.best["runner_up"]["label"] in close.answer.sure


def test_findings_are_grouped_by_question_one_sentence_each(result):
    groups = result.answer.groups
    assert list(groups) == [q for q in QUESTIONS if q in groups] == [WORKED, FAILED, TIME, LR]
    for points in groups.values():
        for p in points:
            assert p.sentence.endswith(".") and p.sentence.count(". ") == 0, p.sentence


def test_every_conclusion_is_kept_one_level_down(result):
    details = set(result.answer.details) | {d for ps in result.answer.groups.values()
                                            for p in ps for d in p.details}
    assert set(result.conclusions) <= details
    # the dense statistics are there, not in the plain sentences
    assert not any("R²" in s or "rms" in s for s in result.answer.sentences())


def test_no_run_sentence_says_collapsed_unless_its_numbers_do(result):
    for r in result.runs:
        collapsed = any(f.kind == "collapsed" for f in r.findings)
        said = "chance" in r.verdict.sentence
        assert said == collapsed, (r.run_id, r.verdict.sentence)
        assert (r.verdict.label == "collapsed") == (collapsed and r.status != "pruned")
        if r.verdict.label == "ok":
            assert any(f.kind == "healthy" for f in r.findings)


def test_a_pruned_runs_sentence_states_its_collapse_once(result):
    pruned = next(r for r in result.runs if r.status == "pruned")
    v = pruned.verdict
    assert v.label == "pruned"
    assert v.sentence == ("Stopped early because its val acc fell from 70% to chance at epoch 3 "
                          "(it ends at 10%).")
    assert v.sentence.count("chance") == 1 and "also" not in v.sentence  # its swing is the collapse
    assert len(v.evidence) == len(pruned.findings) == 3  # reason, collapse, swing: all in the evidence
    assert v.evidence[0].startswith("pruned: collapsed to chance: val acc 0.1")


def test_nothing_to_pick_says_why():
    empty = analyze_runs([], "none")
    assert empty.answer.pick is None and empty.answer.why == []
    assert empty.answer.headline == "Nothing to pick yet: no configuration qualifies as best."
    runs = [(rec, m) for rec, m in sweep() if rec.config["train"]["lr"] == 0.1
            and rec.config["train"]["batch_size"] < 256]
    collapsed = analyze_runs(runs, "collapsed")
    # the best row of the table is still named, with the collapse after its peak said plainly
    assert collapsed.answer.pick["label"] == collapsed.best["group"]["label"] == "batch 64, lr 0.1, constant"
    assert collapsed.answer.score.endswith(
        "Its runs collapsed to chance after that peak (final val acc 10%): keep the best "
        "checkpoint, or pick a configuration that did not collapse.")
    assert collapsed.answer.why[0] == collapsed.answer.groups[FAILED][0].sentence


def test_what_worked_counts_the_runs_the_table_labels(result):
    ok = sum(r.verdict.label == "ok" for r in result.runs)
    below = sum(r.verdict.label == "below best" for r in result.runs)
    assert (ok, below) == (3, 11)
    assert [p.sentence for p in result.answer.groups[WORKED]] == [
        f"{ok} of 18 runs trained without a problem and end within noise of the best.",
        f"{below} of 18 runs trained without a problem but end below the best by more than the noise."]


def test_a_regression_picks_the_lowest_validation_loss_and_says_how_sure_by_it():
    """No accuracy: the pick, its score and how sure are all by val loss (differences relative
    to the best's loss), and the LR finding is there as for a classification."""
    a = analyze_runs(regression_runs.sweep(), "reg").answer
    assert a.headline == "Pick batch 16, lr 0.01, constant."
    assert a.pick["metric"] == "val_loss" and a.pick["best_val_loss"] == pytest.approx(0.1)
    assert a.pick["best_val_acc"] is None
    assert a.score == "Lowest val loss 0.1 (1 seed)."
    assert a.sure == ("Not sure: within the single-seed noise floor (5%) of it: batch 64, lr 0.01, "
                      "constant. Another seed could rank any of these first; more seeds "
                      "(sweep.repeats) would tell them apart.")
    assert a.groups[LR][0].sentence.startswith("The best LR is 0.01 at every batch size;")
    assert a.groups[LR][0].details[:2] == ["batch 16: best lr 0.01, constant (lowest val loss 0.1)",
                                           "batch 64: best lr 0.01, constant (lowest val loss 0.104)"]
    # one sentence names the best configuration: the loss ranking is not said twice
    assert sum("best config" in d for d in a.details) == 1
    seeds = analyze_runs(regression_runs.sweep(seeds=(0, 1), spread=0.01), "reg",
                         th=Thresholds(loss_noise_floor=0.001)).answer
    assert seeds.score == "Lowest val loss 0.1 ± 0.0014 over 2 seeds."
    assert seeds.sure == ("Sure: it leads the runner-up (batch 64, lr 0.01, constant) by 4% in val "
                          "loss, beyond seed noise (1.44%).")


def test_a_pick_among_unfinished_runs_says_it_may_change():
    """An interrupted sweep: a run stopped at a fraction of its steps can lead for now."""
    import dataclasses

    runs = sweep()
    runs = [(dataclasses.replace(rec, status="interrupted"), m) if i % 3 == 0 else (rec, m)
            for i, (rec, m) in enumerate(runs)]
    headline = analyze_runs(runs, "ans").answer.headline
    n = sum(i % 3 == 0 for i in range(len(runs)))
    assert headline.endswith(f". So far: {n} of {len(runs)} runs have not finished, and the pick "
                             "may change once they do.")
    assert "So far" not in analyze_runs(sweep(), "ans").answer.headline


def test_a_causes_detail_says_how_its_count_relates_to_the_points():
    """'2 runs barely learned' over '3 runs barely learned': the third has a more severe main
    finding and is counted there; the detail says so instead of contradicting the point."""
    from types import SimpleNamespace

    from batchlab.analysis.answer import _kind_details
    from batchlab.analysis.findings import Finding

    small = Finding("lr_too_small", "LR too small", None, None, {})
    worse = Finding("collapsed", "collapsed", None, None, {})
    runs = [(SimpleNamespace(label=f"batch {b}, lr 0.001", run_id=str(b)), found)
            for b, found in ((16, [small]), (32, [small]), (64, [worse, small]))]
    (detail,) = _kind_details("lr_too_small", 2, runs)
    assert detail.startswith("3 runs ")
    assert detail.endswith("(2 of them have it as their main finding; the other 1 is counted "
                           "under a more severe one.)")
    assert "main finding" not in _kind_details("lr_too_small", 3, runs)[0]


def test_runs_stopped_by_an_error_are_said_under_what_failed():
    """Two of the sweep's runs failed with an error: 'What failed and why' named every problem
    but them (they have no finding to count under a cause)."""
    runs = sweep()
    for i in (0, 1):  # batch 16, lr 0.1, both seeds
        rec, metrics = runs[i]
        runs[i] = (rec.__class__(**{**rec.__dict__, "status": "failed", "error": "RuntimeError: boom"}),
                   metrics)
    points = analyze_runs(runs, "ans").answer.groups[FAILED]
    assert points[-1].sentence == ("2 of 18 runs stopped with an error and never ranked (each run's "
                                   "error is in its row).")
    assert points[-1].details == ["failed: batch 16, lr 0.1, constant (x2)."]


def test_a_pick_that_never_rose_above_chance_is_not_said_to_have_collapsed_after_a_peak():
    """A lone run at chance from its first evaluation (an LR too small) read 'Its runs collapsed
    to chance after that peak (final val acc 8.06%): keep the best checkpoint': it had no peak."""
    import numpy as np
    from analysis_curves import record, series

    steps = np.arange(4) * 10
    metrics = {"val_acc": series([0.08, 0.075, 0.08, 0.0806], steps),
               "train_acc": series([0.1, 0.12, 0.13, 0.14], steps),
               "val_loss": series([2.35, 2.345, 2.34, 2.338], steps),
               "train_loss": series([2.31, 2.306, 2.304, 2.302], steps)}
    rec = record("flat", {"batch_size": 32, "lr": 0.003}, summary={"num_classes": 10},
                 point={"train.batch_size": 32, "train.lr": 0.003})
    score = analyze_runs([(rec, metrics)], "flat").answer.score
    assert "after that peak" not in score
    assert score.endswith("Its runs never rose above chance (final val acc 8.06%): there is no "
                          "learned model to keep.")
