"""Wording of findings and conclusions (issue 9, CLI section): no doubled labels, no
"1 run are", numbers of one kind per sentence."""

from __future__ import annotations

from batchlab.analysis.conclusions import diagnosis_sentences
from batchlab.analysis.diagnose import Finding
from batchlab.analysis.groups import RunFacts
from batchlab.analysis.verdict import finding_text


def facts(label: str) -> RunFacts:
    return RunFacts(label, "completed", label, label, {}, {}, True, 0.9, 0.9, 0.95, 0.01)


def test_a_finding_that_names_itself_is_not_labelled_twice():
    assert finding_text("exploding", "exploding: train loss 31 at step 4") == (
        "exploding: train loss 31 at step 4")
    assert finding_text("not_converged", "val loss still falling") == (
        "not converged: val loss still falling")


def test_counts_agree_with_their_verbs():
    unstable = Finding("unstable", "unstable: ...", 3, 1.0, {})
    healthy = Finding("healthy", "healthy: ...", None, None, {})
    lines = diagnosis_sentences([(facts("a"), [unstable]), (facts("b"), [healthy]),
                                 (facts("c"), [unstable])])
    assert lines[0].startswith("2 runs had an unstable val acc")
    assert "1 of 3 runs looks healthy." in lines
    one = diagnosis_sentences([(facts("a"), [unstable])])
    assert one[0].startswith("1 run had an unstable val acc") and " are " not in one[0]
