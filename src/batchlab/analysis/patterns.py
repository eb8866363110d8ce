"""Where in the LR x batch grid a problem happened, in the field's words: "LR 0.1 is too large
below batch 64: 6 runs collapsed to chance by epoch 3".

Pure functions over (RunFacts, findings) pairs. A run counts once, under its cause: a run pruned
because it collapsed counts as collapsed (the pruning is said in the same sentence), so the
problem sentences of an experiment never count one run twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchlab.analysis.findings import Finding
from batchlab.analysis.groups import RunFacts
from batchlab.analysis.kinds import PROBLEM_ORDER, WORDING, never_rose


@dataclass(frozen=True)
class Problem:
    """Runs that share one cause: ``kind`` (one of ``kinds.PROBLEM_ORDER``), the runs' facts and
    findings of that kind, and how many of them were stopped early (pruned)."""

    kind: str
    runs: list[RunFacts]
    findings: list[Finding]
    n_pruned: int


def cause(found: Sequence[Finding]) -> str | None:
    """The one problem a run counts under: its most severe finding that is a problem, a
    pruned run's collapse before the pruning itself; None for a run without a problem."""
    kinds = [f.kind for f in found]
    if "pruned" in kinds and "collapsed" in kinds:
        return "collapsed"
    return next((k for k in kinds if k in PROBLEM_ORDER), None)


def problems(runs: Sequence[tuple[RunFacts, list[Finding]]]) -> list[Problem]:
    """Runs grouped by cause, in ``kinds.PROBLEM_ORDER`` (most severe first)."""
    out = []
    for kind in PROBLEM_ORDER:
        here = [(f, found) for f, found in runs if cause(found) == kind]
        if here:
            out.append(Problem(kind, [f for f, _ in here],
                               [x for _, found in here for x in found if x.kind == kind],
                               sum(f.status == "pruned" for f, _ in here)))
    return out


def _g(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _knobs(f: RunFacts) -> tuple[Any, Any]:
    return f.train.get("lr"), f.train.get("batch_size")


def _batches(bs: Sequence[Any]) -> str:
    return "batch " + ", ".join(map(str, bs))


def where(bad: Sequence[RunFacts], every: Sequence[RunFacts]) -> tuple[list[Any], str]:
    """The LRs of the bad runs and where in the grid they are, per LR: 'at every batch size',
    'below batch 64' (every smaller batch tested at that LR is bad, the larger ones are not),
    'from batch 64' (the reverse), else the batch sizes themselves."""
    tested: dict[Any, set[Any]] = {}
    for f in every:
        lr, b = _knobs(f)
        tested.setdefault(lr, set()).add(b)
    failing: dict[Any, set[Any]] = {}
    for f in bad:
        lr, b = _knobs(f)
        failing.setdefault(lr, set()).add(b)
    parts = []
    for lr in sorted(failing, key=lambda x: (x is None, x if isinstance(x, int | float) else 0)):
        fail = sorted(b for b in failing[lr] if b is not None)
        all_b = sorted(b for b in tested[lr] if b is not None)
        rest = [b for b in all_b if b not in fail]
        if not rest or not fail:
            span = "at every batch size" if len(all_b) > 1 else f"at {_batches(all_b)}" if all_b else ""
        elif max(fail) < min(rest):
            span = f"below batch {min(rest)}"
        elif min(fail) > max(rest):
            span = f"from batch {min(fail)}"
        else:
            span = f"at {_batches(fail)}"
        parts.append(f"LR {_g(lr)} {span}".rstrip() if lr is not None else span)
    return list(failing), "; ".join(parts)


def _by_epoch(p: Problem) -> str:
    epochs = [f.epoch for f in p.findings if f.epoch is not None]
    early = p.kind in ("diverged", "collapsed", "exploding")  # when it happened is the point
    return f" by epoch {max(epochs):.3g}" if epochs and early else ""


def problem_sentence(p: Problem, every: Sequence[RunFacts]) -> str:
    """'LR 0.1 is too large below batch 64: 6 runs collapsed to chance by epoch 3 (4 of them
    stopped early).' A too-large LR is named only when every LR with the problem is the
    largest tested (too small: the smallest), so the words never claim more than the grid."""
    lrs, place = where(p.runs, every)
    words, too_large = WORDING[p.kind].problem, WORDING[p.kind].too_large
    assert words is not None  # a Problem's kind is one of PROBLEM_ORDER, each with its words
    never = sum(never_rose(f) for f in p.findings)
    if p.findings and never == len(p.findings):  # no fall: they never learned
        words, too_large = "stayed at chance (never learned)", False
    elif never:  # some fell to chance, some never left it: "collapsed" alone is false of those
        words = f"ended at chance ({never} never learned, {len(p.findings) - never} collapsed)"
    tested = sorted({lr for lr, _ in map(_knobs, every) if isinstance(lr, int | float)})
    n = len(p.runs)
    count = f"{n} run{'s' if n > 1 else ''} {words if n > 1 else _singular(words)}"
    early = ("" if not p.n_pruned or p.kind == "pruned" else " (stopped early)" if n == 1
             else f" (all {n} stopped early)" if p.n_pruned == n
             else f" ({p.n_pruned} of them stopped early)")
    body = f"{count}{_by_epoch(p)}{early}"
    if tested and len(tested) > 1 and len(lrs) == 1 and isinstance(lrs[0], int | float):
        lr = lrs[0]
        span = place.removeprefix(f"LR {_g(lr)}").strip()
        if too_large and lr == tested[-1]:
            return f"LR {_g(lr)} is too large {span}: {body}."
        if p.kind == "lr_too_small" and lr == tested[0]:
            return f"LR {_g(lr)} is too small {span}: {body}."
    return f"{place[:1].upper()}{place[1:]}: {body}." if place else f"{body[:1].upper()}{body[1:]}."


def _singular(words: str) -> str:
    return words.replace("were ", "was ", 1)
