"""The LR grid of a follow-up sweep, per batch size: finer around the best, beyond an edge, and
never into the range that failed.

For each batch size of an experiment, :func:`refine_lrs` looks at the LRs tried there and the
best eligible one (highest mean best val acc, a tie going to the lower val loss; lowest mean
lowest val loss in an experiment that records no accuracy, a regression):

- between two tried LRs: the half-steps on either side (geometric means with its neighbours),
  so the next grid is twice as fine where the optimum lies;
- at the top or bottom edge of the grid: one half-step and one whole step beyond it (the
  optimum may lie outside what was tried), and a half-step back inside;
- no LR trained without failing: a whole step and two below the lowest tried;
- a grid already finer than :data:`FINE_RATIO` between neighbours: left alone.

Any LR at or above the lowest LR that *failed* above the best at that batch size (a run
diverged, collapsed to chance or never learned there) is removed: that range is known. The
best LR itself is kept exactly (its runs are in the store and are not trained again).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from batchlab.analysis.metric import metric_of

#: Neighbouring LRs closer than this ratio: the grid is already fine enough for seed noise to
#: decide between them (two LRs 1.5x apart rarely differ by more than a point).
FINE_RATIO = 1.5
#: The spacing assumed around a lone LR: the usual decade grid.
LONE_RATIO = 10.0


@dataclass(frozen=True)
class BatchLrs:
    """The follow-up LRs of one batch size (``batch_size`` None: the experiment's only one)
    and why, in a sentence with the numbers."""

    batch_size: int | None
    lrs: tuple[float, ...]
    why: str


def _round(x: float) -> float:
    return float(f"{x:.3g}")


def _failed_groups(groups: Sequence[Mapping[str, Any]], failed: Mapping[str, str]
                   ) -> dict[float, str]:
    """LR -> 'k of n runs diverged/collapsed' for the groups with a failed run."""
    runs: dict[float, list[str]] = {}
    for g in groups:  # several groups share an LR when the sweep varies something else too
        runs.setdefault(float(g["lr"]), []).extend(g["run_ids"])
    out: dict[float, str] = {}
    for lr, ids in runs.items():
        bad = [failed[r] for r in ids if r in failed]
        if bad:
            out[lr] = f"{len(bad)} of {len(ids)} runs {'/'.join(sorted(set(bad)))}"
    return out


def _ranking(group: Mapping[str, Any], m: Any) -> tuple[float, float]:
    """Best first by the metric; a tie (runs that all ended at chance, say) by the lower
    validation loss, where the one that learned a little stands apart (else the lowest LR
    won the tie by its place in the list)."""
    loss = group.get("best_val_loss_mean")
    return m.order(group[m.mean]), -loss if loss is not None else -math.inf


def _one_batch(b: int | None, groups: Sequence[Mapping[str, Any]], failed: Mapping[str, str]
               ) -> BatchLrs | None:
    tried = sorted({float(g["lr"]) for g in groups})
    where = f"batch {b}: " if b is not None else ""
    ratio = (tried[-1] / tried[0]) ** (1 / (len(tried) - 1)) if len(tried) > 1 else LONE_RATIO
    fails = _failed_groups(groups, failed)
    m = metric_of(groups[0])  # one metric per experiment
    eligible = [g for g in groups if g["eligible"] and g.get(m.mean) is not None]
    if not eligible:
        if not fails:
            return None  # nothing trained here yet: nothing to learn from
        low = tried[0]
        lrs = (_round(low / ratio ** 2), _round(low / ratio))
        return BatchLrs(b, lrs, f"{where}no LR trained without failing (LR {low:g}: {fails[low]}"
                        + (", and every LR above" if len(tried) > 1 else "") + "): go below it")
    best = max(eligible, key=lambda g: _ranking(g, m))
    lr = float(best["lr"])
    lo = max((x for x in tried if x < lr), default=None)
    hi = min((x for x in tried if x > lr), default=None)
    score = f"best LR {lr:g} ({m.name} {m.fmt(best[m.mean])})"
    if lo is not None and hi is not None and hi / lo <= FINE_RATIO ** 2:
        return None
    new = {lr}
    if lo is not None:
        new.add(_round(math.sqrt(lo * lr)))
    else:
        new |= {_round(lr / math.sqrt(ratio)), _round(lr / ratio)}
    if hi is not None:
        new.add(_round(math.sqrt(lr * hi)))
    else:
        new |= {_round(lr * math.sqrt(ratio)), _round(lr * ratio)}
    if len(tried) == 1:
        place = f"the only LR tried: a grid of x{math.sqrt(ratio):.3g} steps around it"
    elif lo is not None and hi is not None:
        place = f"lies between {lo:g} and {hi:g}: half-steps on either side"
    elif hi is None:
        place = f"is the highest tried: the grid goes on above it (x{math.sqrt(ratio):.3g}, x{ratio:.3g})"
    else:
        place = f"is the lowest tried: the grid goes on below it (/{math.sqrt(ratio):.3g}, /{ratio:.3g})"
    why = f"{where}{score} {place}"
    cap = min((x for x in fails if x > lr), default=None)
    if cap is not None:
        cut = sorted(x for x in new if x >= cap)
        new -= set(cut)
        why += f"; LR {cap:g} and above left out ({fails[cap]} at {cap:g})"
    return BatchLrs(b, tuple(sorted(new)), why)


def refine_lrs(groups: Sequence[Mapping[str, Any]], failed: Mapping[str, str]) -> list[BatchLrs]:
    """The follow-up LRs per batch size (see the module doc), ascending by batch size.

    ``groups``: the experiment analysis' groups (batch_size, lr, eligible, run_ids, metric and
    its mean: best_val_acc_mean or best_val_loss_mean); ``failed``: run id -> what it did
    ("diverged", "collapsed", "never learned") for the runs that failed at their LR. Groups
    without a numeric LR are ignored. A batch size whose grid is already fine, or without any
    run trained, is left out.
    """
    usable = [g for g in groups if isinstance(g.get("lr"), int | float) and not isinstance(g["lr"], bool)]
    sizes = sorted({g["batch_size"] for g in usable}, key=lambda b: (b is None, b or 0))
    plans = [_one_batch(b, [g for g in usable if g["batch_size"] == b], failed) for b in sizes]
    return [p for p in plans if p is not None]
