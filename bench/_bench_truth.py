"""Ground truth of the judgement bench: plain sweeps with the independent loop, cached.

For every case: the LR grid (a third of a decade apart, 11 LRs around the optimizer's usual
default, extended by two LRs at a time while the best is on an edge) x ``SEEDS``, each run to
the end of the case's budget by ``_plain_loop.train``; and the LR-free optimizers at their
documented defaults, each when installed. The best LR is the one with the best mean final
metric over the seeds (validation accuracy, or validation MSE for a regression); the
within-noise range is every LR whose mean lies within two pooled seed standard deviations of
the best (the difference of two 2-seed means has about that spread), with a floor of the
binomial standard error of the best accuracy (1 % relative for a regression).

Cached in ``bench/judgement_truth.json`` by case name with a fingerprint of the case, the
data arrays and the plain loop's source; ``--regenerate`` measures it again.

Not part of batchlab and not a test module.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import _bench_data
import _bench_models
import _plain_loop
import numpy as np
from _bench_space import Case

TRUTH = Path(__file__).resolve().parent / "judgement_truth.json"
#: cases per cache file: git here refuses files over 2 MiB, and 80 cases take 1.8 MB
PART = 80
SEEDS = (0, 1)
PER_DECADE = 3
GRID = range(-4, 7)  # base_lr * 10**(k/3): from base/21.5 to base*100
MAX_EXTEND = 4  # extensions of two LRs per side at most


def lr_at(case: Case, k: int) -> float:
    return float(f"{case.base_lr * 10 ** (k / PER_DECADE):.3g}")


def data_of(case: Case) -> _bench_data.BenchData:
    return _bench_data.load(case.data, case.variant, case.flat)


def fingerprint(case: Case) -> str:
    """What a case's ground truth depends on: its definition, its arrays and the versions of
    the plain loop and the models (bumped by hand when a change there changes numbers: a
    reformatting must not throw an hour of measurements away)."""
    d = data_of(case)
    h = hashlib.sha256(json.dumps([case.to_dict(), list(SEEDS), _plain_loop.VERSION,
                                   _bench_models.VERSION], sort_keys=True).encode())
    for a in (d.x_train, d.y_train, d.x_val, d.y_val):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- running


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _run(task: tuple[Case, str, float, int, bool]) -> dict[str, Any]:
    case, optimizer, lr, seed, keep_series = task
    schedule = case.schedule
    o = _plain_loop.train(data_of(case), case.family, optimizer, lr, case.batch_size, case.steps,
                          schedule, seed)
    out = {"lr": lr, "seed": seed, "optimizer": optimizer, "final": o.final, "val_loss": o.val_loss,
           "diverged": o.diverged, "seconds": round(o.seconds, 2)}
    if keep_series:
        out["series"] = o.series
    return out


def run_many(tasks: list[tuple[Case, str, float, int, bool]], jobs: int,
             done: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run plain-loop tasks on ``jobs`` processes of one thread each (in order of the tasks)."""
    if jobs <= 1:
        _init_worker()
        results = []
        for t in tasks:
            results.append(_run(t))
            if done:
                done(results[-1])
        return results
    with mp.get_context("fork").Pool(jobs, initializer=_init_worker) as pool:
        results = []
        for r in pool.imap(_run, tasks):
            results.append(r)
            if done:
                done(r)
        return results


def train_lrs(case: Case, lrs: Iterable[float], jobs: int, optimizer: str | None = None,
              series: bool = False) -> list[dict[str, Any]]:
    """Every LR of ``lrs`` x SEEDS with the plain loop."""
    return run_many([(case, optimizer or case.optimizer, lr, s, series) for lr in lrs for s in SEEDS], jobs)


# --------------------------------------------------------------------------- judging


def by_lr(runs: list[dict[str, Any]], regression: bool) -> dict[float, tuple[float, float]]:
    """LR -> (mean score over seeds as higher-is-better, seed std); a diverged seed: -inf."""
    out: dict[float, list[float]] = {}
    for r in runs:
        v = -math.inf if r["diverged"] or r["final"] is None or not math.isfinite(r["final"]) else (
            -r["final"] if regression else r["final"])
        out.setdefault(r["lr"], []).append(v)
    return {lr: (float(np.mean(v)) if all(math.isfinite(x) for x in v) else -math.inf,
                 float(np.std(v, ddof=1)) if len(v) > 1 and all(math.isfinite(x) for x in v) else 0.0)
            for lr, v in sorted(out.items())}


def noise(table: dict[float, tuple[float, float]], regression: bool, n_val: int) -> float:
    """Two pooled seed standard deviations over the five best LRs, floored (see module doc)."""
    finite = sorted((v for v in table.values() if math.isfinite(v[0])), reverse=True)[:5]
    if not finite:
        return 0.0
    pooled = math.sqrt(float(np.mean([s ** 2 for _, s in finite])))
    best = finite[0][0]
    floor = 0.01 * abs(best) if regression else math.sqrt(max(best * (1 - best), 1e-4) / n_val)
    return 2 * max(pooled, floor)


