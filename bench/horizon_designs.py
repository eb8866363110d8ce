"""How the horizon strategy's design was chosen: accuracy against probe cost over a family
of successive-halving designs, on the dev half of the judgement bench only.

    python bench/horizon_designs.py                # miniatures from the cache, designs scored now
    python bench/horizon_designs.py --regenerate   # train the miniatures again (~10 min on 2 cores)

For every dev case with cached ground truth (``judgement_truth.json``): a miniature of the run
-- batchlab's own trial (``lr_trial.run_trial``) under the run's schedule squeezed into ``h``
steps (``lr_horizon.compressed``), one seed -- at every LR of the ground truth's grid and at
every fraction of the run in ``HORIZONS``. Cached in ``horizon_designs.json``. A design (a
rung-0 ladder over the grid, its horizon, the rung-1 neighbours and their horizon) is then
replayed on that table and scored as ``judgement.py`` scores a suggestion: within 3x of the
grid's best LR or inside its within-noise range. Printed: the grid at each horizon alone (what
any design ending there can reach at most, on every target judgement.py checks), the best
designs under each median cost, the changes to the shipped design tried and not taken, and
the same designs from a second seed of the miniatures at ``SEED_HORIZONS`` (another
initialisation and batch order: how much a score owes to one draw).

The held-out half is never read here: designs are chosen on dev, and ``judgement.py`` judges
the chosen one on held-out. Ladder positions are in thirds of a decade from the bench's base
LR of the optimizer (``_bench_space.BASE_LR``).

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench_truth as truthlib  # noqa: E402
from _bench_space import Case, draw  # noqa: E402
from judgement import free_best, objects  # noqa: E402

CACHE = Path(__file__).resolve().parent / "horizon_designs.json"
HORIZONS = (1 / 30, 1 / 20, 1 / 15, 1 / 10, 1 / 6, 1 / 5, 1 / 4, 1 / 3)
#: the horizons also trained from a second seed, to see how much a score owes to one draw
SEED_HORIZONS = (1 / 20, 1 / 10, 1 / 6)
MIN_STEPS = 8
#: the design batchlab ships (``lr_horizon``): a decade ladder at a twentieth of the run, then
#: the best and 2/3 of a decade either side at a tenth
SHIPPED = ((-3, 0, 3, 6), 1 / 20, 1 / 10, (-2, 0, 2))


# --------------------------------------------------------------------------- the tables


def miniatures(case: Case, lrs: Sequence[float], seed_offset: int = 0,
               horizons: Sequence[float] = HORIZONS) -> dict[str, Any]:
    """Every LR of ``lrs`` as a miniature of ``case``'s run at every horizon of ``horizons``,
    from the probe's seed plus ``seed_offset`` (another initialisation and batch order)."""
    import batchlab as bl
    from batchlab.api import _probe
    from batchlab.probes.common import load_probe_data
    from batchlab.probes.lr_horizon import compressed
    from batchlab.probes.lr_trial import baseline, run_trial
    from batchlab.train.schedules import run_length, steps_per_epoch

    kw = objects(case)
    model, train, val, loss = kw.pop("model"), kw.pop("train"), kw.pop("val"), kw.pop("loss")
    optimizer = kw.pop("optimizer")

    class Table:
        def __init__(self, rows: dict[str, Any]) -> None:
            self.rows = rows

        def to_dict(self) -> dict[str, Any]:
            return self.rows

    def measure(config: Any, inputs: Any) -> Table:
        data = load_probe_data(config, inputs)
        t = config.train
        n = len(data.train_y)
        total = run_length(t.steps, t.epochs, steps_per_epoch(n, t.batch_size))
        seed = t.seed + seed_offset
        base = baseline(config, data, seed, None, inputs)
        rows = []
        for f in horizons:
            h = min(total, max(MIN_STEPS, round(f * total)))
            for lr in lrs:
                tr = run_trial(config, data, lr, h, seed, None, base, inputs,
                               factor=compressed(config, n, h))
                rows.append({"frac": f, "steps": h, "lr": lr, "val_loss": tr.val_loss,
                             "val_acc": tr.val_acc, "rejected": tr.rejected})
        return Table({"total": total, "n_val": base.n_val, "regression": math.isnan(base.chance_acc),
                      "rows": rows})

    assert bl  # the public package is imported first, as a user would
    with contextlib.redirect_stdout(io.StringIO()):
        return _probe("lr_range", measure, model, train, val, loss, optimizer, None, "designs",
                      kw).to_dict()


