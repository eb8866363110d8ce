"""validate: the neighbours trained, the validation sweep, the comparison, and one real
(tiny) validation sweep into a store."""

import math

import numpy as np
import pytest

from batchlab.analysis import analyze_experiment
from batchlab.plan import plan_runs
from batchlab.probes.recommend import Prediction, Recommendation
from batchlab.probes.validate import (
    against_base,
    blow_up,
    compare,
    neighbours,
    validate_recommendation,
    validation_spec,
)
from batchlab.spec import spec_from_dict
from batchlab.store import Store
from batchlab.train.scaling import scaled_lr

SPEC = {
    "name": "vt",
    "data": {"name": "synthetic", "shape": [10], "classes": 3, "size": 300},
    "model": {"name": "mlp", "hidden": [16]},
    "train": {"epochs": 2, "lr": 0.1, "batch_size": 16, "threads": 1, "scale_lr": "sqrt",
              "eval_every": 2},
    "sweep": {"grid": {"train.lr": [0.1, 0.01]}, "repeats": 2},
}


def rec(batch=16, lr=0.05, warmup=0, fits=(8, 16, 32), sizes=(8, 16, 32, 64),
        rel=(1.4, 1.0, 1.2, 1.6)):
    """A hand-built recommendation over ``sizes`` with relative times ``rel``."""
    preds = [Prediction(b, 100.0 * b, 1 + 10 / b, r, None, b in fits)
             for b, r in zip(sizes, rel, strict=True)]
    return Recommendation(batch, lr, "hand-made", warmup, 10.0, (5.0, 20.0), max(fits), None,
                          preds, ["a sentence"])


def test_neighbours_are_measured_fitting_halves_and_doubles():
    assert neighbours(rec(16)) == [8, 16, 32]
    assert neighbours(rec(32)) == [16, 32]  # 64 was measured but does not fit
    assert neighbours(rec(8)) == [8, 16]  # 4 was never measured
    assert neighbours(rec(32, fits=(8, 16, 32, 64))) == [16, 32, 64]
    # only measured sizes: 16's neighbours 8 and 32 are missing from this curve
    sparse = rec(16, fits=(4, 16, 64), sizes=(4, 16, 64), rel=(2.0, 1.0, 1.5))
    assert neighbours(sparse) == [16]


def test_validation_spec_sweeps_the_neighbours_at_square_root_scaled_lrs():
    spec = spec_from_dict(SPEC)
    v = validation_spec(spec, rec(16, lr=0.05))
    assert v.name == "vt-validate"
    assert v.sweep.grid == {} and v.sweep.repeats == 1  # the user's sweep is replaced
    assert v.data == spec.data and v.model == spec.model
    assert v.sweep.points[0] == {}  # the user's base configuration, as written
    assert [p["train.batch_size"] for p in v.sweep.points[1:]] == [8, 16, 32]
    # lr * sqrt(b / 16) to 3 significant digits: 0.0354, 0.05, 0.0707
    assert [p["train.lr"] for p in v.sweep.points[1:]] == [0.0354, 0.05, 0.0707]
    runs = plan_runs(v)
    assert [(r.config.train.batch_size, r.config.train.lr) for r in runs] == [
        (16, 0.1), (8, 0.0354), (16, 0.05), (32, 0.0707)]
    assert runs[0].config.train.scale_lr == "sqrt"  # the base keeps its own settings
    for r in runs[1:]:  # the LR is used as given: no second scaling by the spec's rule
        assert r.config.train.scale_lr == "none"
        assert scaled_lr(r.config.train.lr, r.config.train.batch_size, r.config.train.scale_lr,
                         r.config.train.base_batch_size) == r.config.train.lr
        assert r.config.train.schedule.warmup == 0  # the recommendation has no warm-up
        assert r.config.train.epochs == 2  # the spec's training length
    assert spec.name == "vt" and len(spec.sweep.points) == 0  # the user's spec is untouched


