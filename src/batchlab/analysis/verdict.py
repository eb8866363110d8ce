"""One label and one sentence per run, for tables (ls, the report's and the dashboard's run
tables, the exports); every finding with its numbers stays as the run's evidence (``show``, the
expanded row).

A run's findings often tell one story several times: a run pruned as hopeless has the pruning
reason ("collapsed to chance: ..."), the collapse finding and, on the way down, an unstable val
acc. The verdict states each fact once: the label is the most severe finding (the order of
:data:`~batchlab.analysis.findings.KINDS`), the sentence says what happened in plain words,
folding in the finding that explains it (a pruned run's collapse), and names any other kind
once at the end ("also unstable"). Pure functions of findings and a status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from batchlab.analysis.findings import Finding, pct

#: The label each finding kind gives a run in a table (a word or two, the field's words).
LABELS = {
    "diverged": "diverged", "pruned": "pruned", "collapsed": "collapsed", "exploding": "exploding",
    "lr_too_large": "LR too large", "unstable": "unstable", "overfitting": "overfits",
    "not_converged": "not converged", "lr_too_small": "LR too small", "plateau": "plateau",
    "small_bn_batch": "small BN batch", "undertrained": "undertrained", "below_best": "below best",
    "healthy": "ok", "no_gradient": "no gradient", "exploding_gradients": "exploding gradients",
    "vanishing_gradients": "vanishing gradients", "dead_units": "dead units",
    "model_too_small": "model too small", "bn_per_process": "BN per process",
}
#: Notes said beside a run's standing, never its label while it has one.
NOTES = ("small_bn_batch", "bn_per_process")
#: Labels that mean the run failed (the answer's "what failed" and the dashboard's problem list).
FAILED = ("diverged", "pruned", "collapsed", "exploding", "LR too large", "unstable")


@dataclass(frozen=True)
class RunVerdict:
    """A run in a table: ``label`` (one of :data:`LABELS`' values, or the run's status when it
    has no finding: pending, running, failed), ``sentence`` (one plain sentence, each fact once)
    and ``evidence`` (every finding as 'kind: sentence with its numbers')."""

    label: str
    sentence: str
    evidence: list[str]


def finding_text(kind: str, message: str) -> str:
    """'kind: sentence', without doubling a kind the sentence already starts with."""
    words = kind.replace("_", " ")
    return message if message.lower().startswith(words) else f"{words}: {message}"


def _when(f: Finding) -> str:
    """'at epoch 3.1', else 'at step 120', else ''."""
    if f.epoch is not None:
        return f" at epoch {f.epoch:.3g}"
    return f" at step {f.step}" if f.step is not None else ""


def _collapse(f: Finding) -> str:
    n = f.numbers
    if "final_val_acc" in n:
        if "collapse_step" not in n:
            return f"its val acc never rose above chance (it ends at {pct(n['final_val_acc'])})"
        return (f"its val acc fell from {pct(n['best_val_acc'])} to chance{_when(f)} "
                f"(it ends at {pct(n['final_val_acc'])})")
    return f"its loss went back to chance level{_when(f)}"


def _overfits(f: Finding) -> str:
    n = f.numbers
    if "train_acc" in n and "val_acc" in n:
        return (f"it overfits{_when(f)}: train acc {pct(n['train_acc'])} against val acc "
                f"{pct(n['val_acc'])}")
    if "gap" in n:
        return f"it overfits{_when(f)}: train acc ends {100 * n['gap']:.2g} points above val acc"
    if "val_loss_rise" in n:
        return f"it overfits{_when(f)}: val loss rose {pct(n['val_loss_rise'])} above its minimum"
    return f"it overfits{_when(f)}"


def _standing(f: Finding) -> str:
    n = f.numbers
    if f.kind == "below_best" and "sweep_best_val_acc" in n:
        return (f"it ends at {pct(n['final_val_acc'])} val acc, "
                f"{100 * (n['sweep_best_val_acc'] - n['final_val_acc']):.2g} points under the best")
    if f.kind == "healthy" and "final_val_acc" in n:
        close = " within noise of the best" if "sweep_best_val_acc" in n else ""
        return f"it trained well: {pct(n['final_val_acc'])} val acc{close}"
    if f.kind == "undertrained":
        return "it did not reach a clearly trained level: train longer or raise the LR"
    return {"healthy": "it trained well", "below_best": "it ends below the best"}[f.kind]


#: kind -> the plain sentence of a run whose label that kind gave.
def _head(f: Finding) -> str:
    """The sentence before the numbers of a finding whose message says it first."""
    return f.message.split(": ", 1)[0]


_SAY: dict[str, Callable[[Finding], str]] = {
    "diverged": lambda f: f"its loss became non-finite{_when(f)}",
    "collapsed": _collapse,
    "exploding": lambda f: (f"its training loss rose to {f.numbers.get('factor', 10):.3g}x its "
                            f"start{_when(f)}"),
    "lr_too_large": lambda f: f"its LR is too large{_when(f)}",
    "unstable": lambda f: (f"its val acc swings between evaluations (drops of up to "
                           f"{100 * f.numbers.get('largest_drop', 0):.2g} points)"),
    "overfitting": _overfits,
    "not_converged": lambda f: "its val loss was still falling at the end: train longer",
    "lr_too_small": lambda f: (f"its training loss fell only "
                               f"{pct(max(f.numbers.get('relative_fall', 0.0), 0.0))}: the LR is too small"),
    "plateau": lambda f: (f"its training loss was stuck for {pct(f.numbers.get('fraction', 0))} of "
                          "training before falling again"),
    "small_bn_batch": lambda f: (f"BatchNorm saw only {f.numbers.get('micro_batch_size', 0):.0f} "
                                 "examples per forward pass (noisy batch statistics)"),
    "bn_per_process": lambda f: ("BatchNorm normalised each process's share of the batch, not the "
                                 "global batch (train.sync_batchnorm = true syncs it)"),
    "undertrained": _standing, "below_best": _standing, "healthy": _standing,
    # the per-layer findings' messages open with their plain sentence; the numbers follow a colon
    "no_gradient": _head, "exploding_gradients": _head, "vanishing_gradients": _head,
    "dead_units": _head,
    "model_too_small": lambda f: ("its training loss plateaus high at an LR that trains, and no LR "
                                  "in the sweep does better: the model is too small for this data"),
}


def _pruned(f: Finding, found: Sequence[Finding]) -> tuple[str, set[str]]:
    """A pruned run's sentence, with the finding that explains the pruning folded in (a collapse
    is said once, not as the reason, the finding and its step again; the step it stopped at is
    the table's status); the kinds it covers: the collapse, and an unstable val acc whose
    largest drop is the collapse itself (one event, not two)."""
    collapse = next((x for x in found if x.kind == "collapsed"), None)
    if collapse is not None:
        same = {x.kind for x in found if x.kind == "unstable" and x.step == collapse.step}
        return f"stopped early because {_collapse(collapse)}", {"collapsed", *same}
    reason = f.message.removeprefix("pruned: ")
    head = reason.split(":", 1)[0].strip() if reason else ""
    return "stopped early" + (f": {head}" if head else ""), set()


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def run_verdict(findings: Sequence[Finding], status: str, error: str | None = None) -> RunVerdict:
    """The label, sentence and evidence of one run from its findings (most severe first, as
    ``diagnose_run`` returns them), its status and its error text (a failed run's sentence)."""
    evidence = [finding_text(f.kind, f.message) for f in findings]
    if not findings:
        if status == "failed":
            first = (error or "the error is not recorded").strip().splitlines()[0]
            return RunVerdict("failed", _sentence(f"it failed: {first[:200]}"), evidence)
        return RunVerdict(status, _sentence("no evaluation yet" if status in ("pending", "running")
                                            else "nothing to judge it by"), evidence)
    # a BatchNorm note is never the label while the run has a standing or a problem
    main = next((f for f in findings if f.kind not in NOTES), findings[0])
    if main.kind == "pruned":
        text, covered = _pruned(main, findings)
    else:
        text, covered = _SAY[main.kind](main), set()
    covered.add(main.kind)
    others = list(dict.fromkeys(LABELS[f.kind] for f in findings
                                if f.kind not in covered and f.kind != "healthy"))
    if others:
        text += "; also " + ", ".join(others)
    return RunVerdict(LABELS[main.kind], _sentence(text), evidence)