def tables(regenerate: bool) -> dict[str, Any]:
    """The miniature table of every dev case (cached by the ground truth's fingerprint)."""
    truth = truthlib.load_truth()
    cache = json.loads(CACHE.read_text()) if CACHE.exists() and not regenerate else {}
    out = {}
    for case in draw():
        if case.half != "dev" or case.name not in truth:
            continue
        entry = cache.get(case.name)
        lrs = sorted(float(k) for k in truth[case.name]["summary"]["scores"])
        fresh = entry is None or entry.get("fingerprint") != truth[case.name]["fingerprint"]
        if fresh:
            entry = {"fingerprint": truth[case.name]["fingerprint"], **miniatures(case, lrs)}
        if fresh or "rows_seed1" not in entry:
            entry["rows_seed1"] = miniatures(case, lrs, 1, SEED_HORIZONS)["rows"]
            cache[case.name] = entry
            CACHE.write_text(json.dumps(cache, separators=(",", ":"),
                                        default=lambda v: None).replace("NaN", "null"))
            print(f"  miniatures of {case.name}: {len(entry['rows'])}", flush=True)
        out[case.name] = {**entry, "case": case, "summary": truth[case.name]["summary"],
                          "free": free_best(case, truth[case.name])[1]}
    return out


# --------------------------------------------------------------------------- replaying designs


def _position(case: Case, lr: float) -> int:
    return round(3 * math.log10(lr / case.base_lr))


def _kept(r: dict[str, Any] | None) -> bool:
    return r is not None and r["rejected"] is None and r["val_loss"] is not None


def choose(rows: list[dict[str, Any] | None], t: dict[str, Any]) -> dict[str, Any] | None:
    """The best kept row as ``lr_trial.choose`` ranks trials: accuracy, ties within a binomial
    standard error broken by the loss; the loss alone for a regression."""
    kept = [r for r in rows if _kept(r)]
    if not kept:
        return None
    if not t["regression"]:
        top = max(r["val_acc"] for r in kept)
        se = math.sqrt(max(top * (1 - top), 1e-12) / t["n_val"])
        kept = [r for r in kept if r["val_acc"] >= top - se]
    return min(kept, key=lambda r: r["val_loss"])


Rank = Callable[[list[dict[str, Any] | None], dict[str, Any]], dict[str, Any] | None]


def replay(t: dict[str, Any], span: Sequence[int], f0: float, f1: float | None,
           width: Sequence[int], rank: Rank | None = None) -> tuple[float | None, float]:
    """The LR a design picks on case table ``t`` and what it cost (in runs): rung 0 over
    ``span`` at ``f0`` (grown a ladder step beyond an edge its best is on, twice at most),
    then the best's ``width`` neighbours at ``f1``."""
    rank = rank or choose
    case: Case = t["case"]
    at = {(r["frac"], _position(case, r["lr"])): r for r in t["rows"]}
    total = t["total"]

    def cost(f: float, n: int) -> float:
        return n * min(total, max(MIN_STEPS, round(f * total))) / total

    rung = [at.get((f0, k)) for k in span]
    rung = [r for r in rung if r is not None]
    spent = cost(f0, len(rung))
    step = span[1] - span[0] if len(span) > 1 else 3
    for _ in range(2):
        best, ks = rank(rung, t), [_position(case, r["lr"]) for r in rung]
        if not ks:
            break
        if best is not None and _position(case, best["lr"]) == max(ks):
            extra = at.get((f0, max(ks) + step))
        elif best is None or _position(case, best["lr"]) == min(ks):
            extra = at.get((f0, min(ks) - step))
        else:
            break
        if extra is None:
            break
        rung.append(extra)
        spent += cost(f0, 1)
    best = rank(rung, t)
    if best is None or f1 is None:
        return (best["lr"] if best else None), spent
    kb = _position(case, best["lr"])
    second = [r for r in (at.get((f1, kb + w)) for w in width) if r is not None]
    pick = rank(second, t) or best
    return pick["lr"], spent + cost(f1, len(second))


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