def test_validation_spec_carries_the_warmup():
    v = validation_spec(spec_from_dict(SPEC), rec(32, lr=0.2, warmup=7))
    runs = plan_runs(v)[1:]
    assert [r.config.train.batch_size for r in runs] == [16, 32]
    assert [r.config.train.lr for r in runs] == [float(f"{0.2 * math.sqrt(0.5):.3g}"), 0.2]
    for r in runs:
        assert r.config.train.schedule.warmup == 7
        assert r.config.train.schedule.warmup_unit == "step"


def test_compare_on_hand_made_numbers():
    r = rec(16)  # predicted relative times 1.4, 1.0, 1.2 at 8, 16, 32
    rows, lines = compare(r, {8: 3.0, 16: 2.0, 32: None})
    assert [row["batch_size"] for row in rows] == [8, 16, 32]
    assert [row["predicted"] for row in rows] == pytest.approx([1.4, 1.0, 1.2])
    assert [row["measured"] for row in rows] == [1.5, 1.0, None]
    assert [row["measured_seconds"] for row in rows] == [3.0, 2.0, None]
    assert lines[0] == "batch 8: predicted x1.40 the recommended time, measured x1.50 (3 s to target)."
    assert lines[1].startswith("batch 16: predicted x1.00") and "measured x1.00" in lines[1]
    assert lines[2] == "batch 32: predicted x1.20; did not reach the target."
    assert lines[-1] == "The recommended batch 16 was the fastest to the target."


def test_compare_lists_the_base_run_labelled_with_its_lr():
    # the base trains at batch 16 like the recommendation: each line names its LR, and the
    # base's own time to the target has a line the verdict can refer to
    r = rec(16, lr=0.05)
    _, lines = compare(r, {8: 3.0, 16: 2.0, 32: None}, {8: 0.0354, 16: 0.05, 32: 0.0707},
                       (16, 0.1, 2.5))
    assert lines[:3] == [
        "batch 8 (lr 0.0354): predicted x1.40 the recommended time, measured x1.50 (3 s to target).",
        "batch 16 (lr 0.05): predicted x1.00 the recommended time, measured x1.00 (2 s to target).",
        "batch 32 (lr 0.0707): predicted x1.20; did not reach the target."]
    assert lines[3] == ("your base configuration (batch 16, lr 0.1): measured x1.25 the "
                        "recommended time (2.5 s to target).")
    assert lines[4] == "The recommended batch 16 was the fastest to the target."
    lrs = {8: 0.0354, 16: 0.05}
    assert compare(r, {8: 3.0, 16: 2.0}, lrs, (16, 0.1, None))[1][2] == (
        "your base configuration (batch 16, lr 0.1): did not reach the target.")
    assert compare(r, {8: 3.0, 16: None}, lrs, (16, 0.1, 4.0))[1][2] == (
        "your base configuration (batch 16, lr 0.1): reached the target (4 s), the recommended "
        "batch did not.")


def test_a_tie_with_the_base_is_settled_by_both_times_in_the_sentence():
    _, line = against_base((16, 0.05), 0.90, (16, 0.1), 0.905, times=(2.0, 2.5))
    assert line == (
        "The recommendation (batch 16, lr 0.05) and your base configuration (batch 16, lr 0.1) "
        "end within 1% of each other (best validation accuracy 90.0% vs 90.5%); to the target: "
        "the recommendation 2 s, your base 2.5 s (the recommendation is faster).")
    assert "above" not in line
    assert against_base((16, 0.05), 0.90, (16, 0.1), 0.905, times=(3.0, 2.5))[1].endswith(
        "the recommendation 3 s, your base 2.5 s (your base is faster).")
    assert against_base((16, 0.05), 0.90, (16, 0.1), 0.905, times=(None, 2.5))[1].endswith(
        "; only your base reached the target (2.5 s).")
    assert against_base((16, 0.05), 0.90, (16, 0.1), 0.905, times=(2.0, None))[1].endswith(
        "; only the recommendation reached the target (2 s).")
    assert against_base((16, 0.05), 0.90, (16, 0.1), 0.905)[1].endswith(
        "; neither reached the target.")