def summarise(case: Case, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Best LR, its score, the within-noise LR range and whether the best is on an edge."""
    d = data_of(case)
    table = by_lr(runs, d.regression)
    lrs = list(table)
    best = max(lrs, key=lambda lr: table[lr][0])
    tol = noise(table, d.regression, len(d.y_val))
    near = [lr for lr in lrs if table[lr][0] >= table[best][0] - tol]
    return {"best_lr": best, "best": table[best][0], "noise": tol, "range": [min(near), max(near)],
            "edge": best in (lrs[0], lrs[-1]), "scores": {str(k): v[0] for k, v in table.items()}}


def measure_case(case: Case, jobs: int) -> dict[str, Any]:
    """The grid (extended until the best is inside it) and the LR-free optimizers."""
    t0 = time.perf_counter()
    lo, hi = GRID.start, GRID.stop - 1
    runs = train_lrs(case, [lr_at(case, k) for k in range(lo, hi + 1)], jobs, series=True)
    for _ in range(MAX_EXTEND):
        s = summarise(case, runs)
        if not s["edge"]:
            break
        if s["best_lr"] == lr_at(case, lo):
            new = [lr_at(case, k) for k in (lo - 2, lo - 1)]
            lo -= 2
        else:
            new = [lr_at(case, k) for k in (hi + 1, hi + 2)]
            hi += 2
        runs += train_lrs(case, new, jobs, series=True)
    peers: dict[str, list[dict[str, Any]]] = {}
    for name, (package, lr, _) in _plain_loop.LR_FREE.items():
        if importlib.util.find_spec(package) is not None:
            peers[name] = train_lrs(case, [lr], jobs, optimizer=name)
    return {"fingerprint": fingerprint(case), "case": case.to_dict(), "seeds": list(SEEDS),
            "runs": runs, "peers": peers, "summary": summarise(case, runs),
            "seconds": round(time.perf_counter() - t0, 1)}


def pack_steps(steps: list[int]) -> dict[str, Any]:
    """A series' steps as ``{"range": [start, stop, every], "then": [...]}``: the plain loop
    logs every few steps, so the list is a range, then a last step or two (pure)."""
    n = 1
    every = steps[1] - steps[0] if len(steps) > 1 else 1
    while n < len(steps) and steps[n] - steps[n - 1] == every:
        n += 1
    return {"range": [steps[0], steps[n - 1] + every, every], "then": steps[n:]} if steps else {
        "range": [0, 0, 1], "then": []}


def unpack_steps(packed: dict[str, Any] | list[int]) -> list[int]:
    """The inverse of :func:`pack_steps` (a plain list, as files before it held, as is)."""
    if isinstance(packed, list):
        return packed
    return list(range(*packed["range"])) + packed["then"]


def _each_series(truth: dict[str, Any]) -> Any:
    for entry in truth.values():
        for run in entry.get("runs", []):
            yield from run.get("series", {}).values()


def part_path(part: int) -> Path:
    """The file holding cases ``PART * part`` to ``PART * (part + 1) - 1``: ``TRUTH`` for the
    first, ``judgement_truth_<part>.json`` beside it for the others."""
    return TRUTH if part == 0 else TRUTH.with_name(f"{TRUTH.stem}_{part}{TRUTH.suffix}")


def part_of(name: str) -> int:
    """Which file a case is kept in, from the index its name starts with ("80-sines-...": 1;
    a name without one: the first)."""
    head = name.split("-", 1)[0]
    return int(head) // PART if head.isdigit() else 0


def load_truth() -> dict[str, Any]:
    """Every cached case, from every part file, with each series' steps unpacked."""
    truth: dict[str, Any] = {}
    for path in (TRUTH, *sorted(TRUTH.parent.glob(f"{TRUTH.stem}_*{TRUTH.suffix}"))):
        if path.exists():
            truth.update(json.loads(path.read_text()))
    for series in _each_series(truth):
        series["step"] = unpack_steps(series["step"])
    return truth


def save_truth(truth: dict[str, Any]) -> None:
    """Write the cache: non-finite numbers as null, each series' steps packed (the steps were
    over a third of the file, which must stay a small text file in git), ``PART`` cases per
    file (``part_path``)."""
    def clean(v: Any) -> Any:
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    current = clean({k: v for k, v in truth.items() if "case" in v})  # the generated bench only
    for series in _each_series(current):
        series["step"] = pack_steps(series["step"])
    for part in sorted({part_of(name) for name in current}):
        cases = {k: v for k, v in current.items() if part_of(k) == part}
        part_path(part).write_text(json.dumps(cases, separators=(",", ":"), sort_keys=True))


def merge_truth(entries: dict[str, Any]) -> None:
    """Write ``entries`` into the cache file as it is now (another process may have added
    cases since this one read it)."""
    truth = load_truth()
    truth.update(entries)
    save_truth(truth)


def ground_truth(cases: list[Case], regenerate: bool, jobs: int) -> dict[str, Any]:
    """The cached truth of ``cases`` (by name); missing, changed or ``regenerate``d ones
    measured now."""
    truth = load_truth()
    for case in cases:
        if not regenerate and truth.get(case.name, {}).get("fingerprint") == fingerprint(case):
            continue
        entry = measure_case(case, jobs)
        truth[case.name] = entry
        merge_truth({case.name: entry})
        s = entry["summary"]
        print(f"  ground truth {case.name}: best lr {s['best_lr']:.3g} (range {s['range'][0]:.3g}-"
              f"{s['range'][1]:.3g}) in {entry['seconds']:.0f} s", flush=True)
    return {c.name: truth[c.name] for c in cases}


def restore_none(truth: dict[str, Any]) -> dict[str, Any]:
    """JSON's nulls back to NaN where numbers are expected (``final`` of a diverged run)."""
    for entry in truth.values():
        for r in entry["runs"] + [r for v in entry.get("peers", {}).values() for r in v]:
            for k in ("final", "val_loss"):
                if r.get(k) is None:
                    r[k] = math.nan
        entry["summary"]["scores"] = {k: (-math.inf if v is None else v)
                                      for k, v in entry["summary"]["scores"].items()}
    return truth
