"""The dashboard and the report's interactive charts in a real headless Chromium (Debian's
/usr/bin/chromium driven by Playwright; never a downloaded browser). Skipped when either is
missing. Every page runs with requests outside the dashboard (or, for the report, outside the
file) aborted and recorded, so a script or style fetched from the network fails the test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import get, serving
from web_stores import DIVERGED_ERROR, EVIL, EVIL_ERROR, HUGE, make_regression_store, make_store

import batchlab.web
from batchlab.store import Store

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and Path(p).exists()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-quic", "--no-first-run"]
WAIT_MS = 60_000  # a generous bound on a busy machine; the conditions, not the time, are tested


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watched:
    """A page with everything that must not happen recorded: console errors, uncaught
    exceptions, dialogs (an alert() that escaped) and requests outside ``allowed``."""

    def __init__(self, browser: Any, allowed: str) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.outside: list[str] = []

        def route(r: Any) -> None:
            if r.request.url.startswith(allowed):
                r.continue_()
            else:
                self.outside.append(r.request.url)
                r.abort()

        self.context.route("**/*", route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def points(self, chart: str) -> int:
        return int(self.page.get_attribute(chart, "data-points") or 0)

    def assert_clean(self) -> None:
        assert not self.errors and not self.dialogs and not self.outside, \
            (self.errors, self.dialogs, self.outside)


@pytest.fixture
def watched(browser: Any) -> Iterator[Any]:
    made: list[Watched] = []

    def make(allowed: str) -> Watched:
        made.append(Watched(browser, allowed))
        return made[-1]

    yield make
    for w in made:
        w.context.close()


def wait_js(w: Watched, condition: str) -> None:
    """Until the JavaScript ``condition`` holds on the page (a function: the page's CSP
    forbids evaluating strings)."""
    w.page.wait_for_function(f"() => {condition}", timeout=WAIT_MS)


def wait_rows(w: Watched, n: int) -> None:
    wait_js(w, f"document.querySelectorAll('#runs tbody tr').length === {n}")


def test_dashboard_lists_the_runs_and_draws_their_curves(grid_db, watched):
    with Store(grid_db, create=False) as st:
        runs = st.runs("grid")
    with serving(grid_db) as url:
        w = watched(url)
        w.page.goto(url)
        wait_rows(w, 4)
        wait_js(w, "document.querySelector('#chart-a').dataset.series === '4'")
        ids = w.page.locator("#runs tbody tr td:first-child").all_text_contents()
        assert sorted(ids) == sorted(r.id[:10] for r in runs)
        steps = sum(r.progress_step for r in runs)
        assert w.points("#chart-a") == steps  # every train_loss row drawn
        assert w.page.locator("#chart-a canvas").count() >= 1
        legend = w.page.locator("#style-legend").inner_text()
        assert "lr 0.1" in legend and "lr 0.01" in legend and "batch 64" in legend
        # the side panel: the answer first, not the runs again (they are in the table)
        wait_js(w, "document.querySelector('#diagnosis .bl-pick') !== null")
        _, summary = get(url + "api/summary?experiment=grid")
        assert w.page.locator("#diagnosis .bl-pick").inner_text() == summary["answer"]["headline"]
        assert w.page.locator("#diagnosis .bl-run-findings").count() == 0
        assert w.page.locator("#heatmaps table").count() == 2
        w.page.wait_for_selector("#target canvas", timeout=WAIT_MS)  # time to target, log-log

        # the controls: x axis, log y, legend toggle, sort and filter
        w.page.select_option("#chart-a .bl-clock", "examples")
        assert w.page.locator("#chart-a .u-legend th").first.inner_text().startswith("examples seen")
        w.page.check("#chart-a .bl-log")
        assert w.page.locator("#chart-a .u-legend .u-series").count() == 5  # x + 4 runs
        w.page.locator("#chart-a .u-legend .u-series").nth(1).click()
        assert "u-off" in (w.page.locator("#chart-a .u-legend .u-series").nth(1).get_attribute("class") or "")
        w.page.click("#runs th[data-key=batch_size]")
        w.page.click("#runs th[data-key=batch_size]")  # descending
        batches = w.page.locator("#runs tbody tr td:nth-child(3)").all_text_contents()
        assert batches == ["64", "64", "16", "16"]
        w.page.fill("#filter", "0.01")
        wait_rows(w, 2)
    w.assert_clean()


def test_a_regression_dashboard_shows_its_validation_loss(tmp_path, watched):
    """A regression sweep (val_loss, no val_acc) with a run that diverged through a train loss
    of 1e34: before, the second chart read 'no rows of val_acc yet', the train-loss axis went
    up to 1e34, the table had two empty accuracy columns, the heatmaps were titled accuracy,
    time to target read 'Target: validation accuracy –' and the run's error was not shown."""
    db = tmp_path / "reg.db"
    make_regression_store(db)
    with serving(db) as url:
        w = watched(url)
        w.page.goto(url)
        wait_rows(w, 4)
        wait_js(w, "document.querySelector('#chart-b').dataset.series === '4'")
        assert w.page.locator("#chart-b .bl-metric").input_value() == "val_loss"
        assert w.page.locator("#chart-b .bl-empty").inner_text() == ""
        # the train loss's y axis ends near the runs' starts (0.51), not at the diverged 1e34
        wait_js(w, "document.querySelector('#chart-a').dataset.series === '4'")
        linear = w.page.get_attribute("#chart-a", "data-y-max")
        assert float(linear) < 2
        w.page.check("#chart-a .bl-log")  # and on a log axis (whole decades: up to 10)
        wait_js(w, f"document.querySelector('#chart-a').dataset.yMax !== '{linear}'")
        assert float(w.page.get_attribute("#chart-a", "data-y-max")) <= 10
        headers = w.page.locator("#runs thead th").all_text_contents()
        assert "lowest val loss" in headers and "final val loss" in headers
        assert not [h for h in headers if "acc" in h]
        best = w.page.locator("#runs tbody tr", has_text="completed").first.locator(
            f"td:nth-child({headers.index('lowest val loss') + 1})").inner_text()
        assert best != "–" and float(best) < 1
        # the heatmaps titled by what they hold; no time to an accuracy target
        wait_js(w, "document.querySelectorAll('#heatmaps table').length === 2")
        assert w.page.locator("#heatmaps-title").inner_text() == "Validation loss over LR × batch size"
        assert w.page.locator("#target-section").is_hidden()
        # the diverged run's stored error, in its status cell
        status = w.page.locator("#runs tbody tr", has_text="diverged").first.locator("td:nth-child(2)")
        assert status.get_attribute("title") == DIVERGED_ERROR
        assert status.locator(".reason").inner_text().startswith("non-finite loss at step 11")
        assert HUGE > 1e30  # the store did hold the huge value the axis left out
    w.assert_clean()


