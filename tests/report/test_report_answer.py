"""The answer-first HTML (issue 22): plain sentences with their numbers one level down, and a
run's cell that states each fact once."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from batchlab.analysis import analyze_runs
from batchlab.report import answer
from batchlab.report.html import esc

sys.path.insert(0, str(Path(__file__).parents[1] / "analysis"))
from answer_runs import sweep  # noqa: E402

RESULT = analyze_runs(sweep(), "ans")


def visible(markup: str) -> str:
    """The text shown before any fold is opened or anything hovered."""
    return re.sub(r' title="[^"]*"|<details.*?</details>', "", markup, flags=re.S)


def test_the_pick_block_says_the_answer_and_folds_the_numbers():
    html = answer.what_to_pick(RESULT.answer)
    shown = visible(html)
    a = RESULT.answer
    for sentence in (a.headline, a.score, a.sure, *a.why):
        assert esc(sentence) in shown
    for line in a.details:  # the dense lines: only in the fold
        assert esc(line) in html and esc(line) not in shown


def test_each_finding_is_one_sentence_with_its_numbers_on_hover_and_folded():
    html = answer.findings(RESULT.answer)
    for question, points in RESULT.answer.groups.items():
        assert f"<h3>{esc(question)}</h3>" in html
        for p in points:
            assert f'<span title="{esc(" ".join(p.details))}">{esc(p.sentence)}</span>' in html
            for line in p.details:
                assert esc(line) in html and esc(line) not in visible(html)


def test_a_pruned_runs_cell_states_its_collapse_once():
    pruned = next(r for r in RESULT.runs if r.status == "pruned")
    cell = answer.run_cell(pruned.verdict)
    shown = visible(cell)
    assert shown.count("chance") == 1 and "collapsed" not in shown and "pruned:" not in shown
    assert answer.label_cell(pruned.verdict) == '<span class="label label-bad">pruned</span>'
    for line in pruned.verdict.evidence:  # the reason, the collapse and the swing, folded
        assert esc(line) in cell