def test_compare_when_another_batch_is_faster():
    rows, lines = compare(rec(16), {8: 1.0, 16: 2.0, 32: 4.0})
    assert [row["measured"] for row in rows] == [0.5, 1.0, 2.0]
    assert lines[-1] == "The recommended batch 16 was not (batch 8 was) the fastest to the target."


def test_compare_when_the_recommended_batch_never_reached_the_target():
    rows, lines = compare(rec(16), {8: None, 16: None, 32: 4.0})
    # no ratio without the recommended batch's time, but batch 32 did reach the target
    assert [row["measured"] for row in rows] == [None, None, None]
    assert rows[2]["measured_seconds"] == 4.0
    assert lines[0] == "batch 8: predicted x1.40; did not reach the target."
    assert lines[1] == "batch 16: predicted x1.00; did not reach the target."
    assert lines[2].startswith("batch 32: predicted x1.20") and "did not reach" not in lines[2]
    assert "reached the target (4 s)" in lines[2] and "the recommended batch did not" in lines[2]
    assert lines[-1] == "The recommended batch 16 was not (batch 32 was) the fastest to the target."


def test_compare_when_nothing_reached_the_target():
    rows, lines = compare(rec(16), {8: None, 16: None})
    assert [row["measured"] for row in rows] == [None, None]
    assert "No run reached the target" in lines[-1] and "train.epochs" in lines[-1]


def test_validate_recommendation_trains_the_sweep_into_the_store(tmp_path):
    spec = spec_from_dict(SPEC)
    db = tmp_path / "v.db"
    v = validate_recommendation(spec, rec(16, lr=0.05), db)
    assert v.experiment == "vt-validate"
    assert sorted(row["batch_size"] for row in v.rows) == [8, 16, 16, 32]
    assert {row["status"] for row in v.rows} == {"completed"}
    with Store(db) as st:
        assert [e.name for e in st.experiments()] == ["vt-validate"]
        runs = st.runs("vt-validate")
        assert len(runs) == 4 and {r.status for r in runs} == {"completed"}
        assert sorted((r.config["train"]["batch_size"], r.config["train"]["lr"]) for r in runs) == [
            (8, 0.0354), (16, 0.05), (16, 0.1), (32, 0.0707)]
        assert all(st.metrics(r.id, ["val_acc"])["val_acc"].value.size for r in runs)
    # one comparison row per neighbour, relative to the recommended batch, from the analysis
    assert [c["batch_size"] for c in v.comparison] == [8, 16, 32]
    with Store(db) as st:
        to_target = {(a.config["train"]["batch_size"], a.config["train"]["lr"]): a.hit.wall_time
                     if a.hit else None for a in analyze_experiment(st, "vt-validate").runs}
    assert {c["batch_size"]: c["measured_seconds"] for c in v.comparison} == {
        8: to_target[(8, 0.0354)], 16: to_target[(16, 0.05)], 32: to_target[(32, 0.0707)]}
    for c in v.comparison:
        if c["measured_seconds"] is not None and to_target[(16, 0.05)] is not None:
            assert c["measured"] == pytest.approx(c["measured_seconds"] / to_target[(16, 0.05)])
    assert [c["predicted"] for c in v.comparison] == pytest.approx([1.4, 1.0, 1.2])
    base = next(c for c in v.comparison if c["batch_size"] == 16)
    if base["measured_seconds"] is not None:  # the recommended batch reached the target
        assert base["measured"] == 1.0
    # one line per batch size, the base's, the verdict, the base comparison
    assert len(v.explanation) == 6
    assert v.explanation[1].startswith("batch 16 (lr 0.05): predicted x1.00")
    base_hit = to_target[(16, 0.1)]  # the base's time to the target has its own line
    assert v.explanation[3].startswith("your base configuration (batch 16, lr 0.1): ")
    assert (f"{base_hit:.3g} s" in v.explanation[3] if base_hit is not None
            else v.explanation[3].endswith("did not reach the target."))
    assert "fastest to the target" in v.explanation[-2] or "No run reached" in v.explanation[-2]
    assert "your base configuration (batch 16, lr 0.1)" in v.explanation[-1].lower()
    # validating again trains nothing new: the runs are already in the store
    again = validate_recommendation(spec, rec(16, lr=0.05), db)
    with Store(db) as st:
        assert len(st.runs("vt-validate")) == 4
    assert [c["batch_size"] for c in again.comparison] == [8, 16, 32]