LIVE = """
import pathlib, sys, time
import batchlab as bl
store, stop = sys.argv[1], pathlib.Path(sys.argv[2])
config = {"batch_size": 32, "lr": 0.1, "n_train": 320, "epochs": 1000, "num_classes": 3}
with bl.track("live", config=config, store=store) as run:
    step = 0
    while not stop.exists() and step < 20000:
        step += 1
        run.log(step, train_loss=1.0 / step)
        time.sleep(0.01)
"""


def wait_for_experiment(db: Path, name: str, proc: subprocess.Popen) -> None:
    """Until the tracked run has started (its experiment is in the store)."""
    deadline = time.monotonic() + 180  # importing torch alone can take a minute on a busy machine
    while time.monotonic() < deadline and proc.poll() is None:
        with Store(db, create=False, read_only=True) as st:
            if name in [e.name for e in st.experiments()]:
                return
        time.sleep(0.2)
    output = proc.communicate(timeout=30) if proc.poll() is not None else ""
    pytest.fail(f"the tracked run never started: {output}")


def test_a_curve_gains_points_while_a_run_writes_to_the_store(tmp_path, watched):
    db, stop = tmp_path / "live.db", tmp_path / "stop"
    make_store(db)
    proc = subprocess.Popen([sys.executable, "-c", LIVE, str(db), str(stop)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_experiment(db, "live", proc)
        with serving(db) as url:
            w = watched(url)
            w.page.goto(url + "#exp=live")
            wait_js(w, "+document.querySelector('#chart-a').dataset.points > 0")
            first = w.points("#chart-a")
            wait_js(w, f"+document.querySelector('#chart-a').dataset.points > {first}")
            assert w.page.locator("#runs tbody tr td:nth-child(2)").first.inner_text() == "running"
            assert w.page.locator("#experiment").input_value() == "live"
            stop.touch()
            proc.wait(timeout=120)
            # the finished run: the chart ends with every row the store holds
            with Store(db, create=False) as st:
                total = st.count_metric_rows(st.runs("live")[0].id)
            wait_js(w, f"+document.querySelector('#chart-a').dataset.points === {total}")
        w.assert_clean()
    finally:
        stop.touch()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 0


def test_hostile_names_render_as_text(tmp_path, watched):
    db = tmp_path / "evil.db"
    make_store(db, EVIL, evil_run=True)
    with serving(db) as url:
        w = watched(url)
        w.page.goto(url)
        wait_rows(w, 4)
        wait_js(w, "document.querySelector('#diagnosis').textContent.length > 0")
        assert EVIL in w.page.locator("#experiment option").first.inner_text()
        # the run's sentence names the reason's head; a click on its row shows the reason in full
        head = EVIL_ERROR.split(":")[0]
        assert head in w.page.locator("#runs tbody").inner_text()
        assert "pruned" in w.page.locator("#runs tbody").inner_text()
        # the status cell holds the stored reason: its head in the cell, all of it on hover
        status = w.page.locator("#runs tbody tr", has_text="pruned").first.locator("td:nth-child(2)")
        assert status.get_attribute("title") == EVIL_ERROR
        assert status.locator(".reason").inner_text() == EVIL_ERROR[:47] + "…"
        w.page.locator("#runs tbody tr", has_text="pruned").first.click()
        wait_js(w, "document.querySelector('#runs tr.evidence') !== null")
        assert EVIL_ERROR in w.page.locator("#runs tr.evidence").inner_text()
        # only the page's own scripts, each from /static (a name rendered as HTML would add one)
        srcs = w.page.eval_on_selector_all("script", "els => els.map(e => e.getAttribute('src'))")
        page = (Path(batchlab.web.__file__).parent / "dashboard.html").read_text()
        assert len(srcs) == page.count("<script") and all(s and s.startswith("/static/") for s in srcs)
        assert w.page.locator("img").count() == 0
    w.assert_clean()


def test_report_interactive_charts_render_offline(tmp_path, watched):
    from batchlab.report import write_report

    db, out = tmp_path / "evil.db", tmp_path / "report" / "r.html"
    make_store(db, EVIL, evil_run=True)
    with Store(db, create=False) as st:
        write_report(st, EVIL, out)
    w = watched(out.parent.as_uri())
    w.page.goto(out.as_uri())
    w.page.wait_for_selector(".bl-interactive[data-charts-ok='2']", state="attached", timeout=WAIT_MS)
    charts = w.page.locator(".bl-interactive .bl-chart")
    assert [int(charts.nth(i).get_attribute("data-points")) for i in range(2)] == [60, 12]
    assert EVIL_ERROR.split(":")[0] in w.page.locator(".bl-diagnosis").inner_text()
    assert w.page.locator("body").get_attribute("data-images-ok") is not None
    w.assert_clean()


def test_a_regression_reports_interactive_charts_show_its_validation_loss(tmp_path, watched):
    """Before, the second chart of a regression's report read 'no rows of val_acc yet'."""
    from batchlab.report import write_report

    db, out = tmp_path / "reg.db", tmp_path / "report" / "r.html"
    make_regression_store(db)
    with Store(db, create=False) as st:
        write_report(st, "reg", out)
    w = watched(out.parent.as_uri())
    w.page.goto(out.as_uri())
    w.page.wait_for_selector(".bl-interactive[data-charts-ok='2']", state="attached", timeout=WAIT_MS)
    assert w.page.locator(".bl-interactive .bl-metric").nth(1).input_value() == "val_loss"
    w.assert_clean()


def test_comparison_report_draws_both_experiments(tmp_path, watched):
    from batchlab.report import write_comparison

    db, out = tmp_path / "two.db", tmp_path / "report" / "c.html"
    make_store(db, "grid")
    make_store(db, EVIL, evil_run=True)
    with Store(db, create=False) as st:
        write_comparison(st, "grid", EVIL, out)
    w = watched(out.parent.as_uri())
    w.page.goto(out.as_uri())
    wait_js(w, "[...document.querySelectorAll('.bl-interactive')]"
               ".filter(b => b.dataset.chartsOk === '2').length === 2")
    w.assert_clean()
