"""Write the report: one self-contained HTML file plus the same figures as PNGs beside it.

``write_report`` covers one experiment, ``write_comparison`` two side by side (one style map
over both, so a colour or dash means the same LR or batch size in both halves).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from batchlab.analysis import ExperimentAnalysis, analyze_runs
from batchlab.errors import StoreError
from batchlab.report import answer, diagnosis, interactive, layerfigs, sections
from batchlab.report.build import FIGURE_SECTIONS, Built, build_figures, style_for
from batchlab.report.errors import ReportError
from batchlab.report.figures import FigureFile
from batchlab.report.html import esc, page
from batchlab.report.plotdata import RunData, load_runs
from batchlab.report.probedata import ProbeView, probe_views
from batchlab.report.style import StyleMap
from batchlab.store import Store


@dataclass(frozen=True)
class ReportResult:
    """What was written: the HTML file, the folder of PNGs, each PNG, and notes on anything
    left out (a figure without data, a section without analysis)."""

    html: Path
    figures_dir: Path
    figures: list[Path]
    notes: list[str]
    seconds: float


@dataclass(frozen=True)
class _Experiment:
    name: str
    runs: list[RunData]
    probes: list[ProbeView]
    analysis: ExperimentAnalysis | None


def figures_dir(out_html: Path) -> Path:
    """The PNG folder beside the report: report.html -> report_files/."""
    return out_html.with_name(out_html.stem + "_files")


def _load(store: Store, experiment: str, target: float | None) -> _Experiment:
    """Runs, probes and analysis of one experiment; a clear error when there is nothing."""
    probes = probe_views(store, experiment)
    try:
        runs = load_runs(store, experiment)
    except StoreError:
        if not probes:  # unknown name: the store's message lists the experiments there are
            raise
        runs = []  # probes stored under a name that never ran a sweep: report the probes
    if not probes and not any(r.series for r in runs):
        statuses = ", ".join(sorted({r.status for r in runs})) or "none"
        raise ReportError(
            f"experiment '{experiment}' has nothing to report yet: none of its {len(runs)} runs "
            f"recorded a metric (statuses: {statuses}) and it has no probe results. Train it "
            "first (batchlab sweep SPEC trains every pending run), then run the report again.")
    analysis = None
    if runs:
        # the analysis reads the series already loaded instead of querying the store again
        analysis = analyze_runs([(r.record, r.series) for r in runs], experiment, target)
    return _Experiment(experiment, runs, probes, analysis)


def _prepare_output(out_html: Path) -> Path:
    """Create the folders; remove PNGs of an earlier report so the folder matches the HTML.
    ReportError for a path that is a folder, before any figure is drawn (open() failed on it
    with a raw IsADirectoryError after the figures were written beside it)."""
    if out_html.is_dir():
        raise ReportError(f"cannot write the report to '{out_html}': it is a folder. Pass the "
                          f"report's file path (-o FILE), e.g. '{out_html / 'report.html'}'.")
    folder = figures_dir(out_html)
    try:
        out_html.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
    except OSError as err:
        raise ReportError(f"cannot write the report to '{out_html}': {err.strerror}. "
                          "Pass an output path in a folder you can write to (-o FILE).") from None
    return folder


INTERACTIVE = "Interactive learning curves"
PICK, FINDINGS = "What to pick", "Findings"
LAYERS = "Per-layer signals"


def _sections(exp: _Experiment, built: Built, layers: str = "") -> list[tuple[str, str, str]]:
    """(title, anchor, body) of a one-experiment report, in reading order; ``layers``: the
    per-layer section's HTML (``layerfigs.section``), left out when empty."""
    target = exp.analysis.target if exp.analysis else None
    out = []
    if exp.analysis is not None:  # the answer first, the evidence after it
        out += [(PICK, "pick", answer.what_to_pick(exp.analysis.answer)),
                (FINDINGS, "findings", answer.findings(exp.analysis.answer))]
    out.append(("Overview", "overview", sections.overview(exp.name, exp.runs, target)))
    if exp.analysis is not None:
        body = "".join(sections.heading(h, b) for h, b in diagnosis.diagnosis_parts(exp.analysis))
        out.append(("Diagnosis", "diagnosis", body))
    if any(r.series for r in exp.runs):
        out.append((INTERACTIVE, "interactive", interactive.section(exp.runs, exp.analysis)))
    for key, title in FIGURE_SECTIONS:
        figs = built.figures.get(key, [])
        if key == "probes":
            out.append((title, key, sections.probes(exp.probes, figs)))
        elif figs:
            out.append((title, key, sections.figures_html(figs)))
    if layers:
        out.append((LAYERS, "layers", layers))
    if exp.runs:
        verdicts = diagnosis.run_verdicts(exp.analysis) if exp.analysis else {}
        out.append(("Runs and their diagnosis", "runs", sections.runs_table(exp.runs, verdicts)))
    out.append(("Notes", "notes", sections.notes(built.notes)))
    return out


def _result(out_html: Path, folder: Path, built: Sequence[Built], t0: float,
            extra: Sequence[FigureFile] = ()) -> ReportResult:
    # a comparison's notes say which experiment they are about
    notes = [f"{b.experiment}: {n}" if len(built) > 1 else n for b in built for n in b.notes]
    return ReportResult(out_html, folder, [f.path for b in built for f in b.all()] + [f.path for f in extra],
                        notes, time.perf_counter() - t0)