def test_a_better_base_configuration_is_said_plainly_and_named():
    better, line = against_base((128, 0.004), 0.778, (32, 0.05), 0.983)
    assert better
    assert line.startswith("Your base configuration (batch 32, lr 0.05) is BETTER than the "
                           "recommendation (batch 128, lr 0.004)")
    assert "98.3% vs 77.8%" in line and line.endswith("Keep batch 32, lr 0.05.")
    assert "sooner" not in line
    _, line = against_base((128, 0.1), 0.969, (32, 0.05), 0.983, times=(0.04, 0.1))
    assert "The recommendation only reaches the target sooner (0.04 s vs 0.1 s). Keep" in line
    better, line = against_base((128, 0.1), 0.995, (32, 0.05), 0.983)
    assert not better and "beats your base configuration" in line
    better, line = against_base((128, 0.1), 0.985, (32, 0.05), 0.983)  # within the noise floor
    assert not better and "within 1% of each other" in line
    assert not against_base((32, 0.05), 0.9, (32, 0.05), 0.9)[0]
    assert "no validation accuracy" in against_base((32, 0.1), None, (16, 0.05), 0.9)[1]


def test_a_regression_is_compared_by_lowest_validation_loss():
    # lower is better: a base loss 20% under the recommendation's wins, and is said in bold
    better, line = against_base((64, 0.03), 0.025, (32, 0.01), 0.020, loss=True)
    assert better
    assert ("Your base configuration (batch 32, lr 0.01) is BETTER than the recommendation "
            "(batch 64, lr 0.03): lowest validation loss 0.02 vs 0.025. Keep batch 32") in line
    better, line = against_base((64, 0.03), 0.020, (32, 0.01), 0.025, loss=True)
    assert not better and "beats your base configuration" in line and "0.02 vs 0.025" in line
    # within 5% (relative: a loss has no natural scale) is a tie, at any magnitude
    for scale in (1e-4, 1.0, 1e3):
        better, line = against_base((64, 0.03), 1.03 * scale, (32, 0.01), scale, loss=True)
        assert not better and "within 5% of each other" in line
    assert "no validation loss" in against_base((32, 0.1), None, (16, 0.05), 0.9, loss=True)[1]


def test_a_recommendation_that_diverged_is_said_to_be_worse_whatever_the_metric():
    for score in (-math.inf, math.nan):  # accuracy: a diverged run scores -inf (or NaN)
        better, line = against_base((128, 3.0), score, (32, 0.05), 0.9)
        assert better and line.startswith("Your base configuration (batch 32, lr 0.05) is BETTER")
        assert "best validation accuracy 90.0% vs diverged. Keep batch 32, lr 0.05." in line
    for score in (math.inf, math.nan):  # a regression's loss: inf - inf made the margin NaN
        better, line = against_base((128, 3.0), score, (32, 0.05), 0.2, loss=True)
        assert better and "lowest validation loss 0.2 vs diverged. Keep" in line
    better, line = against_base((128, 0.1), 0.9, (32, 5.0), -math.inf)
    assert not better and "beats your base configuration" in line and "90.0% vs diverged" in line
    better, line = against_base((128, 3.0), math.inf, (32, 5.0), math.nan, loss=True)
    assert not better and "both diverged. Lower the LR" in line


