"""The diagnosis tables: within-noise warning, alpha vs the scaling rules, critical batch."""

from __future__ import annotations

import io
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from batchlab.analysis import CriticalBatchFit, Finding, PowerLawFit
from batchlab.analysis.scaling import judge_exponent
from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.report import diagnosis, write_report
from batchlab.spec import spec_from_dict
from batchlab.store import Store

SQRT_FIT = PowerLawFit(alpha=0.55, coefficient=0.01, r2=0.97, n=4, alpha_stderr=0.02)


def group(label: str, best: float, std: float | None) -> dict:
    return {"label": label, "n": 2, "n_runs": 2, "best_val_acc_mean": best, "best_val_acc_std": std,
            "final_val_acc_mean": best - 0.01, "final_val_acc_std": std, "n_diverged": 0}


def analysis(**over) -> SimpleNamespace:
    base = dict(
        target=0.9, conclusions=["best config: batch 32, lr 0.1."],
        best={"group": group("batch 32, lr 0.1", 0.95, 0.01),
              "runner_up": group("batch 64, lr 0.1", 0.945, 0.01), "difference": 0.005,
              "noise": 0.01, "noise_source": "seeds", "within_noise": True},
        to_target_by_batch=[{"batch_size": 32, "steps": 100.0, "epochs": 2.0, "examples": 3200.0,
                             "wall_time": 1.5, "steps_label": "batch 32, lr 0.1"},
                            {"batch_size": 64, "steps": None, "epochs": None, "examples": None,
                             "wall_time": None, "steps_label": None}],
        best_lr_by_batch=[{"batch_size": 32, "lr": 0.1, "effective_lr": 0.1, "schedule": "constant",
                           "best_val_acc": 0.95, "n_lrs": 3}],
        gap_by_batch=[{"batch_size": 32, "label": "batch 32, lr 0.1", "train_acc": 0.99,
                       "val_acc": 0.95, "gap": 0.04, "gap_std": 0.01}],
        lr_exponent=SQRT_FIT, lr_rule=judge_exponent(SQRT_FIT, None, 8.0),
        critical_batch=CriticalBatchFit(s_min=100.0, e_min=6400.0, b_crit=64.0, rmse=0.02, n=4),
        runs=[SimpleNamespace(run_id="abc", status="completed", verdict=None, findings=[
            Finding("overfitting", "gap 12 points", 10, 1.0, {"gap": 0.12})])],
    )
    return SimpleNamespace(**{**base, **over})


def html(a: SimpleNamespace) -> str:
    return "".join(body for _, body in diagnosis.diagnosis_parts(a))


def test_within_noise_is_a_visible_warning_with_the_numbers():
    text = html(analysis())
    assert 'class="warn"' in text and "Within noise" in text and "0.005" in text and "0.01" in text
    assert "0.95 ± 0.01" in text and "runner-up" in text


def test_beyond_noise_has_no_warning():
    a = analysis()
    a.best = {**a.best, "difference": 0.05, "within_noise": False}
    assert 'class="warn"' not in html(a)


def test_alpha_is_compared_with_linear_and_sqrt_rules():
    text = html(analysis())  # 0.55 ± 4.303 x 0.02: only the square-root rule inside
    assert "α = 0.55" not in text and "0.55 ± 0.09" in text
    assert "the square-root rule (lr ∝ √B); the interval excludes the linear rule" in text
    assert "+0.05" in text and "-0.45" in text  # fitted minus sqrt, fitted minus linear
    assert "not fitted" in html(analysis(lr_exponent=None))


def test_alpha_whose_interval_holds_both_rules_names_neither():
    """The issue's case: alpha = 0.7 ± 0.83 cannot tell linear from square-root."""
    fit = PowerLawFit(0.7, 0.01, 0.8, 4, alpha_stderr=0.83 / 4.303)
    text = html(analysis(lr_exponent=fit, lr_rule=judge_exponent(fit, 3.16, 8.0)))
    assert "0.70 ± 0.83" in text and "cannot tell apart the linear rule" in text
    assert "closest" not in text and "must shrink below ±0.30" in text  # the distance to linear
    assert "a finer LR grid (steps of x3.16 limit α to ±0.55" in text
    assert "more batch sizes (the fit&#x27;s own 95% error is ±0.83 with 4)" in text


def test_critical_batch_and_time_to_target_tables():
    text = html(analysis())
    assert "B_crit" in text and ">64<" in text and "not reached" in text
    assert "No critical-batch fit" in html(analysis(critical_batch=None))