def write_report(store: Store, experiment: str, out_html: str | Path,
                 target: float | None = None) -> ReportResult:
    """Write the report of ``experiment`` to ``out_html`` and its figures to ``<stem>_files/``.

    ``target``: the validation accuracy that counts as reached (default: the analysis's, 95%
    of the best). Raises StoreError for an unknown experiment and ReportError when it has no
    recorded metric and no probe; a single run, diverged runs or missing evaluations still
    give a report (panels without data say why).
    """
    t0 = time.perf_counter()
    out_html = Path(out_html).expanduser()  # "~/r.html" made a folder named ~ here
    exp = _load(store, experiment, target)
    folder = _prepare_output(out_html)
    built = build_figures(exp.name, exp.runs, exp.probes, exp.analysis, style_for(exp.runs), folder)
    layers, layer_figs = layerfigs.section(exp.runs, exp.analysis, folder)
    html = page(f"batchlab report: {experiment}", sections.subtitle(experiment),
                _sections(exp, built, layers))
    out_html.write_text(html, encoding="utf-8")
    return _result(out_html, folder, [built], t0, layer_figs)


PREFIXES = ("a-", "b-")  # figure names of experiment A and B in a comparison's folder
# Section titles in page order, for merging the sections of two experiments.
ORDER = (PICK, FINDINGS, "Overview", "Diagnosis", INTERACTIVE, *(t for _, t in FIGURE_SECTIONS),
         LAYERS, "Runs and their diagnosis", "Notes")


def _side(a: str, b: str) -> str:
    return f'<div class="side"><div>{a}</div><div>{b}</div></div>'


# Figures at most this wide (pixels) are paired side by side; wider ones would shrink to
# half the page and become unreadable, so they are shown one above the other, full width.
SIDE_MAX_PX = 800


def png_width(png: bytes) -> int:
    """Width in pixels from a PNG's header (the IHDR chunk comes first)."""
    return int.from_bytes(png[16:20], "big")


def _stacked(figs: Sequence[FigureFile | None], names: Sequence[str], missing: str) -> str:
    """Figures of A then B, each under its experiment's name, full width."""
    return "".join(f"<h3>{esc(exp)}</h3>" + (sections.figures_html([f]) if f is not None else
                                              f'<p class="note">{esc(exp)} has no figure {esc(missing)}.</p>')
                   for f, exp in zip(figs, names, strict=True))


def _paired_figures(key: str, built: Sequence[Built], names: Sequence[str]) -> str:
    """Figures of one section paired by name (without the a-/b- prefix): side by side when
    both are narrow enough to stay readable at half the page, else one above the other."""
    by_name: list[dict[str, FigureFile]] = [
        {f.name[len(p):]: f for f in b.figures.get(key, [])} for b, p in zip(built, PREFIXES, strict=True)]
    rows = []
    for name in dict.fromkeys(n for figs in by_name for n in figs):
        figs = [figs.get(name) for figs in by_name]
        if all(f is not None and png_width(f.png) <= SIDE_MAX_PX for f in figs):
            rows.append(_side(*(f"<h3>{esc(exp)}</h3>" + sections.figures_html([f])
                                for f, exp in zip(figs, names, strict=True) if f is not None)))
        else:
            rows.append(_stacked(figs, names, name))
    return "".join(rows)


def write_comparison(store: Store, exp_a: str, exp_b: str, out_html: str | Path,
                     target: float | None = None) -> ReportResult:
    """Two experiments side by side: the same sections and figures as ``write_report``, A on
    the left, B on the right, with one colour/dash mapping over both. Errors as write_report."""
    t0 = time.perf_counter()
    out_html = Path(out_html).expanduser()  # "~/r.html" made a folder named ~ here
    exps = [_load(store, exp_a, target), _load(store, exp_b, target)]
    folder = _prepare_output(out_html)
    style: StyleMap = style_for([r for e in exps for r in e.runs])
    built = [build_figures(e.name, e.runs, e.probes, e.analysis, style, folder, prefix)
             for e, prefix in zip(exps, PREFIXES, strict=True)]
    # the per-layer panels as write_report's, side by side (each one's figures prefixed)
    layers = [layerfigs.section(e.runs, e.analysis, folder, prefix)
              for e, prefix in zip(exps, PREFIXES, strict=True)]
    per_exp = [{t: (a, b) for t, a, b in _sections(e, bt, lay)}
               for e, bt, (lay, _) in zip(exps, built, layers, strict=True)]
    names = [e.name for e in exps]
    out = []
    for title in sorted({t for s in per_exp for t in s}, key=ORDER.index):
        anchor = next(s[title][0] for s in per_exp if title in s)
        key = next((k for k, t in FIGURE_SECTIONS if t == title), None)
        if key == "probes":  # the tables side by side, then each one's figures (ids differ)
            tables = [sections.probes(e.probes, []) for e in exps]
            body = _side(*(f"<h3>{esc(n)}</h3>{t}" for n, t in zip(names, tables, strict=True)))
            body += "".join(f"<h3>{esc(n)}: probe figures</h3>{sections.figures_html(figs)}"
                            for n, b in zip(names, built, strict=True) if (figs := b.figures.get(key)))
        elif key is not None:
            body = _paired_figures(key, built, names)
        else:
            bodies = [s[title][1] if title in s else '<p class="note">–</p>' for s in per_exp]
            parts = [f"<h3>{esc(n)}</h3>{b}" for n, b in zip(names, bodies, strict=True)]
            # the per-layer panels are wider than half the page: one above the other
            body = "".join(parts) if title == LAYERS else _side(*parts)
        out.append((title, anchor, body))
    html = page(f"batchlab comparison: {exp_a} vs {exp_b}", sections.subtitle(exp_a, exp_b), out)
    out_html.write_text(html, encoding="utf-8")
    return _result(out_html, folder, built, t0, [f for _, figs in layers for f in figs])