def test_a_diverged_recommended_run_loses_to_the_base_though_its_best_was_better(tmp_path):
    # LR 1e5 blows up: whatever its best accuracy before that, the run ends diverged
    spec = spec_from_dict({**SPEC, "sweep": {}})
    v = validate_recommendation(spec, rec(16, lr=1e5), tmp_path / "v.db")
    assert v.base_better
    assert v.explanation[-1].startswith("Your base configuration (batch 16, lr 0.1) is BETTER than "
                                        "the recommendation (batch 16, lr 1e+05)")
    assert "vs diverged. Keep batch 16, lr 0.1." in v.explanation[-1]
    with Store(tmp_path / "v.db") as st:
        status = {r.config["train"]["lr"]: r.status for r in st.runs("vt-validate")}
    assert status[1e5] == "diverged" and status[0.1] == "completed"


def test_validation_of_a_regression_reaches_a_loss_target(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    np.savez(tmp_path / "r.npz", x=x, y=x @ rng.normal(size=6) / 3)
    raw = {**SPEC, "data": {"name": "npz", "path": str(tmp_path / "r.npz")},
           "train": {**SPEC["train"], "lr": 0.05, "epochs": 4}}
    v = validate_recommendation(spec_from_dict(raw), rec(16, lr=0.05), tmp_path / "v.db")
    # before: no accuracy, so no target, "No run reached the target" and no comparison
    assert any(c["measured_seconds"] is not None for c in v.comparison), v.explanation
    assert not any("No run reached the target" in line for line in v.explanation)
    assert "lowest validation loss" in v.explanation[-1] or "is your base" in v.explanation[-1]
    assert all(r["best_val_acc"] is None and r["status"] == "completed" for r in v.rows)


def test_validation_flags_a_worse_recommendation_on_real_runs(tmp_path):
    # lr 1e-5 barely trains in two epochs; the base spec's lr 0.1 does
    v = validate_recommendation(spec_from_dict(SPEC), rec(16, lr=1e-5), tmp_path / "v.db")
    assert v.base_better
    assert "Your base configuration (batch 16, lr 0.1) is BETTER" in v.explanation[-1]


EXPLODED = ("blew up (its training loss rose to 10.4x its start at epoch 1.5; it ends at 53.3% "
            "validation accuracy)")


def test_a_recommendation_whose_run_blew_up_is_judged_where_it_ends():
    # the README's case: lr 1 scored 57.5% before its loss exploded, and ends at 53.3%
    better, line = against_base((32, 1.0), 0.533, (32, 0.01), 0.55, blew_up=(EXPLODED, None))
    assert better  # the CLI prints it in bold
    assert line == (
        "Your base configuration (batch 32, lr 0.01) is BETTER than the recommendation (batch 32, "
        "lr 1): best validation accuracy 55.0% vs 53.3% at its end. Keep batch 32, lr 0.01. The "
        "recommendation's run blew up (its training loss rose to 10.4x its start at epoch 1.5; it "
        "ends at 53.3% validation accuracy); to train at it, lower its LR (or warm up) and "
        "validate again.")
    # one that blew up, recovered and ends ahead is ahead: it is what the user would get
    better, line = against_base((32, 1.0), 0.983, (32, 0.01), 0.95, blew_up=(EXPLODED, None))
    assert not better and line.startswith("The recommendation (batch 32, lr 1) beats your base")
    assert line.endswith("Its run blew up (its training loss rose to 10.4x its start at epoch 1.5; "
                         "it ends at 53.3% validation accuracy) on the way and still ends ahead.")
    # within noise of the base at its end: keep the base
    better, line = against_base((32, 1.0), 0.555, (32, 0.01), 0.55, blew_up=(EXPLODED, None))
    assert not better and "its run blew up (" in line and "keep batch 32, lr 0.01, or lower" in line
    # a regression's loss, likewise (lower is better)
    better, line = against_base((64, 1.0), 0.03, (32, 0.01), 0.02, loss=True, blew_up=(EXPLODED, None))
    assert better and "lowest validation loss 0.02 vs 0.03 at its end" in line
    # a diverged recommendation is worse by its score, and the blow-up is said too
    better, line = against_base((32, 3.0), -math.inf, (32, 0.01), 0.55,
                                blew_up=("blew up (its loss became non-finite at epoch 1)", None))
    assert better and "55.0% vs diverged. Keep batch 32, lr 0.01." in line
    assert line.endswith("The recommendation's run blew up (its loss became non-finite at "
                         "epoch 1); to train at it, lower its LR (or warm up) and validate again.")


def test_a_base_run_that_blew_up_is_judged_where_it_ends_and_both_blowing_up_is_said():
    better, line = against_base((32, 0.1), 0.5, (32, 1.0), 0.4, blew_up=(None, EXPLODED))
    assert not better
    assert line.startswith("The recommendation (batch 32, lr 0.1) beats your base configuration "
                           "(batch 32, lr 1): best validation accuracy 50.0% vs 40.0% at its end.")
    assert line.endswith("Your base's run blew up (its training loss rose to 10.4x its start at "
                         "epoch 1.5; it ends at 53.3% validation accuracy).")
    better, line = against_base((32, 0.1), 0.7, (32, 1.0), 0.6, blew_up=(EXPLODED, EXPLODED))
    assert not better and "Neither the recommendation (batch 32, lr 0.1) nor" in line
    assert "trained cleanly" in line and "Lower the LR (or warm up) and validate again." in line


def test_blow_up_names_the_diagnosis_and_where_the_run_ends():
    from types import SimpleNamespace

    from batchlab.analysis.findings import Finding

    exploding = Finding("exploding", "exploding: ...", 30, 1.5, {"factor": 10.4})
    run = SimpleNamespace(findings=[exploding], summary={"final_val_acc": 0.533})
    assert blow_up(run, False) == EXPLODED
    assert blow_up(SimpleNamespace(findings=[exploding], summary={"final_val_loss": 24.84}),
                   True).endswith("; it ends at 24.84 validation loss)")
    collapsed = Finding("collapsed", "collapsed", 40, 2.0,
                        {"best_val_acc": 0.6, "final_val_acc": 0.33, "collapse_step": 40})
    run = SimpleNamespace(findings=[collapsed], summary={"final_val_acc": 0.33})
    assert blow_up(run, False) == ("collapsed (its val acc fell from 60% to chance at epoch 2 "
                                   "(it ends at 33%))")
    healthy = Finding("healthy", "trained well", None, None, {"final_val_acc": 0.9})
    assert blow_up(SimpleNamespace(findings=[healthy], summary={}), False) is None


def test_a_recommended_run_that_exploded_is_judged_where_it_ends_on_real_runs(tmp_path):
    # lr 2's loss explodes (finite) early, after which it still scores a higher best accuracy
    # than the base's slow lr 0.003: that best is no evidence for it; where it ends is
    raw = {**SPEC, "sweep": {}, "train": {**SPEC["train"], "lr": 0.003}}
    v = validate_recommendation(spec_from_dict(raw), rec(16, lr=2.0), tmp_path / "v.db")
    with Store(tmp_path / "v.db") as st:
        runs = {a.config["train"]["lr"]: a for a in analyze_experiment(st, "vt-validate").runs}
    exploded, base = runs[2.0], runs[0.003]
    assert exploded.status == "completed" and "exploding" in [f.kind for f in exploded.findings]
    assert exploded.summary["best_val_acc"] > base.summary["best_val_acc"] + 0.01
    end = exploded.summary["final_val_acc"]
    assert f"best validation accuracy {end:.1%} at its end vs {base.summary['best_val_acc']:.1%}" \
        in v.explanation[-1]
    # it ends level with the base (within the 1-point floor): keep the base, said with the blow-up
    assert abs(end - base.summary["best_val_acc"]) <= 0.01 and not v.base_better
    assert "its run blew up (its training loss rose to" in v.explanation[-1]
    assert "keep batch 16, lr 0.003, or lower its LR (or warm up)" in v.explanation[-1]
