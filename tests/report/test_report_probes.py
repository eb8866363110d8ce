"""The report's Probes section and the probe figures (issue 9): a figure per probe with
labelled axes and a one-line reading, the latest result per probe and settings, every batch
size of a range test, the noise scale explained in the user's terms, honest legends."""

from __future__ import annotations

import re

import pytest

from batchlab.report.probedata import latest_views, noise_advice, view
from batchlab.report.probefigs import probe_figure, write_probe_figure
from batchlab.store import ProbeRecord


def record(i: int, kind: str, result: dict, config: dict | None = None) -> ProbeRecord:
    return ProbeRecord(i, "e", kind, float(i), config or {"train": {"lr": 0.1}}, result)


@pytest.fixture(scope="module")
def views(probe_results):
    return {kind: view(record(i, kind, result, config))
            for i, (kind, config, result) in enumerate(probe_results, 1)}


def labels(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_each_probe_kind_has_its_own_figure_with_labelled_axes(views):
    for kind, v in views.items():
        fig = probe_figure(v)
        assert fig is not None, kind
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel(), (kind, ax.get_title())
        assert v.title in fig._suptitle.get_text()


def test_the_range_test_figure_shows_every_batch_size_and_seed(views):
    v = views["lr_range"]
    fig = probe_figure(v)
    loss_ax = fig.axes[0]
    assert len(loss_ax.get_lines()) == 2 * 2 + 2  # 2 batch sizes x 2 seeds, plus 2 suggestions
    texts = labels(fig)
    assert "batch 16" in texts and "batch 64" in texts
    assert any(t.startswith("suggested at batch 64: ") for t in texts)
    assert any(t.startswith("fit: lr ∝ B^") for t in texts)  # the second panel: lr* vs B
    assert fig.axes[1].get_xlabel() == "batch size"
    assert "at batch 16" in v.reading and "at batch 64" in v.reading and "B^" in v.reading


def test_without_a_range_test_the_figure_draws_each_rung_of_miniatures():
    from batchlab.probes.lr_search import lr_find
    from batchlab.spec import RunConfig, spec_from_dict

    s = spec_from_dict({"data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 400},
                        "model": {"name": "mlp", "hidden": [16]},
                        "train": {"batch_size": 32, "lr": 0.05, "threads": 1, "steps": 200}})
    result = lr_find(RunConfig(data=s.data, model=s.model, train=s.train)).to_dict()
    assert result["per_batch"][0]["repeats"] == []  # horizon: no range test unless asked
    fig = probe_figure(view(record(1, "lr_range", result)))
    ax = fig.axes[0]
    assert ax.get_ylabel() == "validation loss after the miniature"
    h0, h1 = result["per_batch"][0]["rung_steps"]
    texts = labels(fig)
    assert f"batch 32, {h0} steps" in texts and f"batch 32, {h1} steps" in texts
    finite = [t for t in result["per_batch"][0]["trials"] if t["val_loss"] is not None]
    plotted = sum(len(line.get_xdata()) for line in ax.get_lines() if "steps" in line.get_label())
    assert plotted == len(finite)


def test_a_run_too_short_for_miniatures_gets_a_figure_that_says_so():
    from batchlab.probes.lr_search import lr_find
    from batchlab.spec import RunConfig, spec_from_dict

    s = spec_from_dict({"data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 400},
                        "model": {"name": "mlp", "hidden": [16]},
                        "train": {"batch_size": 32, "threads": 1, "steps": 10}})
    result = lr_find(RunConfig(data=s.data, model=s.model, train=s.train)).to_dict()
    assert result["per_batch"][0]["trials"] == []  # 10 steps: not room for two 8-step miniatures
    ax = probe_figure(view(record(1, "lr_range", result))).axes[0]
    assert ax.get_title() == "no miniatures" and ax.get_yticks().size == 0
    assert any(t.get_text().startswith("no miniature trained: the run is too short") for t in ax.texts)


def test_max_batch_figure_marks_what_does_not_fit_only_when_something_does_not(views):
    v = views["max_batch"]
    assert any(not t["fits"] for t in v.result["trials"])  # the 10 KiB limit stops 128
    texts = labels(probe_figure(v))
    assert "fits" in texts and "does not fit" in texts
    assert any(t.startswith("memory limit: 10 KiB") for t in texts)
    assert f"recommended: {v.result['recommended']}" in texts
    all_fit = dict(v.result, trials=[t for t in v.result["trials"] if t["fits"]])
    texts = labels(probe_figure(view(record(9, "max_batch", all_fit))))
    assert not any("not fit" in t for t in texts)
    assert f"Largest batch that fits: {v.result['largest']}" in v.reading


def test_recommend_figure_has_no_does_not_fit_entry_without_such_points():
    preds = [{"batch_size": b, "samples_per_s": 100.0 * b, "relative_time": t, "seconds": None,
              "fits": True, "steps_factor": 1.0} for b, t in ((16, 2.0), (64, 1.0))]
    result = {"batch_size": 64, "lr": 0.01, "lr_source": "test", "warmup_steps": 0, "b_noise": 40.0,
              "predictions": preds, "batch_sizes": [16, 64]}
    texts = labels(probe_figure(view(record(1, "recommend", result))))
    assert "recommended: 64" in texts and not any("not fit" in t for t in texts)
    preds[1]["fits"] = False
    assert "does not fit in memory" in labels(probe_figure(view(record(1, "recommend", result))))


def test_recommend_figure_draws_batches_that_need_more_epochs_hollow():
    preds = [{"batch_size": b, "samples_per_s": 100.0 * b, "relative_time": t, "seconds": None,
              "fits": True, "steps_factor": 1.0, "examples_factor": f}
             for b, t, f in ((16, 2.0, 1.0), (64, 1.0, 2.5))]
    result = {"batch_size": 16, "lr": 0.01, "lr_source": "test", "warmup_steps": 0, "b_noise": 8.0,
              "predictions": preds, "batch_sizes": [16, 64], "examples_slack": 1.1}
    fig = probe_figure(view(record(1, "recommend", result)))
    assert "needs more epochs than yours" in labels(fig)
    hollow = [ln for ln in fig.axes[0].lines if ln.get_label() == "needs more epochs than yours"]
    assert list(hollow[0].get_xdata()) == [64] and hollow[0].get_markerfacecolor() == "none"
    del result["examples_slack"]  # stored before the slack was recorded: every batch eligible
    assert "needs more epochs than yours" not in labels(probe_figure(view(record(1, "recommend", result))))


def test_noise_scale_is_explained_for_the_batch_size_to_pick(views):
    v = views["noise_scale"]
    b = v.result["b_simple"]
    fig = probe_figure(v)
    texts = labels(fig)
    assert any(t.startswith("B_simple over the whole probe") for t in texts)
    assert any(t.startswith("95% interval") for t in texts)
    assert f"the batch size probed: {v.result['batch_size']}" in texts
    assert "examples per step" in v.reading and "steps to a target" in v.reading
    # in the user's terms: how many times the fewest steps the probed batch needs
    factor = 1 + b / v.result["batch_size"]
    assert f"needs ≈ {factor:.2g}× the fewest steps" in v.reading
    assert "below it" in noise_advice(100.0, 16) and "above it" in noise_advice(10.0, 64)


def test_the_end_of_run_ema_outside_the_interval_is_explained(views):
    r = dict(views["noise_scale"].result, ci_low=5.0, ci_high=6.0, b_simple=5.5, b_simple_ema=9.0)
    reading = view(record(1, "noise_scale", r)).reading
    assert "ends at 9, outside the interval" in reading and "moving average" in reading
    inside = view(record(1, "noise_scale", dict(r, b_simple_ema=5.8))).reading
    assert "outside" not in inside


def test_only_the_latest_result_per_probe_and_settings_is_shown(probe_results):
    (kind, config, result), *_ = probe_results
    other = dict(result, batch_sizes=[16], settings={**result["settings"], "steps": 20})
    records = [record(1, kind, result, config), record(2, "throughput", probe_results[2][2], config),
               record(3, kind, result, config), record(4, kind, other, config)]
    shown = latest_views(records)
    assert [(v.id, v.replaces) for v in shown] == [(3, (1,)), (4, ()), (2, ())]


def test_the_probes_section_has_readings_and_figures_not_raw_json(made):
    html = made.html
    section = html[html.index('<section id="probes">'):]
    section = section[:section.index("</section>")]
    assert '"per_batch"' not in section and "<pre>" not in section  # no JSON dump
    rows = re.findall(r'<tr><td>(\d+)</td><td class="l">([^<]+)</td>', section)
    assert rows == [("2", "LR suggestion"), ("3", "Largest batch that fits"), ("4", "Throughput"),
                    ("5", "Gradient noise scale")]
    assert "not shown: #1" in section  # the re-run with the same settings
    assert "Suggested LR:" in section and "How to read the gradient noise scale" in section
    assert section.count("<img") == 4


def test_the_probe_commands_write_the_same_figure(probe_results, tmp_path):
    kind, config, result = probe_results[3]
    out = write_probe_figure(record(1, kind, result, config), tmp_path / "noise.png")
    assert out is not None and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_probe_figure(record(2, "odd", {"n": 1}), tmp_path / "odd.png") is None


def test_the_lr_readings_exponent_is_worded_by_its_sign_and_the_horizon_strategy_named():
    """The report said 'the suggestion grows as B^-0.55' for an LR that falls with the batch."""
    result = {"strategy": "horizon", "alpha": -0.55, "settings": {},
              "per_batch": [{"batch_size": 16, "suggested_lr": 0.1, "repeats": []},
                            {"batch_size": 64, "suggested_lr": 0.05, "repeats": []}]}
    reading = view(record(1, "lr_range", result)).reading
    assert "best LR scales as B^-0.55 (falls as the batch grows" in reading
    assert "grows as B^-" not in reading
    assert "(the best of miniatures of the run, compared by successive halving)" in reading


def test_a_batch_near_the_noise_scale_is_told_both_of_its_costs():
    """Batch 16 at B_simple 28.6 read 'it needs ≈ 2.8× the fewest steps and about as many extra
    examples': the examples cost E_min·(1 + B/B_simple) is 1.6×, not 'as many'."""
    assert noise_advice(28.63, 16).endswith(
        "Your batch 16 is near it: it needs ≈ 2.8× the fewest steps and ≈ 1.6× the fewest "
        "examples, a balanced choice.")


def test_the_horizon_lr_search_states_the_settings_it_ran_with():
    """The settings column said '0 seed(s) each; LR from 1e-07 to 10 over 20 steps' of a search
    by miniatures alone: no range test ran (no seeds, no such LR range or steps)."""
    settings = {"budget": 0.5, "end_lr": 10.0, "repeats": 0, "start_lr": 1e-07, "steps": 20}
    result = {"strategy": "horizon", "settings": settings, "suggested_lr": 0.0215,
              "per_batch": [{"batch_size": 16, "suggested_lr": 0.0215, "repeats": []}]}
    shown = view(record(1, "lr_range", result)).settings
    assert shown == "batch sizes 16; miniatures of the run within 0.5 of the run's steps (no range test)"
    with_range = {**result, "settings": {**settings, "repeats": 1}}
    assert view(record(2, "lr_range", with_range)).settings == (
        "batch sizes 16; miniatures of the run within 0.5 of the run's steps; beside them a range test, "
        "1 seed(s) each, LR from 1e-07 to 10 over 20 steps")


def test_a_throughput_reason_that_ends_its_sentence_gets_one_full_stop():
    """'... or with longer windows.. batch sizes [8, 32, 128]: ...' in the probe table."""
    result = {"batch_sizes": [8, 32], "samples_per_s": [140.0, 1274.0], "knee": None,
              "knee_reason": "the curve is unreliable: measure again with longer windows.",
              "notes": ["batch sizes [8, 32]: measured again"], "settings": {}}
    reading = view(record(1, "throughput", result)).reading
    assert reading.endswith("no knee: the curve is unreliable: measure again with longer windows. "
                            "batch sizes [8, 32]: measured again")
