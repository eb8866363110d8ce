"""One label and one sentence per run, for tables (ls, the report's and the dashboard's run
tables, the exports); every finding with its numbers stays as the run's evidence (``show``, the
expanded row).

A run's findings often tell one story several times: a run pruned as hopeless has the pruning
reason ("collapsed to chance: ..."), the collapse finding and, on the way down, an unstable val
acc. The verdict states each fact once: the label is the most severe finding (the order of
:data:`~batchlab.analysis.findings.KINDS`), the sentence says what happened in plain words,
folding in the finding that explains it (a pruned run's collapse), and names any other kind
once at the end ("also unstable"). The words of each kind are those of
:data:`~batchlab.analysis.kinds.WORDING`. Pure functions of findings and a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from batchlab.analysis.findings import Finding
from batchlab.analysis.kinds import NOTE_KINDS, WORDING, collapse_words, never_rose


@dataclass(frozen=True)
class RunVerdict:
    """A run in a table: ``label`` (its kind's label in :data:`~batchlab.analysis.kinds.WORDING`,
    or the run's status when it has no finding: pending, running, failed), ``sentence`` (one
    plain sentence, each fact once) and ``evidence`` (every finding as 'kind: sentence with its
    numbers')."""

    label: str
    sentence: str
    evidence: list[str]


def finding_text(kind: str, message: str) -> str:
    """'kind: sentence', without doubling a kind the sentence already starts with."""
    words = kind.replace("_", " ")
    return message if message.lower().startswith(words) else f"{words}: {message}"


def _pruned(f: Finding, found: Sequence[Finding]) -> tuple[str, set[str]]:
    """A pruned run's sentence, with the finding that explains the pruning folded in (a collapse
    is said once, not as the reason, the finding and its step again; the step it stopped at is
    the table's status); the kinds it covers: the collapse, and an unstable val acc whose
    largest drop is the collapse itself (one event, not two)."""
    collapse = next((x for x in found if x.kind == "collapsed"), None)
    if collapse is not None:
        same = {x.kind for x in found if x.kind == "unstable" and x.step == collapse.step}
        return f"stopped early because {collapse_words(collapse)}", {"collapsed", *same}
    return WORDING["pruned"].say(f), set()


#: the label of a run whose val acc never rose above chance (its finding is "collapsed")
NEVER_LEARNED = "never learned"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def run_verdict(findings: Sequence[Finding], status: str, error: str | None = None) -> RunVerdict:
    """The label, sentence and evidence of one run from its findings (most severe first, as
    ``diagnose_run`` returns them), its status and its error text (a failed run's sentence)."""
    evidence = [finding_text(f.kind, f.message) for f in findings]
    if status == "failed":  # its error is what happened to it, whatever its curves show
        first = (error or "the error is not recorded").strip().splitlines()[0]
        return RunVerdict("failed", _sentence(f"it failed: {first[:200]}"), evidence)
    if not findings:
        return RunVerdict(status, _sentence("no evaluation yet" if status in ("pending", "running")
                                            else "nothing to judge it by"), evidence)
    # a BatchNorm note is never the label while the run has a standing or a problem
    main = next((f for f in findings if f.kind not in NOTE_KINDS), findings[0])
    if main.kind == "pruned":
        text, covered = _pruned(main, findings)
    else:
        text, covered = WORDING[main.kind].say(main), set()
    covered.add(main.kind)
    others = list(dict.fromkeys(WORDING[f.kind].label for f in findings
                                if f.kind not in covered and f.kind != "healthy"))
    if others:
        text += "; also " + ", ".join(others)
    if status in ("running", "interrupted"):  # judged on what it has trained so far
        # (not its stored status: a running run whose process is gone is shown interrupted)
        text = f"so far (not finished): {text}"
    # at chance from the start is no collapse: it never learned (the finding stays "collapsed",
    # at chance by its numbers, but the word for a fall would blame instability)
    label = NEVER_LEARNED if never_rose(main) else WORDING[main.kind].label
    return RunVerdict(label, _sentence(text), evidence)
