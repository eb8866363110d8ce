"""The one registry of the words of every diagnosis kind (``batchlab.analysis.kinds``): every
kind the diagnosis code can emit is worded there, completely, and every consumer says it.

The kinds are read from the source (each ``Finding("kind", ...)`` in ``src/batchlab``), not from a
hand list, so a new kind without words fails here rather than being silently left out of a
table, of "what failed and why" or of the conclusions (as the per-layer kinds once were).
"""

from __future__ import annotations

import ast
from pathlib import Path

import batchlab
from batchlab.analysis.conclusions import diagnosis_sentences, summary_kinds
from batchlab.analysis.findings import KINDS, Finding
from batchlab.analysis.groups import RunFacts
from batchlab.analysis.kinds import (
    FAILED_LABELS,
    NOTE_KINDS,
    PROBLEM_ORDER,
    SUMMARY_ORDER,
    WORDING,
)
from batchlab.analysis.patterns import problem_sentence, problems
from batchlab.analysis.verdict import run_verdict

#: Kinds that are no problem: a run's standing against its sweep.
STANDINGS = {"below_best", "healthy"}
#: Kinds the conclusions say elsewhere: failed and pruned runs in the overview, too large an
#: LR by the fit of the best LR, the healthy count.
SAID_ELSEWHERE = {"diverged", "pruned", "lr_too_large", "healthy"}


def emitted_kinds() -> set[str]:
    """Every kind a ``Finding(...)`` call in the package's source constructs."""
    kinds = set()
    for path in Path(batchlab.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name != "Finding":
                continue
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg == "kind"), None)
            # a kind computed at run time would escape this scan: keep kinds literal
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                f"{path}:{node.lineno}: Finding's kind is not a string literal")
            kinds.add(first.value)
    return kinds


def facts(label: str, lr: float, batch: int) -> RunFacts:
    return RunFacts(label, "completed", label, label, {"lr": lr, "batch_size": batch}, {}, True,
                    0.9, 0.9, 0.95, 0.01)


def test_every_kind_the_diagnosis_emits_is_in_the_severity_order_and_the_registry():
    kinds = emitted_kinds()
    assert {"collapsed", "lr_too_large", "dead_units", "model_too_small", "healthy"} <= kinds
    assert kinds == set(KINDS)  # diagnose sorts findings by KINDS: a kind outside it crashes
    assert kinds == set(WORDING)


def test_every_kind_is_worded_completely():
    for kind in emitted_kinds():
        w = WORDING[kind]
        assert w.label and w.label == w.label.strip(), kind
        # the words are said after "N runs ..." and never end a sentence themselves
        for words in (w.problem, w.summary):
            assert words is None or (words and not words.endswith(".")), kind
        assert (w.problem is None) == (kind in STANDINGS), kind
        assert (w.summary is None) == (kind in SAID_ELSEWHERE), kind
        # the run's sentence, with its numbers and without (an old store lacks some)
        for numbers in ({}, {"final_val_acc": 0.5, "best_val_acc": 0.9, "collapse_step": 3.0,
                             "sweep_best_val_acc": 0.95, "micro_batch_size": 8.0}):
            v = run_verdict([Finding(kind, f"{kind}: at step 5: x 1.2", 5, 1.0, numbers)], "completed")
            assert v.label == w.label
            assert v.sentence.endswith(".") and "\n" not in v.sentence and len(v.sentence) > 10, kind
    assert set(FAILED_LABELS) <= {w.label for w in WORDING.values()}
    assert set(NOTE_KINDS) == {"small_bn_batch", "bn_per_process"}


def test_the_orders_hold_every_worded_kind_once():
    assert len(set(PROBLEM_ORDER)) == len(PROBLEM_ORDER)
    assert set(PROBLEM_ORDER) == {k for k, w in WORDING.items() if w.problem is not None}
    assert len(set(SUMMARY_ORDER)) == len(SUMMARY_ORDER)
    assert set(SUMMARY_ORDER) == {k for k, w in WORDING.items() if w.summary is not None}
    assert summary_kinds() == SUMMARY_ORDER


