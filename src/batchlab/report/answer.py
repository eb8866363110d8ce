"""The report's answer-first sections: "What to pick" and the findings grouped by question, from
the analysis's :class:`~batchlab.analysis.answer.Answer`; and a run's table cell (its label, its
sentence, its evidence folded under it).

Pure formatting, all text escaped: the words and numbers come from ``batchlab.analysis``. Each
plain sentence carries its numbers one level down: in a ``<details>`` fold and in the hover
``title``.
"""

from __future__ import annotations

from collections.abc import Sequence

from batchlab.analysis.answer import Answer, Point
from batchlab.analysis.kinds import FAILED_LABELS
from batchlab.analysis.verdict import RunVerdict
from batchlab.report.html import esc


def fold(lines: Sequence[str], summary: str = "numbers") -> str:
    """A closed ``<details>`` fold holding ``lines`` ('' when there are none)."""
    if not lines:
        return ""
    items = "".join(f"<li>{esc(x)}</li>" for x in lines)
    return f'<details class="numbers"><summary>{esc(summary)}</summary><ul>{items}</ul></details>'


def point(p: Point) -> str:
    """One finding: its sentence (the numbers also on hover) and the fold with its numbers."""
    title = f' title="{esc(" ".join(p.details))}"' if p.details else ""
    return f"<li><span{title}>{esc(p.sentence)}</span> {fold(p.details)}</li>"


def what_to_pick(answer: Answer | None) -> str:
    """The block at the top: the pick, its score and time to target, how sure, why."""
    if answer is None:
        return '<p class="note">No analysis: the experiment has no runs.</p>'
    body = f'<p class="pick"><b>{esc(answer.headline)}</b></p>'
    body += "".join(f"<p>{esc(x)}</p>" for x in (answer.score, answer.sure) if x)
    if answer.why:
        body += '<ul class="why">' + "".join(f"<li>{esc(w)}</li>" for w in answer.why) + "</ul>"
    body += fold(answer.details, "the numbers behind the pick")
    return f'<div class="answer card">{body}</div>'


def findings(answer: Answer | None) -> str:
    """The findings grouped by question, each one sentence with its numbers folded."""
    if answer is None or not answer.groups:
        return '<p class="note">No findings yet.</p>'
    return "".join(f"<h3>{esc(q)}</h3><ul class=\"points\">{''.join(point(p) for p in ps)}</ul>"
                   for q, ps in answer.groups.items())


def label_class(label: str) -> str:
    """'label-ok' for a run that trained well, 'label-bad' for one that failed, else ''."""
    return "label-ok" if label == "ok" else "label-bad" if label in FAILED_LABELS else ""


def run_cell(verdict: RunVerdict | None) -> str:
    """A run's diagnosis cell: its sentence, and every finding with its numbers folded."""
    if verdict is None:
        return "–"
    return f"{esc(verdict.sentence)} {fold(verdict.evidence, 'evidence')}"


def label_cell(verdict: RunVerdict | None) -> str:
    if verdict is None:
        return "–"
    return f'<span class="label {label_class(verdict.label)}">{esc(verdict.label)}</span>'