def judged(t: dict[str, Any], lr: float | None) -> tuple[bool, bool]:
    """(within 3x or in range, within 2x or in range) of the grid's best, as judgement.py."""
    if lr is None:
        return False, False
    s = t["summary"]
    inside = s["range"][0] / 1.0001 <= lr <= s["range"][1] * 1.0001
    ratio = lr / s["best_lr"]
    return inside or 1 / 3 <= ratio <= 3, inside or 1 / 2 <= ratio <= 2


def outcome(t: dict[str, Any], lr: float | None) -> dict[str, Any]:
    """What the full run at ``lr`` (a grid LR) scored against the grid, as ``judgement.py``
    judges it: the metric lost (accuracy points, or relative MSE), whether it is within noise
    of the grid's best (``recommend``'s test) and whether it reaches the best LR-free
    optimizer within noise. No answer: nothing lost is counted (``lost`` None), no test passed;
    a failed run: everything lost (1.0)."""
    s = t["summary"]
    score = s["scores"].get(str(lr)) if lr is not None else None
    if score is None or not math.isfinite(score):
        return {"lost": None if score is None else 1.0, "in_noise": False, "free": False}
    lost = (s["best"] - score) / abs(s["best"]) if t["regression"] else s["best"] - score
    return {"lost": lost, "in_noise": score >= s["best"] - s["noise"],
            "free": score >= t["free"] - s["noise"]}


def ceilings(ts: list[dict[str, Any]], picks: Sequence[float | None]) -> str:
    """The targets judgement.py checks besides the LR's distance, for ``picks``: answers, mean
    accuracy points and MSE lost over the answers, within noise of the grid's best, >= the best
    LR-free optimizer."""
    outs = [outcome(t, lr) for t, lr in zip(ts, picks, strict=True)]
    acc = [o["lost"] for t, o in zip(ts, outs, strict=True) if not t["regression"] and o["lost"] is not None]
    mse = [o["lost"] for t, o in zip(ts, outs, strict=True) if t["regression"] and o["lost"] is not None]
    n = len(ts)
    return (f"answer {len(acc) + len(mse):2}/{n}  acc lost {100 * np.mean(acc) if acc else 0:4.1f} pts  "
            f"mse lost {100 * np.mean(mse) if mse else 0:4.1f}%  "
            f"in noise {sum(o['in_noise'] for o in outs):2}/{n}  "
            f">= LR-free {sum(o['free'] for o in outs):2}/{n}")


def score(ts: list[dict[str, Any]], design: tuple, rank: Rank | None = None) -> dict[str, Any]:
    outs = [replay(t, *design, rank=rank) for t in ts]
    marks = [judged(t, lr) for t, (lr, _) in zip(ts, outs, strict=True)]
    costs = [c for _, c in outs]
    return {"in3": sum(m[0] for m in marks), "in2": sum(m[1] for m in marks),
            "median": float(np.median(costs)), "max": float(max(costs)), "design": design}


def designs() -> list[tuple]:
    spans = ((-3, 0, 3, 6), (-4, -2, 0, 2, 4, 6), (-4, 0, 4), tuple(range(-3, 7)))
    out: list[tuple] = []
    for span in spans:
        for i, f0 in enumerate(HORIZONS):
            out.append((span, f0, None, (0,)))
            for f1 in HORIZONS[i + 1:]:
                for width in ((-1, 0, 1), (-2, 0, 2), (-1, 0), (0, 1)):
                    out.append((span, f0, f1, width))
    return out


def label(design: tuple) -> str:
    span, f0, f1, width = design
    then = f", then {list(width)} at 1/{round(1 / f1)}" if f1 else ""
    return f"ladder {list(span)} at 1/{round(1 / f0)}{then}"


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
    n = len(ts)
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
            marks = [judged(t, lr) for t, lr in zip(ts, picks, strict=True)]
            print(f"  {sum(m[0] for m in marks):2}/{n} within 3x, {sum(m[1] for m in marks):2}/{n} within "
                  f"2x, {ceilings(ts, picks)}: {label_}, {which}")


