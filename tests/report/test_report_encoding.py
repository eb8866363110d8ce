"""What the figures encode and say (issue 9): colour is the LR actually applied (the spec's LR
named where a scaling rule moved it), heatmap colours that do not inflate small differences,
the critical batch size in the legend, legends clear of titles, swept fields named as such."""

from __future__ import annotations

import numpy as np
import pytest

from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.report import plots, sections, summaryplots
from batchlab.report.build import style_for
from batchlab.report.plotdata import TargetData, group_runs, heatmaps, load_runs
from batchlab.report.style import StyleMap
from batchlab.spec import spec_from_dict
from batchlab.store import Store

DATA = {"name": "synthetic", "shape": [10], "classes": 3, "size": 200}


def sweep(store: Store, name: str, grid: dict, **train) -> None:
    run_sweep(spec_from_dict({
        "name": name, "data": DATA, "model": {"name": "mlp", "hidden": [8]},
        "train": {"epochs": 1, "threads": 1, **train}, "sweep": {"grid": grid}}),
        store, InlineExecutor(threads=1))


@pytest.fixture(scope="module")
def scaled(tmp_path_factory):
    """A sweep under the square-root rule: lr 0.1 at batch 16 applies 0.1, at batch 64 0.2."""
    with Store(tmp_path_factory.mktemp("scaled") / "s.db") as store:
        sweep(store, "sqrt", {"train.batch_size": [16, 64], "train.lr": [0.1, 0.01]},
              scale_lr="sqrt", base_batch_size=16)
        yield load_runs(store, "sqrt")


def legend_texts(fig) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


def test_colour_and_legend_follow_the_lr_applied(scaled):
    by_batch = {(r.batch_size, r.spec_lr): r.lr for r in scaled}
    assert by_batch[(16, 0.1)] == pytest.approx(0.1) and by_batch[(64, 0.1)] == pytest.approx(0.2)
    style = style_for(scaled)
    assert style.color(0.1) != style.color(0.2)  # same spec LR, different LR applied
    groups = group_runs(scaled)
    fig = plots.learning_curves(groups, style, "t")
    texts = legend_texts(fig)
    assert "lr 0.2 (spec 0.1)" in texts and "lr 0.02 (spec 0.01)" in texts
    assert "lr 0.1" in texts and "lr 0.01" in texts  # batch 16 = the base: no note
    line_colours = {tuple(line.get_color()) for ax in fig.axes for line in ax.get_lines()}
    assert tuple(style.color(0.2)) in line_colours and tuple(style.color(0.02)) in line_colours


def test_grid_rows_are_the_spec_lr_and_cells_name_the_lr_applied(scaled):
    style = style_for(scaled)
    fig = plots.small_multiples(group_runs(scaled), style, "acc", "t")
    titles = {ax.get_title() for ax in fig.axes}
    assert "lr 0.2 (spec 0.1) · batch 64" in titles and "lr 0.1 · batch 16" in titles
    best = heatmaps(scaled, "best_val_acc")[0]
    assert best.lrs == [0.1, 0.01] and best.scaled
    np.testing.assert_allclose(best.applied, [[0.1, 0.2], [0.01, 0.02]])
    fig = summaryplots.heatmaps([best], heatmaps(scaled, "final_val_acc"), "t")
    cells = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert "lr 0.2" in cells and "lr 0.02" in cells
    assert "applied" in fig.axes[0].get_ylabel()


def test_overview_and_runs_table_show_spec_and_applied_lr(scaled):
    text = sections.overview("sqrt", scaled, None)
    assert "learning rates [0.01, 0.1] in the spec, applied after the sqrt scaling rule: " \
           "[0.01, 0.02, 0.1, 0.2]" in text
    table = sections.runs_table(scaled, {})
    assert "lr applied" in table and "<td>0.2</td>" in table


def test_the_legend_names_every_spec_lr_behind_an_applied_lr():
    style = StyleMap.build([0.1, 0.2, 0.2], [16, 64, 16], [0.1, 0.1, 0.2])
    assert style.lr_label(0.2) == "lr 0.2 (spec 0.1)"
    assert style.lr_label(0.1) == "lr 0.1"
    assert [h.get_label() for h in style.legend_handles()][:2] == ["lr 0.1", "lr 0.2 (spec 0.1)"]


def test_a_small_accuracy_difference_does_not_take_the_whole_colour_scale():
    assert summaryplots.color_limits(np.array([0.95, 0.97])) == pytest.approx((0.87, 0.97))
    assert summaryplots.color_limits(np.array([0.2, 0.9])) == (0.2, 0.9)  # wide: as is
    assert summaryplots.color_limits(np.array([0.03, 0.05])) == pytest.approx((0.0, 0.1))


def test_heatmap_colour_bar_states_its_span(tmp_path):
    with Store(tmp_path / "s.db") as store:
        sweep(store, "h", {"train.batch_size": [16, 64]}, lr=0.1)
        runs = load_runs(store, "h")
    fig = summaryplots.heatmaps(heatmaps(runs, "best_val_acc"), heatmaps(runs, "final_val_acc"), "t")
    colorbar = fig.axes[-1]
    assert "colours span" in colorbar.get_ylabel()
    lo, hi = colorbar.get_ylim()
    assert hi - lo >= summaryplots.MIN_COLOR_SPAN - 1e-9


def test_the_critical_batch_size_is_in_the_legend():
    b = np.array([16.0, 64.0, 256.0])
    data = TargetData(0.9, b, {"steps": np.array([100.0, 30.0, 12.0]),
                               "examples": np.array([1600.0, 1920.0, 3072.0]),
                               "wall_time": np.array([3.0, 1.0, 0.5])},
                      {}, (8.0, 1000.0, 125.0))
    fig = summaryplots.to_target(data, "t")
    for ax in fig.axes[:2]:
        texts = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "critical batch size B_crit ≈ 125" in texts
        assert any(t.startswith("fit ") for t in texts)


def test_a_legend_never_covers_the_title(scaled):
    """One batch size makes the narrowest grid: its legend used to start level with the
    title and run into it."""
    one = [r for r in scaled if r.batch_size == 16]
    style = style_for(one)
    fig = plots.small_multiples(group_runs(one), style, "loss", "a long title that spans the figure")
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    title = fig._suptitle.get_window_extent(renderer)
    legend = fig.legends[0].get_window_extent(renderer)
    overlap_x = min(title.x1, legend.x1) > max(title.x0, legend.x0)
    assert legend.y1 <= title.y0 or not overlap_x


def test_swept_fields_are_named_as_themselves_not_as_schedules(tmp_path):
    with Store(tmp_path / "s.db") as store:
        sweep(store, "m", {"train.batch_size": [16], "train.momentum": [0.0, 0.9]},
              optimizer="sgd", lr=0.1)
        runs = load_runs(store, "m")
    text = sections.overview("m", runs, None)
    assert "schedules [&#x27;constant&#x27;]" in text
    assert "also swept: train.momentum [0, 0.9]" in text
    fig = summaryplots.heatmaps(heatmaps(runs, "best_val_acc"), heatmaps(runs, "final_val_acc"), "t")
    titles = [ax.get_title() for ax in fig.axes[:2]]
    assert titles[0].endswith("schedule: constant · momentum=0.0")