def test_nothing_best_and_per_run_findings():
    assert "No configuration qualifies" in html(analysis(best=None))
    verdict = diagnosis.run_verdicts(analysis())["abc"]
    assert verdict.label == "overfits" and verdict.evidence == ["overfitting: gap 12 points"]
    assert verdict.sentence == "It overfits at epoch 1: train acc ends 12 points above val acc."


# ------------------------------------------------------------------ a regression: by val loss

REG_FINAL = {(16, 0.1): 0.44, (16, 0.01): 0.017, (64, 0.1): 0.56, (64, 0.01): 0.0446}


def regression_store(path):
    """A stored 2x2 regression sweep written as events (no training, no accuracy): each run's
    val loss falls to REG_FINAL (its summary says so, as a trainer's does), its train loss
    (eval) to 0.8 of it."""
    spec = spec_from_dict({"name": "reg", "model": {"name": "mlp"}, "train": {"epochs": 4},
                           "sweep": {"grid": {"train.batch_size": [16, 64], "train.lr": [0.1, 0.01]}}})
    runs = plan_runs(spec)
    store = Store(path)
    store.add_experiment("reg", spec.model_dump(mode="json"), runs)
    for r in runs:
        final, rows = REG_FINAL[r.config.train.batch_size, r.config.train.lr], []
        store.record(RunStarted(r.run_id, 40, 0, {}))
        for e in range(5):
            loss = final + math.exp(-2 * e) - math.exp(-8)  # exactly `final` at epoch 4
            rows += [(k, 10 * e, v, float(e), 320 * e, float(e))
                     for k, v in (("val_loss", loss), ("train_eval_loss", 0.8 * loss))]
            rows += [("train_loss", 10 * e, 0.8 * loss, float(e), 320 * e, float(e))] if e else []
        store.record(MetricRows(r.run_id, rows, 40))
        summary = {"n_train": 320, "steps_per_epoch": 10, "final_val_loss": final, "best_val_loss": final}
        store.record(RunEnded(r.run_id, "completed", 40, 1.0, summary))
    return store


def cells(html_text: str, heading: str) -> list[list[str]]:
    """The rows of the first table after ``heading`` as lists of cell texts."""
    part = html_text[html_text.index(heading):]
    body = part[:part.index("</table>")]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def test_a_regressions_tables_show_the_validation_loss(tmp_path):
    """The reported case: before, the best configuration was 'none by accuracy' and the best-LR
    and gap tables were rows of dashes; now they show the val loss that ranked them."""
    with regression_store(tmp_path / "s.db") as store:
        text = write_report(store, "reg", tmp_path / "r.html").html.read_text(encoding="utf-8")
    best = cells(text, "<h3>Best configuration")
    assert best[0][3:5] == ["lowest val loss (mean ± std)", "final val loss"]
    assert best[1][:5] == ["best", "batch 16, lr 0.01, constant", "1/1", "0.017", "0.017"]
    assert best[2][:5] == ["runner-up", "batch 64, lr 0.01, constant", "1/1", "0.0446", "0.0446"]
    assert "Difference 162% in val loss vs noise 5% (noise threshold)." in text
    assert cells(text, "<h3>Best learning rate per batch size") == [
        ["batch", "best lr", "effective lr", "schedule", "lowest val loss", "LRs tried"],
        ["16", "0.01", "0.01", "constant", "0.017", "2"], ["64", "0.01", "0.01", "constant", "0.0446", "2"]]
    assert cells(text, "<h3>Generalisation gap per batch size") == [
        ["batch", "best configuration", "final train loss (eval)", "final val loss"],
        ["16", "batch 16, lr 0.01, constant", "0.0136", "0.017"],
        ["64", "batch 64, lr 0.01, constant", "0.03568", "0.0446"]]
    runs = cells(text, "Runs and their diagnosis</h2>")
    assert runs[0][7:9] == ["final val loss", "lowest val loss"]
    assert sorted(r[7] for r in runs[1:]) == ["0.017", "0.0446", "0.44", "0.56"]
    assert "Pick batch 16, lr 0.01, constant." in text and "Lowest val loss 0.017 (1 seed)." in text


def test_the_dashboards_heatmaps_of_a_regression_are_its_validation_loss(tmp_path):
    from batchlab.report.plotdata import load_runs
    from batchlab.web.payload import analysis_summary

    with regression_store(tmp_path / "s.db") as store:
        summary = analysis_summary(load_runs(store, "reg"), None, [])
    assert [h["metric"] for h in summary["heatmaps"]] == ["best_val_loss", "final_val_loss"]
    best = summary["heatmaps"][0]
    cell = {(lr, b): best["mean"][i][j] for i, lr in enumerate(best["lrs"])
            for j, b in enumerate(best["batch_sizes"])}
    assert cell == pytest.approx({k[::-1]: v for k, v in REG_FINAL.items()})


