"""The report of a tiny real sweep: self-contained HTML, every figure embedded and on disk."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

from PIL import Image
from report_stores import run_tiny_sweep

from batchlab.analysis import analyze_experiment
from batchlab.report import write_comparison
from batchlab.report.html import esc
from batchlab.report.report import SIDE_MAX_PX, png_width
from batchlab.store import Store

IMG = re.compile(r'<img alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">')
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The sections each figure kind belongs to, as file name prefixes.
EXPECTED = ("curves-constant", "grid-loss-constant", "grid-acc-constant", "heatmaps", "to-target",
            "schedules", "probe-2", "probe-3", "probe-4", "probe-5",  # probe 1: replaced by 2
            "layers-1")  # the best run's per-layer signals (no per-layer finding)


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in IMG.findall(html)]


def assert_not_blank(png: bytes) -> None:
    """A figure shows something dark (text, axes, lines): a blank one is all white."""
    low, _ = Image.open(io.BytesIO(png)).convert("L").getextrema()
    assert low < 128


def test_every_figure_is_embedded_as_decodable_png_and_saved_beside(made):
    pngs = embedded_pngs(made.html)
    names = sorted(p.stem for p in made.result.figures)
    assert names == sorted(EXPECTED)
    assert len(pngs) == len(made.result.figures) == len(made.html.split("<img")) - 1
    on_disk = sorted(p.read_bytes() for p in made.result.figures_dir.glob("*.png"))
    assert sorted(pngs) == on_disk  # the folder holds exactly the embedded figures
    assert made.result.figures_dir == made.result.html.with_name("report_files")
    for png in pngs:
        assert png.startswith(PNG_MAGIC)
        Image.open(io.BytesIO(png)).verify()
        assert_not_blank(png)


def test_report_references_nothing_outside_itself(made):
    assert not re.search(r"https?://", made.html)
    assert not re.search(r"<(link|script)[^>]+(href|src)=", made.html)  # no external CSS/JS
    assert "<style>" in made.html and "data-images-ok" not in made.html  # set at load, by script
    for png in embedded_pngs(made.html):
        assert b"http" not in png  # matplotlib's 'Software' text chunk is left out


def test_diagnosis_text_tables_and_probes_are_present(made, store):
    analysis = analyze_experiment(store, "tiny")
    html = made.html
    for heading in ("What to pick", "Findings", "What worked", "Best configuration",
                    "Time to target per batch size", "Best learning rate per batch size",
                    "Critical batch size",
                    "Runs and their diagnosis", "Probes"):
        assert f"<h2>{heading}</h2>" in html or f"<h3>{heading}</h3>" in html, heading
    assert analysis.conclusions
    for sentence in analysis.conclusions:  # every dense conclusion is kept, one level down
        assert esc(sentence) in html
    assert "square-root rule" in html and "linear rule" in html  # alpha vs the rules
    for run in analysis.runs:
        assert run.run_id[:10] in html
    for title in ("LR suggestion", "Throughput", "Gradient noise scale", "Largest batch that fits"):
        assert f'<td class="l">{title}</td>' in html


def test_result_lists_no_notes_for_a_complete_experiment(made):
    assert made.result.notes == []
    assert made.result.seconds > 0


def test_comparison_puts_both_experiments_side_by_side(sweep_store_path, tmp_path):
    db = tmp_path / "c.db"
    shutil.copy(sweep_store_path, db)
    with Store(db) as store:
        run_tiny_sweep(store, "tiny-b", lrs=(0.3, 0.1))
        result = write_comparison(store, "tiny", "tiny-b", tmp_path / "cmp.html")
    html = result.html.read_text(encoding="utf-8")
    names = {p.name for p in result.figures}
    for stem in ("curves-constant", "heatmaps", "to-target", "schedules"):
        assert f"a-{stem}.png" in names and f"b-{stem}.png" in names
    assert len(embedded_pngs(html)) == len(result.figures)
    # figures that stay readable at half the page are paired side by side, wider ones stacked
    side = re.findall(r'<div class="side">(.*?)</div></div>', html)
    wide = [f for f in result.figures if png_width(f.read_bytes()) > SIDE_MAX_PX]
    assert wide and any("a-curves" in f.name for f in wide)
    for f in wide:
        assert not any(f.name in block for block in side), f.name
    assert html.count('class="side"') >= 3  # overview, diagnosis, runs...
    assert "tiny-b" in html and not re.search(r"https?://", html)
    assert {p.name for p in Path(result.figures_dir).glob("*.png")} == names


def test_the_report_opens_with_the_pick_and_it_is_the_best_row_beside_it(made, store):
    """Answer first (issue 22): the first section is "What to pick", its configuration is the
    "best" row of the Best configuration table, then the findings by question; each run's row
    has one label and its evidence folded."""
    analysis = analyze_experiment(store, "tiny")
    html = made.html
    sections = re.findall(r'<section id="([^"]+)">', html)
    assert sections[:3] == ["pick", "findings", "overview"]
    pick = re.search(r'<p class="pick"><b>Pick (.+?)\.</b></p>', html).group(1)
    best_row = re.search(r'<tr><td class="l">best</td><td class="l">([^<]+)</td>', html).group(1)
    assert pick == best_row == esc(analysis.best["group"]["label"])
    assert html.index('class="answer card"') < html.index("<h3>Best configuration</h3>")
    labels = re.findall(r'<span class="label[^"]*">([^<]+)</span>', html)
    assert sorted(labels) == sorted(esc(r.verdict.label) for r in analysis.runs)
    assert html.count('<details class="numbers"><summary>evidence</summary>') == sum(
        bool(r.findings) for r in analysis.runs)
