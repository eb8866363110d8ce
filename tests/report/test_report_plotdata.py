"""Plot data and drawing contracts: smoothing, seed alignment, downsampling, heatmaps, probes,
one style mapping, and "no data: <why>" instead of an empty panel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from report_stores import hand_store

from batchlab.report import plots, summaryplots
from batchlab.report.plotdata import (
    Curve,
    Group,
    TargetData,
    group_runs,
    heatmaps,
    load_runs,
)
from batchlab.report.probedata import ProbePlot, probe_plots
from batchlab.report.series import MAX_POINTS, align, envelope_index, running_mean, stride_index
from batchlab.report.style import LINESTYLES, StyleMap
from batchlab.store import Store


def test_running_mean_skips_non_finite_values():
    v = np.array([1.0, 3.0, math.inf, 5.0, math.nan, 7.0])
    out = running_mean(v, 2)
    assert out[0] == 1 and out[1] == 2 and out[3] == 4 and out[5] == 6
    assert math.isnan(out[2]) and math.isnan(out[4])
    assert np.isnan(running_mean(np.array([math.nan]), 3)).all()


def test_downsampling_keeps_ends_and_extremes_within_the_budget():
    rng = np.random.default_rng(0)
    v = rng.normal(size=10_000)
    v[1234] = 50.0  # a spike striding would likely skip
    idx = envelope_index(v)
    assert len(idx) <= MAX_POINTS and idx[0] == 0 and idx[-1] == 9_999 and 1234 in idx
    s = stride_index(10_000)
    assert len(s) <= MAX_POINTS and s[0] == 0 and s[-1] == 9_999
    assert envelope_index(np.arange(5.0)).tolist() == [0, 1, 2, 3, 4]


def test_align_averages_seeds_and_lets_a_diverged_seed_drop_out():
    steps, mean, std = align([np.array([1, 2, 3]), np.array([1, 2])],
                             [{"v": np.array([1.0, 2.0, 3.0])}, {"v": np.array([3.0, math.inf])}])
    assert steps.tolist() == [1, 2, 3]
    assert mean["v"].tolist() == [2.0, 2.0, 3.0]  # inf is not averaged in
    assert std["v"].tolist() == [1.0, 0.0, 0.0]


def runs_store(tmp_path) -> Store:
    runs = [{"batch_size": b, "lr": lr, "seed": s, "steps": 5000 if b == 16 else 30}
            for b in (16, 64) for lr in (0.1, 1.0) for s in (0, 1)]
    runs[-1]["diverge_at"] = 5
    return hand_store(tmp_path / "s.db", "exp", runs)


def test_groups_fold_seeds_and_thin_long_lines(tmp_path):
    with runs_store(tmp_path) as store:
        runs = load_runs(store, "exp")
    groups = group_runs(runs)
    assert len(groups) == 4 and all(g.n == 2 for g in groups)
    long = next(g for g in groups if g.batch_size == 16)
    assert len(long.curves["train_loss"].y) <= MAX_POINTS
    smooth = long.curves["train_loss_smooth"]
    assert len(smooth.y) <= MAX_POINTS and smooth.std is not None
    assert set(smooth.x) == {"epoch", "step", "examples", "wall_time"}
    assert groups[-1].n_diverged == 1


def test_heatmap_means_over_seeds_and_marks_diverged_final(tmp_path):
    with runs_store(tmp_path) as store:
        runs = load_runs(store, "exp")
    (best,) = heatmaps(runs, "best_val_acc")
    (final,) = heatmaps(runs, "final_val_acc")
    assert best.lrs == [1.0, 0.1] and best.batch_sizes == [16, 64]
    assert best.n.tolist() == [[2, 2], [2, 2]]
    assert final.n[0, 1] == 1 and final.n_diverged[0, 1] == 1  # the diverged seed has no final
    assert np.isfinite(best.mean).all()


def test_probe_arrays_are_found_generically(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.add_probe("e", "lr_range", {}, {"lrs": [1e-3, 1e-2, 1e-1], "losses": [2, 1, 5],
                                              "suggested_lr": 0.01})
        store.add_probe("e", "recs", {}, {"rows": [{"batch_size": 8, "samples_per_s": 10.0},
                                                   {"batch_size": 16, "samples_per_s": 18.0}]})
        store.add_probe("e", "scalar", {}, {"b_noise": 3.0, "lrs": ["a", "b"]})
        lr, recs, scalar = probe_plots(store, "e")
    assert lr.x_key == "lrs" and list(lr.ys) == ["losses"] and lr.summary["suggested_lr"] == 0.01
    assert recs.x_key == "batch_size" and recs.ys["samples_per_s"].tolist() == [10.0, 18.0]
    assert scalar.x is None and not scalar.ys and scalar.summary == {"b_noise": 3.0, "lrs": ["a", "b"]}


def test_one_style_per_lr_and_batch_and_a_compact_legend():
    style = StyleMap.build([0.1, 0.01, 0.001, 0.1], [16, 32, 64, 128, 16])
    assert style.of(0.1, 16) == style.of(0.1, 16)
    assert style.of(0.1, 16)["color"] != style.of(0.01, 16)["color"]
    assert style.of(0.1, 16)["linestyle"] != style.of(0.1, 32)["linestyle"]
    assert len({str(style.linestyle(b)) for b in (16, 32, 64, 128)}) == 4
    assert len(set(map(str, LINESTYLES))) == len(LINESTYLES)
    handles = style.legend_handles([("raw", {"alpha": 0.3})])
    assert [h.get_label() for h in handles][:3] == ["lr 0.001", "lr 0.01", "lr 0.1"]
    assert len(handles) == 3 + 4 + 1  # not one entry per run
    many = StyleMap.build(np.geomspace(1e-4, 1, 50), [32])
    assert len(many.legend_handles()) == 10 + 1


def texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.mark.parametrize("draw", [
    lambda s: plots.learning_curves([], s, "t"),
    lambda s: plots.small_multiples([], s, "loss", "t"),
    lambda s: plots.schedules([], s, "t"),
    lambda s: summaryplots.heatmaps([], [], "t"),
    lambda s: summaryplots.to_target(TargetData(0.9, np.array([]), {}, {}, None), "t"),
    lambda s: summaryplots.to_target(TargetData(None, np.array([16.0]), {"steps": np.array([np.nan])},
                                                {}, None), "t"),
    lambda s: summaryplots.probe(ProbePlot(1, "k", None, None, {}, {})),
])
def test_a_panel_without_data_says_no_data_and_why(draw):
    fig = draw(StyleMap.build([], []))
    assert "no data: " in texts(fig)


def test_a_group_without_evaluations_says_so_in_its_panel():
    g = Group("k", "constant", 0.1, 16, ("r",), ("failed",),
              {"lr": Curve({v: np.array([1.0, 2.0]) for v in ("epoch", "step", "examples", "wall_time")},
                           np.array([0.1, 0.1]))})
    fig = plots.learning_curves([g], StyleMap.build([0.1], [16]), "t")
    assert "no data: no run recorded validation loss" in texts(fig)
    assert "no data: no evaluation" in texts(plots.small_multiples([g], StyleMap.build([0.1], [16]),
                                                                    "acc", "t"))