def alternatives(ts: list[dict[str, Any]]) -> None:
    """The shipped design with the changes tried on dev and not taken, each replayed."""
    n = len(ts)
    print("\nthe shipped design, changed (tried on dev, not taken):")
    for label_, rank in (("shipped", choose), ("ranked by val loss alone", _loss_only),
                         ("accuracy ties within 2 standard errors", _two_se)):
        s = score(ts, SHIPPED, rank)
        print(f"  {s['in3']:2}/{n} within 3x, {s['in2']:2}/{n} within 2x: {label_}")
    for f2 in (f for f in HORIZONS if f >= SHIPPED[2]):
        outs = [third_rung(t, SHIPPED, f2) for t in ts]
        marks = [judged(t, lr) for t, (lr, _) in zip(ts, outs, strict=True)]
        costs = [c for _, c in outs]
        print(f"  {sum(m[0] for m in marks):2}/{n} within 3x, {sum(m[1] for m in marks):2}/{n} within "
              f"2x, cost median {np.median(costs):.2f}: a third rung, the pick and a third of a "
              f"decade either side at 1/{round(1 / f2)}")
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
        marks = [judged(t, move(t, lr)) for t, lr in zip(ts, picks, strict=True)]
        print(f"  {sum(m[0] for m in marks):2}/{n} within 3x, {sum(m[1] for m in marks):2}/{n} "
              f"within 2x: {label_}")
    grid = (tuple(range(-12, 13)), 1 / 10, None, (0,))
    print("\nthe grid at a tenth of the run, and extrapolated to the full run from a twentieth and "
          "a tenth:")
    for label_, lrs in (("at a tenth", [replay(t, *grid)[0] for t in ts]),
                        *((f"extrapolated, power {c:g}", [extrapolated(t, 1 / 20, 1 / 10, c) for t in ts])
                          for c in (0.5, 1.0))):
        marks = [judged(t, lr) for t, lr in zip(ts, lrs, strict=True)]
        print(f"  {sum(m[0] for m in marks):2}/{n} within 3x, {sum(m[1] for m in marks):2}/{n} within 2x, "
              f"{ceilings(ts, lrs)}: {label_}")
    ratios = [math.log10(lr / t["summary"]["best_lr"]) for t, lr in zip(ts, picks, strict=True) if lr]
    print(f"  (the shipped picks' geometric mean ratio to the grid's best: {10 ** np.mean(ratios):.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--regenerate", action="store_true", help="train the miniatures again")
    args = parser.parse_args()
    ts = list(tables(args.regenerate).values())
    n = len(ts)
    print(f"\n{n} dev cases; a design is judged within 3x (or 2x) of the grid's best LR or inside "
          "its within-noise range\n\nthe grid alone at each horizon (every LR, one seed):")
    for f in HORIZONS:
        grid = (tuple(range(-12, 13)), f, None, (0,))
        s = score(ts, grid)
        picks = [replay(t, *grid)[0] for t in ts]
        print(f"  1/{round(1 / f):<3} within 3x {s['in3']:2}/{n}  within 2x {s['in2']:2}/{n}  "
              f"{ceilings(ts, picks)}  cost {s['median']:.1f} runs")
    print(f"  the grid's own best LR: {ceilings(ts, [t['summary']['best_lr'] for t in ts])}")
    scored = [score(ts, d) for d in designs()]
    for limit in (0.3, 0.5, 0.75, 1.0):
        best = sorted((s for s in scored if s["median"] <= limit),
                      key=lambda s: (-s["in3"], -s["in2"], s["median"]))[:3]
        print(f"\nbest designs at a median cost <= {limit} run:")
        for s in best:
            print(f"  {s['in3']:2}/{n} within 3x, {s['in2']:2}/{n} within 2x, cost median "
                  f"{s['median']:.2f} max {s['max']:.2f}: {label(s['design'])}")
    alternatives(ts)
    seeds(ts)
    s = score(ts, SHIPPED)
    print(f"\nshipped (lr_horizon): {s['in3']}/{n} within 3x, {s['in2']}/{n} within 2x, cost median "
          f"{s['median']:.2f} max {s['max']:.2f}: {label(SHIPPED)}\n  "
          f"{ceilings(ts, [replay(t, *SHIPPED)[0] for t in ts])}\n(one seed per miniature: designs "
          "a case or two apart are within noise of each other; judgement.py measures the shipped "
          "one with its own trials)")


if __name__ == "__main__":
    main()
