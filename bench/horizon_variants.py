"""The shipped horizon design changed, and the same designs from a second seed: the replays
``python bench/horizon_designs.py`` prints after its design search, on the dev half only.

Each function takes the case tables of ``horizon_designs.tables`` (miniatures of every grid LR
at several horizons, with the ground truth's summary). Not part of batchlab and not a test
module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from horizon_designs import (
    HORIZONS,
    MIN_STEPS,
    SEED_HORIZONS,
    SHIPPED,
    _kept,
    _position,
    ceilings,
    choose,
    judged,
    replay,
    score,
)


def within(ts: list[dict[str, Any]], lrs: Sequence[float | None]) -> str:
    """"NN/n within 3x, NN/n within 2x" for the picks ``lrs`` of the case tables ``ts``."""
    marks = [judged(t, lr) for t, lr in zip(ts, lrs, strict=True)]
    n = len(ts)
    return f"{sum(m[0] for m in marks):2}/{n} within 3x, {sum(m[1] for m in marks):2}/{n} within 2x"


def third_rung(t: dict[str, Any], design: tuple, f2: float, width: Sequence[int] = (-1, 0, 1)
               ) -> tuple[float | None, float]:
    """``design`` replayed, then a third rung: its pick and ``width`` neighbours (ladder steps of
    a third of a decade) at horizon ``f2``; a miniature rung 1 already trained is not paid again."""
    lr, spent = replay(t, *design)
    if lr is None:
        return lr, spent
    case, total = t["case"], t["total"]
    at = {(r["frac"], _position(case, r["lr"])): r for r in t["rows"]}
    rows = [r for r in (at.get((f2, _position(case, lr) + w)) for w in width) if r is not None]
    new = len(rows) - (1 if f2 == design[2] and 0 in width else 0)
    pick = choose(rows, t)
    return (pick["lr"] if pick else lr), spent + new * min(total, max(MIN_STEPS, round(f2 * total))) / total


def _vertex(t: dict[str, Any], lr: float | None) -> float | None:
    """A pick moved to the vertex of the parabola through rung 1's three scores in log LR
    (accuracy, or the loss for a regression), at most half the spacing either side."""
    f1, width = SHIPPED[2], SHIPPED[3]
    if lr is None:
        return lr
    at = {(r["frac"], _position(t["case"], r["lr"])): r for r in t["rows"]}
    rows = [at.get((f1, _position(t["case"], lr) + w)) for w in width]
    if not all(_kept(r) for r in rows):
        return lr
    a, b, c = (r["val_loss"] if t["regression"] else -r["val_acc"] for r in rows)
    if a - 2 * b + c <= 0:
        return lr
    offset = max(-0.5, min(0.5, (a - c) / (2 * (a - 2 * b + c))))
    return lr * (10 ** ((width[-1] - width[0]) / 6)) ** offset


def _loss_only(rows: list[dict[str, Any] | None], t: dict[str, Any]) -> dict[str, Any] | None:
    kept = [r for r in rows if _kept(r)]
    return min(kept, key=lambda r: r["val_loss"]) if kept else None


def _two_se(rows: list[dict[str, Any] | None], t: dict[str, Any]) -> dict[str, Any] | None:
    kept = [r for r in rows if _kept(r)]
    if kept and not t["regression"]:
        top = max(r["val_acc"] for r in kept)
        se = math.sqrt(max(top * (1 - top), 1e-12) / t["n_val"])
        kept = [r for r in kept if r["val_acc"] >= top - 2 * se]
    return min(kept, key=lambda r: r["val_loss"]) if kept else None


def _parabola(t: dict[str, Any], lr: float | None) -> float | None:
    """A regression's pick moved to the vertex of rung 1's loss parabola (``_vertex``);
    anything else unchanged."""
    return _vertex(t, lr) if t["regression"] else lr


def extrapolated(t: dict[str, Any], fa: float, fb: float, c: float) -> float | None:
    """The grid's pick when each LR's validation accuracy and loss are extrapolated from its
    miniatures at horizons ``fa`` < ``fb`` to the full run, linearly in ``steps ** -c`` (a
    learning curve's power law with its exponent fixed, since two points fit two parameters)."""
    total = t["total"]
    ha, hb = (max(MIN_STEPS, round(f * total)) for f in (fa, fb))
    if ha >= hb:
        return None
    k = (hb ** -c - total ** -c) / (ha ** -c - hb ** -c)
    at = {(r["frac"], r["lr"]): r for r in t["rows"]}
    rows = []
    for (f, lr), rb in at.items():
        ra = at.get((fa, lr))
        if f != fb or not (_kept(ra) and _kept(rb)):
            continue
        acc = math.nan if t["regression"] else rb["val_acc"] + k * (rb["val_acc"] - ra["val_acc"])
        rows.append({"lr": lr, "val_loss": rb["val_loss"] + k * (rb["val_loss"] - ra["val_loss"]),
                     "val_acc": min(1.0, acc), "rejected": None})
    pick = choose(rows, t)
    return pick["lr"] if pick else None


def reseeded(t: dict[str, Any], which: str) -> dict[str, Any]:
    """Case table ``t`` with its miniatures at SEED_HORIZONS from the second seed (``"1"``), or
    averaged over both seeds (``"mean"``: accuracy and loss; rejected when either was)."""
    second = {(r["frac"], r["lr"]): r for r in t["rows_seed1"]}
    rows = []
    for r in t["rows"]:
        q = second.get((r["frac"], r["lr"]))
        if q is None:
            continue
        if which == "1":
            rows.append(q)
        elif _kept(r) and _kept(q):
            acc = None if r["val_acc"] is None else (r["val_acc"] + q["val_acc"]) / 2
            rows.append({**r, "val_loss": (r["val_loss"] + q["val_loss"]) / 2, "val_acc": acc})
        else:
            rows.append({**r, "rejected": r["rejected"] or q["rejected"] or "not finite"})
    return {**t, "rows": rows}


def seeds(ts: list[dict[str, Any]]) -> None:
    """The shipped design and the grid at SEED_HORIZONS from one seed, the other and both."""
    print(f"\none seed of the miniatures against another (initialisation and batch order; "
          f"{', '.join(f'1/{round(1 / f)}' for f in SEED_HORIZONS)} only):")
    grids = [(f"the grid at 1/{round(1 / f)}", (tuple(range(-12, 13)), f, None, (0,)))
             for f in SEED_HORIZONS[1:]]
    # what lr_find(budget=0.9) approximates: rungs at 0.09 and 0.18 of the run
    longer = ("a ladder at 1/10, then [-2, 0, 2] at 1/6 (budget 0.9)",
              ((-3, 0, 3, 6), 1 / 10, 1 / 6, (-2, 0, 2)))
    designs_ = [("shipped", SHIPPED), longer, *grids]
    for label_, design in designs_:
        for which, tables_ in (("seed 0", ts), ("seed 1", [reseeded(t, "1") for t in ts]),
                               ("mean of both", [reseeded(t, "mean") for t in ts])):
            picks = [replay(x, *design)[0] for x in tables_]
            print(f"  {within(ts, picks)}, {ceilings(ts, picks)}: {label_}, {which}")


def alternatives(ts: list[dict[str, Any]]) -> None:
    """The shipped design with the changes tried on dev and not taken, each replayed."""
    n = len(ts)
    print("\nthe shipped design, changed (tried on dev, not taken):")
    for label_, rank in (("shipped", choose), ("ranked by val loss alone", _loss_only),
                         ("accuracy ties within 2 standard errors", _two_se)):
        s = score(ts, SHIPPED, rank)
        print(f"  {s['in3']:2}/{n} within 3x, {s['in2']:2}/{n} within 2x: {label_}")
    for label_, kw in (("without the duel (the design before it)", {"duel": None}),
                       ("a duel in every case, the pick against rung 1's runner-up",
                        {"duel_all": True}),
                       ("a duel where rung 1's runner-up is within 2 standard errors",
                        {"bands": 2.0})):
        outs = [replay(t, *SHIPPED[:4], **{"duel": SHIPPED[4], **kw}) for t in ts]
        print(f"  {within(ts, [lr for lr, _ in outs])}, cost median "
              f"{np.median([c for _, c in outs]):.2f} max {max(c for _, c in outs):.2f}: {label_}")
    for f2 in (f for f in HORIZONS if f >= SHIPPED[2]):
        outs = [third_rung(t, SHIPPED[:4], f2) for t in ts]
        print(f"  {within(ts, [lr for lr, _ in outs])}, cost median "
              f"{np.median([c for _, c in outs]):.2f}: a third rung, the pick and a third of a "
              f"decade either side at 1/{round(1 / f2)}, every time, in place of the duel")
    picks = [replay(t, *SHIPPED)[0] for t in ts]

    def distance(lrs: Sequence[float | None]) -> float:
        return float(np.mean([abs(math.log10(lr / t["summary"]["best_lr"]))
                              for t, lr in zip(ts, lrs, strict=True) if lr]))

    print(f"  (mean |log10 pick / best|: shipped {distance(picks):.3f}, moved to rung 1's parabola "
          f"{distance([_vertex(t, lr) for t, lr in zip(ts, picks, strict=True)]):.3f})")
    for label_, move in (("regressions moved to rung 1's loss parabola", _parabola),
                         ("every pick moved to rung 1's parabola (accuracy; loss for a regression)",
                          _vertex),
                         *((f"every pick / {f:.2f} (a short-horizon shrink)",
                            (lambda t, lr, f=f: lr / f if lr else lr)) for f in (1.26, 1.41, 2.0))):
        print(f"  {within(ts, [move(t, lr) for t, lr in zip(ts, picks, strict=True)])}: {label_}")
    grid = (tuple(range(-12, 13)), 1 / 10, None, (0,))
    print("\nthe grid at a tenth of the run, and extrapolated to the full run from a twentieth and "
          "a tenth:")
    for label_, lrs in (("at a tenth", [replay(t, *grid)[0] for t in ts]),
                        *((f"extrapolated, power {c:g}", [extrapolated(t, 1 / 20, 1 / 10, c) for t in ts])
                          for c in (0.5, 1.0))):
        print(f"  {within(ts, lrs)}, {ceilings(ts, lrs)}: {label_}")
    ratios = [math.log10(lr / t["summary"]["best_lr"]) for t, lr in zip(ts, picks, strict=True) if lr]
    print(f"  (the shipped picks' geometric mean ratio to the grid's best: {10 ** np.mean(ratios):.2f}x)")
