"""Bad or thin input: a clear error or a useful report, never a traceback or a blank figure."""

from __future__ import annotations

import re

import pytest
from report_stores import hand_store, tiny_spec
from test_report_html import assert_not_blank, embedded_pngs

from batchlab.errors import BatchlabError, StoreError
from batchlab.plan import plan_runs
from batchlab.report import ReportError, write_comparison, write_report
from batchlab.store import Store


def report(store: Store, name: str, tmp_path) -> tuple[str, object]:
    result = write_report(store, name, tmp_path / "r.html")
    html = result.html.read_text(encoding="utf-8")
    pngs = embedded_pngs(html)
    assert len(pngs) == len(result.figures) > 0
    for png in pngs:
        assert_not_blank(png)
    return html, result


def one_paragraph(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and "Traceback" not in text and len(text) > 40
    return text


def test_unknown_experiment_is_the_stores_error(tmp_path):
    with hand_store(tmp_path / "s.db", "known", [{"batch_size": 16, "lr": 0.1}]) as store:
        with pytest.raises(StoreError) as err:
            write_report(store, "nope", tmp_path / "r.html")
        assert "known" in one_paragraph(err.value)  # it lists the experiments there are
        with pytest.raises(StoreError):
            write_comparison(store, "known", "nope", tmp_path / "c.html")
    assert not (tmp_path / "r.html").exists()


def test_experiment_with_nothing_trained_says_so(tmp_path):
    spec = tiny_spec("empty")
    with Store(tmp_path / "s.db") as store:
        store.add_experiment("empty", spec.model_dump(mode="json"), plan_runs(spec))
        with pytest.raises(ReportError) as err:
            write_report(store, "empty", tmp_path / "r.html")
    text = one_paragraph(err.value)
    assert isinstance(err.value, BatchlabError)
    assert "'empty'" in text and "pending" in text and "batchlab sweep" in text


def test_all_runs_diverged_still_make_a_report_that_says_so(tmp_path):
    runs = [{"batch_size": b, "lr": 10.0, "seed": s, "diverge_at": 4} for b in (16, 32) for s in (0, 1)]
    with hand_store(tmp_path / "s.db", "boom", runs) as store:
        html, result = report(store, "boom", tmp_path)
    pick = html.split('<section id="pick">')[1].split("</section>")[0]  # the answer says so first
    assert "4 diverged" in html and ("All 4 runs diverged: no configuration is recommended; try "
                                     "smaller learning rates (or a warm-up).") in pick
    assert "heatmaps.png" in {p.name for p in result.figures}


def test_a_single_run_makes_a_report(tmp_path):
    with hand_store(tmp_path / "s.db", "one", [{"batch_size": 16, "lr": 0.1}]) as store:
        html, result = report(store, "one", tmp_path)
    assert {"curves-constant", "heatmaps", "to-target", "schedules"} <= {p.stem for p in result.figures}
    assert "1 run: 1 completed" in html and "1 runs" not in html


def test_runs_without_evaluations_or_metrics_are_reported_not_fatal(tmp_path):
    runs = [{"batch_size": 16, "lr": 0.1, "evals": 1000},  # only the step-0 evaluation
            {"batch_size": 32, "lr": 0.1, "steps": 0, "status": "failed"},  # nothing recorded
            {"batch_size": 64, "lr": 0.1}]
    with hand_store(tmp_path / "s.db", "thin", runs) as store:
        html, _ = report(store, "thin", tmp_path)
    assert "failed" in html


def test_probes_alone_make_a_report(tmp_path):
    with Store(tmp_path / "s.db") as store:
        store.add_probe("finder", "lr_range", {}, {"lrs": [1e-3, 1e-2, 1e-1], "losses": [2.3, 1.0, 9.0]})
        store.add_probe("finder", "weird", {}, {"x": "not a list", "n": [1], "nested": {"a": [1, 2]}})
        html, result = report(store, "finder", tmp_path)
    assert [p.stem for p in result.figures] == ["probe-1"]
    assert "weird" in html and "only probes" in html
    assert any("No runs" in n for n in result.notes)


def test_an_unwritable_output_path_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with hand_store(tmp_path / "s.db", "one", [{"batch_size": 16, "lr": 0.1}]) as store:
        with pytest.raises(ReportError) as err:
            write_report(store, "one", tmp_path / "file" / "r.html")
    assert re.search(r"cannot write the report", one_paragraph(err.value))


def test_an_output_path_that_is_a_folder_is_a_clear_error_before_any_figure(tmp_path):
    # open() raised a raw IsADirectoryError, after the figures were drawn into 'out_files/'
    (tmp_path / "out").mkdir()
    with hand_store(tmp_path / "s.db", "one", [{"batch_size": 16, "lr": 0.1}]) as store:
        with pytest.raises(ReportError) as err:
            write_report(store, "one", tmp_path / "out")
    text = one_paragraph(err.value)
    assert f"cannot write the report to '{tmp_path / 'out'}': it is a folder" in text
    assert f"e.g. '{tmp_path / 'out' / 'report.html'}'" in text
    assert not (tmp_path / "out_files").exists()


def test_a_second_report_replaces_the_figures_of_the_first(tmp_path):
    with hand_store(tmp_path / "s.db", "one", [{"batch_size": 16, "lr": 0.1}]) as store:
        (tmp_path / "r_files").mkdir()
        (tmp_path / "r_files" / "stale.png").write_bytes(b"old")
        _, result = report(store, "one", tmp_path)
    assert {p.name for p in result.figures_dir.glob("*.png")} == {p.name for p in result.figures}


def test_a_regression_report_shows_loss_heatmaps_and_no_empty_accuracy_panels(tmp_path):
    """Issue 21, part 2, item 9: no accuracy grid or accuracy-target panel without an accuracy;
    the heatmaps show the validation loss, lowest in the light cells."""
    import numpy as np
    from torch import nn

    import batchlab as bl
    from batchlab.report.plotdata import heatmaps, load_runs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-1.0], [0.5], [2.0]], dtype=np.float32)
    bl.sweep("reg", model=nn.Linear(4, 1), train=(x, y), loss=nn.MSELoss(), momentum=0.0,
             grid={"lr": [0.05, 0.005], "batch_size": [16, 32]}, store=tmp_path / "s.db",
             epochs=2, threads=1)
    with Store(tmp_path / "s.db") as st:
        html, result = report(st, "reg", tmp_path)
        runs = load_runs(st, "reg")
    stems = {p.stem for p in result.figures}
    assert stems == {"curves-constant", "grid-loss-constant", "heatmaps", "schedules", "layers-1"}
    assert any("a regression" in note for note in result.notes)
    assert "not reached" not in html  # no table of targets nothing could reach
    assert "Lowest and final validation loss" in html
    (best,) = heatmaps(runs, "best_val_loss")
    lowest = min(r["best_val_loss"] for r in bl.open(tmp_path / "s.db").runs("reg").to_dict("records"))
    assert np.nanmin(best.mean) == pytest.approx(lowest)


def test_a_comparisons_notes_name_the_experiment_they_are_about(tmp_path):
    """compare of a classification and a regression: the regression's note ("No run recorded
    a validation accuracy") named neither, so it read as said of both."""
    import numpy as np
    from torch import nn

    import batchlab as bl

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)).astype(np.float32)
    bl.sweep("reg", model=nn.Linear(4, 1), train=(x, x.sum(1, keepdims=True)), loss=nn.MSELoss(),
             momentum=0.0, grid={"lr": [0.05]}, store=tmp_path / "s.db", epochs=1, threads=1)
    hand_store(tmp_path / "s.db", "cls", [{"batch_size": 16, "lr": 0.1}]).close()
    with Store(tmp_path / "s.db") as st:
        result = write_comparison(st, "cls", "reg", tmp_path / "cmp.html")
    assert len(result.notes) == 1 and result.notes[0].startswith("reg: No run recorded")