def test_the_time_to_target_table_names_the_wall_times_own_configuration():
    """Each clock is minimised on its own: when another configuration is fastest in seconds,
    the row says which, instead of giving its seconds to the fastest in steps."""
    rows = [{"batch_size": 64, "steps": 38.0, "epochs": 1.0, "examples": 2432.0, "wall_time": 0.84,
             "steps_label": "batch 64, lr 0.1, step", "wall_time_label": "batch 64, lr 0.1, constant"},
            {"batch_size": 128, "steps": 20.0, "epochs": 1.0, "examples": 2560.0, "wall_time": 0.5,
             "steps_label": "batch 128, lr 0.1, constant", "wall_time_label": "batch 128, lr 0.1, constant"}]
    text = diagnosis.to_target(SimpleNamespace(to_target_by_batch=rows, target=0.9))
    assert "batch 64, lr 0.1, step (wall time: batch 64, lr 0.1, constant)" in text
    assert "batch 128, lr 0.1, constant (wall time" not in text


def test_a_regressions_learning_curves_have_no_accuracy_row_and_name_their_x_axes(tmp_path):
    """Before, the figure kept an empty third row ('no data: no run recorded validation
    accuracy') and, x labels being on that row only, no panel named its x axis."""
    from batchlab.report.build import experiment_figure

    with regression_store(tmp_path / "s.db") as store:
        fig = experiment_figure(store, "reg")
    axes = [ax for ax in fig.axes if ax.get_ylabel() or ax.get_xlabel() or ax.lines]
    assert [ax.get_ylabel() for ax in axes if ax.get_ylabel()] == ["train loss", "validation loss"]
    assert [ax.get_xlabel() for ax in axes if ax.get_xlabel()] == [
        "epochs", "steps", "examples seen", "wall time (s)"]
    assert not [t.get_text() for ax in fig.axes for t in ax.texts if "no data" in t.get_text()]


def test_an_empty_last_row_of_learning_curves_still_names_its_x_axes(tmp_path):
    """Classification runs that never evaluated: the accuracy row stays (say 'no data') and
    carries the x labels."""
    from batchlab.report.plotdata import Curve, Group
    from batchlab.report.plots import learning_curves
    from batchlab.report.style import StyleMap

    x = np.arange(1.0, 6.0)
    curve = Curve({"epoch": x, "step": x, "examples": 32 * x, "wall_time": x}, 1 / x, None)
    group = Group("g", "constant", 0.1, 0.1, 32, ("r",), ("completed",),
                  {"train_loss": curve, "train_loss_smooth": curve})
    fig = learning_curves([group], StyleMap.build([0.1], [32], [0.1]), "t")
    assert [ax.get_xlabel() for ax in fig.axes[8:12]] == ["epochs", "steps", "examples seen", "wall time (s)"]
    assert "no data" in fig.axes[8].texts[0].get_text()


def table_text(table) -> str:
    from rich.console import Console

    console = Console(width=300, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def test_a_regressions_cli_tables_show_the_validation_loss(tmp_path):
    """Before, the sweep's table and `ls` showed only accuracy columns, all '-', for a
    regression; now the final and lowest val loss the analysis ranks it by."""
    from batchlab.cli.browse import _with_ids
    from batchlab.cli.runs import results_table
    from batchlab.results import experiment_rows, run_row

    with regression_store(tmp_path / "s.db") as store:
        records = store.runs("reg")
        swept = table_text(results_table([run_row(r) for r in records], "reg"))
        listed = table_text(_with_ids(experiment_rows(store, "reg"), records, "reg", set(), {}))
    for text in (swept, listed):
        assert "val acc" not in text and "lowest val loss" in text
        assert "0.017" in text and "0.0446" in text  # REG_FINAL's best two
    header = next(line for line in swept.splitlines() if "lowest val loss" in line)
    assert "train acc" not in header


def test_a_classifications_cli_tables_keep_the_accuracy(tmp_path):
    from batchlab.cli.runs import results_table

    row = {"status": "completed", "batch_size": 16, "lr": 0.1, "schedule": "constant",
           "final_val_loss": 0.3, "best_val_loss": 0.25, "final_val_acc": 0.9, "best_val_acc": 0.92,
           "best_val_acc_epoch": 3, "wall_time_s": 1.0}
    text = table_text(results_table([row], "cls"))
    assert "best val acc (epoch)" in text and "0.9200 (3)" in text and "lowest val loss" not in text
