"""The words of every diagnosis kind, in one registry: :data:`WORDING`.

Each finding kind (``findings.KINDS``) is said in four places: its label in a run table and the
run's one plain sentence (``verdict``), the "N runs ..." words of the grid patterns of "what
failed and why" (``patterns``) and those of the conclusions (``conclusions``). They all read
this module, so a new kind is worded once, here; ``tests/analysis/test_analysis_kinds.py``
finds the kinds the diagnosis code can emit and fails for any without complete wording.

Pure data and pure formatting of a :class:`~batchlab.analysis.findings.Finding`'s numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from batchlab.analysis.findings import Finding, pct, points


@dataclass(frozen=True)
class Wording:
    """How one finding kind is said (every field is required: a new kind decides each).

    label: the run's label in a table when this kind is its most severe finding (a word or two,
        the field's words).
    say: the plain sentence of such a run from its finding (lower-case start, no full stop;
        ``verdict`` adds them and the other kinds).
    problem: the words after "N runs ..." in the grid patterns of "what failed and why"
        (plural verbs; "were" becomes "was" for one run); None for a standing (healthy,
        below the best), which is not a problem.
    too_large: whether the problem is a sign of too large an LR (the pattern may then say "LR
        0.1 is too large below batch 64").
    summary: the words after "N runs ..." in the conclusions; None when the conclusions say
        it elsewhere (failed and pruned runs in the overview, too large an LR by the fit,
        the healthy count).
    note: a note said beside a run's standing, never its label while it has one.
    failed: the run failed (the answer's "what failed" and the tables' red labels).
    """

    label: str
    say: Callable[[Finding], str]
    problem: str | None
    too_large: bool
    summary: str | None
    note: bool
    failed: bool


def when(f: Finding) -> str:
    """' at epoch 3.1', else ' at step 120', else ''."""
    if f.epoch is not None:
        return f" at epoch {f.epoch:.3g}"
    return f" at step {f.step}" if f.step is not None else ""


def never_rose(f: Finding) -> bool:
    """Whether a ``collapsed`` finding is of a run whose val acc never rose above chance: it
    did not fall back, it never learned (an LR too small, or too large from the first step)."""
    return f.kind == "collapsed" and "final_val_acc" in f.numbers and "collapse_step" not in f.numbers


def collapse_words(f: Finding) -> str:
    """What a collapse did to the run, with its numbers."""
    n = f.numbers
    if "final_val_acc" in n:
        if never_rose(f):
            return f"its val acc never rose above chance (it ends at {pct(n['final_val_acc'])})"
        return (f"its val acc fell from {pct(n['best_val_acc'])} to chance{when(f)} "
                f"(it ends at {pct(n['final_val_acc'])})")
    return f"its loss went back to chance level{when(f)}"


def _overfits(f: Finding) -> str:
    n = f.numbers
    if "train_acc" in n and "val_acc" in n:
        return (f"it overfits{when(f)}: train acc {pct(n['train_acc'])} against val acc "
                f"{pct(n['val_acc'])}")
    if "gap" in n:
        return f"it overfits{when(f)}: train acc ends {points(n['gap'])} above val acc"
    if "val_loss_rise" in n:
        return f"it overfits{when(f)}: val loss rose {pct(n['val_loss_rise'])} above its minimum"
    return f"it overfits{when(f)}"


def _exploding(f: Finding) -> str:
    """Where the loss first passed the line, and its peak when that is far higher: '14.8x' alone
    of a loss that went on to 1.2 million times its start understates what happened."""
    factor = _num(f, "factor", 10)
    text = f"its training loss rose to {factor:.3g}x its start{when(f)}"
    n = f.numbers
    if n.get("initial_loss", 0) > 0 and n.get("peak_loss", 0) / n["initial_loss"] >= 2 * factor:
        text += f", peaking at {n['peak_loss'] / n['initial_loss']:.3g}x"
    return text


def _below_best(f: Finding) -> str:
    n = f.numbers
    if "sweep_best_val_acc" in n:
        return (f"it ends at {pct(n['final_val_acc'])} val acc, "
                f"{points(n['sweep_best_val_acc'] - n['final_val_acc'])} under the best")
    if "sweep_best_val_loss" in n:  # a regression: a higher loss, not a lower score
        final, best = n["final_val_loss"], n["sweep_best_val_loss"]
        return f"it ends at val loss {final:.3g}, {pct(final / best - 1)} above the best's {best:.3g}"
    return "it ends below the best"


def _healthy(f: Finding) -> str:
    n = f.numbers
    if "final_val_acc" in n:
        close = " within noise of the best" if "sweep_best_val_acc" in n else ""
        return f"it trained well: {pct(n['final_val_acc'])} val acc{close}"
    if "sweep_best_val_loss" in n:
        return f"it trained well: val loss {n['final_val_loss']:.3g} within noise of the best"
    return "it trained well"


def _head(f: Finding) -> str:
    """The sentence before the numbers of a finding whose message says it first (the per-layer
    findings open with their plain sentence; the numbers follow a colon)."""
    return f.message.split(": ", 1)[0]


def _pruned(f: Finding) -> str:
    """A pruned run whose pruning no collapse explains: the head of the pruning reason
    (``verdict`` folds a collapse into the sentence instead)."""
    reason = f.message.removeprefix("pruned: ")
    head = reason.split(":", 1)[0].strip() if reason else ""
    return "stopped early" + (f": {head}" if head else "")


def _num(f: Finding, name: str, default: float = 0.0) -> float:
    return f.numbers.get(name, default)


#: Every finding kind's words, in the order of ``findings.KINDS`` (most severe first).
WORDING: dict[str, Wording] = {
    "diverged": Wording(
        "diverged", lambda f: f"its loss became non-finite{when(f)}",
        "diverged (the loss became non-finite)", True, None, note=False, failed=True),
    "pruned": Wording(
        "pruned", _pruned, "were stopped early by sweep.prune", False, None, note=False,
        failed=True),
    "collapsed": Wording(
        "collapsed", collapse_words, "collapsed to chance", True,
        "collapsed to chance (val acc at chance, or the loss back at ln C)", note=False, failed=True),
    "exploding": Wording(
        "exploding", _exploding,
        "had an exploding loss", True, "had an exploding loss", note=False, failed=True),
    "exploding_gradients": Wording(
        "exploding gradients", _head, "had a layer's gradients explode", True,
        "had a layer's gradients explode", note=False, failed=False),
    "lr_too_large": Wording(
        "LR too large", lambda f: f"its LR is too large{when(f)}", "had too large an LR", True,
        None, note=False, failed=True),
    "no_gradient": Wording(
        "no gradient", _head, "had a layer no gradient reaches (detached or frozen)", False,
        "had a layer no gradient reaches (detached or frozen)", note=False, failed=False),
    "unstable": Wording(
        "unstable",
        lambda f: (f"its val acc swings between evaluations (drops of up to "
                   f"{points(_num(f, 'largest_drop'))})"),
        "had a val acc that swings between evaluations", True,
        "had an unstable val acc (swings between evaluations)", note=False, failed=True),
    "overfitting": Wording(
        "overfits", _overfits, "overfit (training pulled well ahead of validation)", False,
        "overfit", note=False, failed=False),
    "model_too_small": Wording(
        "model too small",
        lambda f: ("its training loss plateaus high at an LR that trains, and no LR in the sweep "
                   "does better: the model is too small for this data"),
        "plateaued high at an LR that trains (the model is too small)", False,
        "plateaued high at an LR that trains: the model is too small for the data", note=False,
        failed=False),
    "not_converged": Wording(
        "not converged", lambda f: "its val loss was still falling at the end: train longer",
        "were still improving at the end (train longer)", False,
        "had not converged (val loss still falling at the end)", note=False, failed=False),
    "lr_too_small": Wording(
        "LR too small",
        lambda f: (f"its training loss fell only {pct(max(_num(f, 'relative_fall'), 0.0))}: the "
                   "LR is too small"),
        "barely learned", False, "barely learned (LR too small)", note=False, failed=False),
    "vanishing_gradients": Wording(
        "vanishing gradients", _head, "had vanishing gradients (the first layers barely learn)",
        False, "had vanishing gradients (the first layers barely learn)", note=False, failed=False),
    "dead_units": Wording(
        "dead units", _head, "had most of a layer's ReLU units dead", False,
        "had most of a layer's ReLU units dead", note=False, failed=False),
    "plateau": Wording(
        "plateau",
        lambda f: (f"its training loss was stuck for {pct(_num(f, 'fraction'))} of training "
                   "before falling again"),
        "stalled on a plateau before learning", False,
        "hit a long plateau (training loss stuck, then falling again)", note=False, failed=False),
    "small_bn_batch": Wording(
        "small BN batch",
        lambda f: (f"BatchNorm saw only {_num(f, 'micro_batch_size'):.0f} examples per forward "
                   "pass (noisy batch statistics)"),
        "trained BatchNorm on fewer than 16 examples per forward pass", False,
        "trained BatchNorm on fewer than 16 examples per forward pass (noisy batch statistics; a "
        "larger micro-batch or a model without BatchNorm may do better)", note=True, failed=False),
    "bn_per_process": Wording(
        "BN per process",
        lambda f: ("BatchNorm normalised each process's share of the batch, not the global batch "
                   "(train.sync_batchnorm = true syncs it)"),
        "normalised BatchNorm per process, not over the global batch", False,
        "normalised BatchNorm over each process's share of the batch, not the global batch "
        "(train.sync_batchnorm = true normalises over the global batch)", note=True, failed=False),
    "undertrained": Wording(
        "undertrained",
        lambda f: "it did not reach a clearly trained level: train longer or raise the LR",
        "did not reach a clearly trained level", False,
        "did not reach a clearly trained level (judged alone, nothing to compare with)",
        note=False, failed=False),
    "below_best": Wording(
        "below best", _below_best, None, False,
        "ended below the best configuration by more than the noise", note=False, failed=False),
    "healthy": Wording("ok", _healthy, None, False, None, note=False, failed=False),
}

# The orders the sentences of several kinds are listed in. They are not the severity order of
# ``findings.KINDS``: a pruning comes after the problems that are signs of too large an LR
# (a collapse usually explains it), and the conclusions keep their published order.
#: "What failed and why": the problems, most severe first.
PROBLEM_ORDER = ("diverged", "collapsed", "exploding", "exploding_gradients", "lr_too_large",
                 "unstable", "pruned", "no_gradient", "overfitting", "model_too_small",
                 "lr_too_small", "not_converged", "vanishing_gradients", "dead_units", "plateau",
                 "undertrained", "small_bn_batch", "bn_per_process")
#: The conclusions' "N runs ..." sentences.
SUMMARY_ORDER = ("collapsed", "exploding", "exploding_gradients", "no_gradient",
                 "vanishing_gradients", "dead_units", "model_too_small", "unstable", "overfitting",
                 "not_converged", "lr_too_small", "plateau", "small_bn_batch", "bn_per_process",
                 "undertrained", "below_best")

#: The kinds that mean the run failed, and their labels.
FAILED_KINDS = tuple(k for k, w in WORDING.items() if w.failed)
FAILED_LABELS = tuple(WORDING[k].label for k in FAILED_KINDS)
#: The kinds said beside a run's standing, never its label while it has one.
NOTE_KINDS = tuple(k for k, w in WORDING.items() if w.note)
