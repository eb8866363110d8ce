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
designs under each median cost, then (``horizon_variants.py``) the changes to the shipped
design tried and not taken, and the same designs from a second seed of the miniatures at
``SEED_HORIZONS`` (another initialisation and batch order: how much a score owes to one draw).

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
from judgement import free_best, metric_lost, objects  # noqa: E402

CACHE = Path(__file__).resolve().parent / "horizon_designs.json"
HORIZONS = (1 / 30, 1 / 20, 1 / 15, 1 / 10, 1 / 6, 1 / 5, 1 / 4, 1 / 3)
#: the horizons also trained from a second seed, to see how much a score owes to one draw
SEED_HORIZONS = (1 / 20, 1 / 10, 1 / 6)
MIN_STEPS = 8
#: the design batchlab ships (``lr_horizon``): a decade ladder at a twentieth of the run, then
#: the best and 2/3 of a decade either side at a tenth, then a duel at a sixth where rung 1 drew
SHIPPED = ((-3, 0, 3, 6), 1 / 20, 1 / 10, (-2, 0, 2), 1 / 6)


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


def rival(rows: list[dict[str, Any] | None], pick: dict[str, Any], t: dict[str, Any],
          bands: float = 1.0) -> dict[str, Any] | None:
    """The kept row that rung 1 could not tell from ``pick``, as ``lr_horizon._rival`` finds it:
    within ``bands`` binomial standard errors of the top accuracy (the lowest loss of several),
    or for a regression within ``LOSS_TIE`` of the pick's loss; None when the pick won clearly."""
    from batchlab.probes.lr_horizon import LOSS_TIE

    others = [r for r in rows if _kept(r) and r is not pick]
    if t["regression"]:
        near = [r for r in others if r["val_loss"] <= pick["val_loss"] + LOSS_TIE * abs(pick["val_loss"])]
    else:
        top = max(r["val_acc"] for r in [pick, *others])
        se = math.sqrt(max(top * (1 - top), 1e-12) / t["n_val"])
        near = [r for r in others if r["val_acc"] >= top - bands * se]
    return min(near, key=lambda r: r["val_loss"], default=None)


def replay(t: dict[str, Any], span: Sequence[int], f0: float, f1: float | None,
           width: Sequence[int], duel: float | None = None, rank: Rank | None = None,
           duel_all: bool = False, bands: float = 1.0) -> tuple[float | None, float]:
    """The LR a design picks on case table ``t`` and what it cost (in runs): rung 0 over
    ``span`` at ``f0`` (grown a ladder step beyond an edge its best is on, twice at most),
    then the best's ``width`` neighbours at ``f1``, then (``duel``) its pick and the ``rival``
    within ``bands`` standard errors at ``duel`` (with ``duel_all``: the runner-up, every time)."""
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
    spent += cost(f1, len(second))
    if duel is None or pick not in second:
        return pick["lr"], spent
    other = (min((r for r in second if _kept(r) and r is not pick), key=lambda r: r["val_loss"],
                 default=None) if duel_all else rival(second, pick, t, bands))
    if other is None:
        return pick["lr"], spent
    pair = [r for r in (at.get((duel, _position(case, x["lr"]))) for x in (pick, other)) if r]
    return (rank(pair, t) or pick)["lr"], spent + cost(duel, len(pair))


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
    return {"lost": metric_lost(s["best"], score, t["regression"]),
            "in_noise": score >= s["best"] - s["noise"], "free": score >= t["free"] - s["noise"]}


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
    span, f0, f1, width, *duel = design
    then = f", then {list(width)} at 1/{round(1 / f1)}" if f1 else ""
    then += f", then a duel at 1/{round(1 / duel[0])} where that drew" if duel and duel[0] else ""
    return f"ladder {list(span)} at 1/{round(1 / f0)}{then}"


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
    from horizon_variants import alternatives, seeds

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