def test_every_problem_kind_reaches_what_failed_and_the_conclusions():
    every = [facts(f"batch {b}, lr {lr}", lr, b) for lr in (0.1, 0.01) for b in (16, 64)]
    ok = Finding("healthy", "healthy: fine", None, None, {})
    for kind in emitted_kinds() - STANDINGS:
        runs = [(f, [Finding(kind, f"{kind}: x", 5, 2.0, {})] if f.train["lr"] == 0.1 else [ok])
                for f in every]
        (problem,) = problems(runs)
        sentence = problem_sentence(problem, every)
        assert problem.kind == kind and len(problem.runs) == 2
        assert sentence.startswith("LR 0.1") and WORDING[kind].problem in sentence, kind
        said = " ".join(diagnosis_sentences(runs))
        if kind not in SAID_ELSEWHERE:
            assert f"2 runs {WORDING[kind].summary}: batch 16, lr 0.1; batch 64, lr 0.1." in said, kind


def test_runs_that_never_rose_above_chance_are_said_to_have_never_learned():
    """At chance from the first evaluation is no collapse: the pattern does not blame an LR
    that is too large for a fall that never happened."""
    never = Finding("collapsed", "collapsed: val acc never rose above chance", None, None,
                    {"final_val_acc": 0.1, "best_val_acc": 0.11, "chance_level": 0.15})
    every = [facts(f"b{b}-lr{lr}", lr, b) for b in (16, 32) for lr in (0.001, 0.1)]
    runs = [(f, [never] if f.train["lr"] == 0.001 else []) for f in every]
    (problem,) = problems(runs)
    sentence = problem_sentence(problem, every)
    assert "2 runs stayed at chance (never learned)" in sentence and "collapsed" not in sentence
    assert "too large" not in sentence


def test_a_group_where_some_runs_never_learned_does_not_call_them_all_collapsed():
    """Runs at chance from the start grouped with runs that fell there: 'N runs collapsed to
    chance' was false of the first (an LR too small 'collapsed' at LR 1e-05)."""
    never = Finding("collapsed", "collapsed: val acc never rose above chance", None, None,
                    {"final_val_acc": 0.1, "best_val_acc": 0.11, "chance_level": 0.15})
    fell = Finding("collapsed", "collapsed: val acc fell to chance", 40, 5.0,
                   {"final_val_acc": 0.09, "best_val_acc": 0.19, "chance_level": 0.15,
                    "collapse_step": 40.0})
    every = [facts(f"b{b}-lr{lr}", lr, b) for b in (8, 32) for lr in (1e-05, 0.01, 10.0)]
    bad = {(10.0, 8): never, (10.0, 32): fell, (1e-05, 32): never}
    runs = [(f, [bad[(f.train["lr"], f.train["batch_size"])]]
             if (f.train["lr"], f.train["batch_size"]) in bad else []) for f in every]
    (problem,) = problems(runs)
    sentence = problem_sentence(problem, every)
    assert sentence == ("LR 1e-05 from batch 32; LR 10 at every batch size: 3 runs ended at chance "
                        "(2 never learned, 1 collapsed) by epoch 5.")


def test_overfitting_by_the_accuracy_gap_alone_is_not_said_to_have_made_validation_worse():
    """The gap signal (train acc 33% against val acc 23%, val loss still falling) overfits
    without validation getting worse: the words fit both signals."""
    gap = Finding("overfitting", "overfits from epoch 40: train acc 33.3%, val acc 23.1% (gap 10.3 "
                  "points)", 320, 40.0, {"train_acc": 0.333, "val_acc": 0.231, "gap": 0.103})
    every = [facts(f"b{b}-lr{lr}", lr, b) for b in (8, 32) for lr in (1e-05, 0.01)]
    runs = [(f, [gap] if f.train["lr"] == 1e-05 else []) for f in every]
    (problem,) = problems(runs)
    assert problem_sentence(problem, every) == (
        "LR 1e-05 at every batch size: 2 runs overfit (training pulled well ahead of validation).")
