"""How good is batchlab's advice on cases nobody tuned it on? The LR suggestion, `recommend`
and the diagnosis, scored against plain sweeps on a generated bench with a held-out half.

    python bench/judgement.py                  # ground truth from the cache, advice measured now
    python bench/judgement.py --half held-out  # only the half that counts
    python bench/judgement.py --regenerate     # measure the ground truth again (~1 h on 2 cores)
    python bench/judgement.py --cases 05-...,12-... --no-recommend --jobs 2
    python bench/judgement.py --probe-seed 1 --no-recommend --no-diagnosis  # another draw of the probes
    python bench/judgement.py --probe-budget 0.9 --no-recommend --no-diagnosis  # a costlier, surer probe

The cases (``_bench_space.py``) are drawn from a declared design space (model family x task x
data x optimizer x batch size x run length x schedule) and split into ``dev`` and
``held-out`` by a hash of their names. Ground truth (``_bench_truth.py``, cached in
``judgement_truth.json``): an independent plain PyTorch loop (``_plain_loop.py``) trains every
case over an LR grid a third of a decade apart x 2 seeds to the end of its budget, and the
LR-free optimizers (Prodigy, Schedule-Free AdamW/SGD, D-Adaptation Adam) at their documented
defaults.

Measured now, per case: batchlab's suggestion (``bl.lr_find`` on the case's model, arrays,
optimizer, batch size, run length and schedule, at its defaults) trained by the plain loop x 2
seeds; the peers' finders (torch-lr-finder, Lightning's tuner: cached with the truth, as they
do not depend on batchlab); ``bl.recommend`` from the user's base configuration, trained the
same way at the recommended batch size for the same number of examples; and the diagnosis of
every ground-truth run checked against the rules its numbers imply.
Tables for both halves, with PASS/FAIL against the targets of issue 20; the held-out table
is the one that counts. Everything trains on one thread per process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _bench_truth as truthlib  # noqa: E402
from _bench_peers import peer_finders  # noqa: E402
from _bench_space import FRESH, Case, draw  # noqa: E402
from _bench_truth import SEEDS, data_of, ground_truth, run_many  # noqa: E402

# the targets (held-out half)
GOAL_ANSWER = 1.0
GOAL_3X, GOAL_2X = 0.9, 0.75
GOAL_LOST_ACC = 0.005  # 0.5 accuracy points, mean over the classification cases
GOAL_LOST_REL = 0.05  # 5 % relative MSE, mean over the regression cases
GOAL_COST_MEDIAN, GOAL_COST_MAX = 0.5, 1.0  # of one run's steps
GOAL_VS_FREE = 0.8
GOAL_RECOMMEND = 0.9


# --------------------------------------------------------------------------- batchlab's side


BATCHLAB_OPTIMIZER = {"sgd": {"optimizer": "sgd", "momentum": 0.0},
                      "momentum": {"optimizer": "sgd", "momentum": 0.9},
                      "nesterov": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True},
                      "adam": {"optimizer": "adam"}, "adamw": {"optimizer": "adamw", "weight_decay": 0.01},
                      "rmsprop": {"optimizer": "rmsprop", "momentum": 0.0},
                      "adagrad": {"optimizer": "adagrad"}}


def batchlab_schedule(case: Case) -> dict[str, Any]:
    """The case's schedule (``_plain_loop.lr_factor``) as a batchlab ScheduleSpec."""
    if case.schedule == "step":
        return {"name": "multistep", "unit": "step", "gamma": 0.1,
                "milestones": [case.steps // 2, 3 * case.steps // 4]}
    if case.schedule == "cosine":
        return {"name": "cosine", "warmup": max(1, case.steps // 20), "warmup_unit": "step"}
    return {"name": "constant"}


def _optimizer(case: Case) -> dict[str, Any]:
    """batchlab's optimizer fields for the case (a factory where batchlab has no name)."""
    from typing import get_args

    from batchlab.spec import OptimizerName

    fields = dict(BATCHLAB_OPTIMIZER[case.optimizer])
    if fields["optimizer"] not in get_args(OptimizerName):
        from _plain_loop import make_optimizer

        fields["optimizer"] = lambda params, lr: make_optimizer(case.optimizer, params, lr)
    return fields


def objects(case: Case) -> dict[str, Any]:
    """The keywords of ``bl.lr_find`` / ``bl.recommend`` for ``case``: the user's objects."""
    import _bench_models
    import torch.nn.functional as F

    d = data_of(case)
    outputs = 1 if d.regression else d.classes

    def model() -> Any:
        return _bench_models.build(case.family, d.input_shape, outputs)

    def mse(out: Any, y: Any) -> Any:
        return F.mse_loss(out.squeeze(-1), y)

    return {"model": model, "train": (d.x_train, d.y_train), "val": (d.x_val, d.y_val),
            "loss": mse if d.regression else None, "batch_size": case.batch_size, "steps": case.steps,
            "schedule": batchlab_schedule(case), "device": "cpu", "threads": 1,
            **_optimizer(case)}


def batchlab_suggestion(case: Case, strategy: str | None = None, seed: int | None = None,
                        budget: float | None = None) -> dict[str, Any]:
    """``bl.lr_find`` on the case at its defaults (``strategy``: another of its strategies;
    ``seed``: the probe's own seed, for its models' initialisation and batch order, in place of
    the default ``train.seed``; ``budget``: the default strategy's share of the run)."""
    import batchlab as bl

    extra: dict[str, Any] = {} if seed is None else {"seed": seed}
    if budget is not None and strategy is None:  # the other strategies take no budget
        extra["budget"] = budget
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        r = bl.lr_find(**objects(case), strategy=strategy, **extra)
    b = r.per_batch[0]
    return {"lr": r.suggested_lr, "cost_steps": b.cost_steps, "confidence": b.confidence,
            "reason": r.reason, "seconds": time.perf_counter() - t0}


# --------------------------------------------------------------------------- scoring


def chance(case: Case) -> float | None:
    """The accuracy of guessing (the better of 1.5/classes and the validation set's majority
    class), or None for a regression."""
    d = data_of(case)
    if d.regression:
        return None
    return max(1.5 / d.classes, float(np.bincount(d.y_val).max()) / len(d.y_val))


def outcome_score(case: Case, runs: list[dict[str, Any]]) -> tuple[float, bool]:
    """(mean score over the seeds as higher-is-better, failed: diverged or at chance / no
    better than predicting the mean)."""
    d = data_of(case)
    table = truthlib.by_lr(runs, d.regression)
    score = next(iter(table.values()))[0]
    if not math.isfinite(score):
        return score, True
    at_chance = (-score >= 0.95 * float(np.var(d.y_val))) if d.regression else score <= chance(case)
    return score, at_chance


def metric_lost(best: float, score: float, regression: bool) -> float:
    """What a run scoring ``score`` lost against the grid's ``best``: accuracy points, or the
    MSE's relative rise for a regression (scores are minus the MSE there)."""
    return (best - score) / abs(best) if regression else best - score


def judge_lr(case: Case, entry: dict[str, Any], lr: float | None, runs: list[dict[str, Any]],
             cost_steps: float) -> dict[str, Any]:
    """How far ``lr`` lands from the grid's best, what it loses there, what it cost."""
    s = entry["summary"]
    regression = data_of(case).regression
    out: dict[str, Any] = {"lr": lr, "best_lr": s["best_lr"], "cost": cost_steps / case.steps}
    if not lr:
        return {**out, "answered": False, "failed": True, "within3": False, "within2": False,
                "lost": math.inf, "score": -math.inf}
    score, failed = outcome_score(case, runs)
    ratio = lr / s["best_lr"]
    far = max(ratio, 1 / ratio)
    inside = s["range"][0] / 1.01 <= lr <= s["range"][1] * 1.01
    lost = metric_lost(s["best"], score, regression)
    return {**out, "answered": True, "ratio": ratio, "inside": inside, "within3": far <= 3 or inside,
            "within2": far <= 2 or inside, "failed": failed, "score": score, "lost": lost}


def free_best(case: Case, entry: dict[str, Any]) -> tuple[str | None, float]:
    """The best LR-free optimizer on the case and its score (-inf when none was measured)."""
    regression = data_of(case).regression
    best, name = -math.inf, None
    for peer, runs in entry.get("peers", {}).items():
        score = truthlib.by_lr(runs, regression)
        v = next(iter(score.values()))[0]
        if v > best:
            best, name = v, peer
    return name, best


def fmt(v: Any, spec: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec)


def print_suggestions(title: str, rows: list[dict[str, Any]]) -> bool:
    """The per-case table and the summary with PASS/FAIL for one half; True when all pass."""
    print(f"\n== LR suggestion, {title}: {len(rows)} cases (mean of {len(SEEDS)} seeds, plain loop)")
    head = (f"{'case':58} {'who':16} {'lr':>8} {'best':>8} {'ratio':>6} {'in':>3} {'score':>7} "
            f"{'best':>7} {'fail':>4} {'cost':>5}")
    print(head)
    print("-" * len(head))
    for r in rows:
        for who, j in r["judged"].items():
            print(f"{r['case']:58} {who:16} {fmt(j['lr']):>8} {fmt(j['best_lr']):>8} "
                  f"{fmt(j.get('ratio'), '.2f'):>6} {'yes' if j.get('inside') else 'no':>3} "
                  f"{fmt(j.get('score'), '.3f'):>7} {r['best']:7.3f} {'yes' if j['failed'] else 'no':>4} "
                  f"{fmt(j['cost'], '.2f'):>5}")
        free_name, free_score = r["free"]
        if free_name:
            print(f"{'':58} {'best LR-free':16} {free_name:>8} {'':8} {'':6} {'':3} {free_score:7.3f}")
    print("(score: val acc, or minus val MSE for a regression; in: inside the grid's within-noise range; "
          "cost: the probe's steps / the run's)")
    whos = list(dict.fromkeys(w for r in rows for w in r["judged"]))
    print(f"\n{'who':16} {'answer':>6} {'in 3x':>6} {'in 2x':>6} {'failed':>6} {'lost acc':>8} "
          f"{'lost mse':>8} {'cost med':>8} {'cost max':>8} {'>= free':>7}")
    ok_all = True
    for who in whos:
        js = [(r, r["judged"][who]) for r in rows if who in r["judged"]]
        n = len(js)
        answer = sum(j["answered"] for _, j in js) / n
        w3 = sum(j["within3"] for _, j in js) / n
        w2 = sum(j["within2"] for _, j in js) / n
        fails = sum(j["failed"] and j["answered"] for _, j in js)
        acc = [j["lost"] for r, j in js if not r["regression"]]
        mse = [j["lost"] for r, j in js if r["regression"]]
        lost_acc = float(np.mean(acc)) if acc else 0.0
        lost_mse = float(np.mean(mse)) if mse else 0.0
        costs = [j["cost"] for _, j in js]
        vs_free = [j["score"] >= r["free"][1] - r["noise"] for r, j in js if r["free"][0]]
        free_share = sum(vs_free) / len(vs_free) if vs_free else math.nan
        print(f"{who:16} {answer:6.0%} {w3:6.0%} {w2:6.0%} {fails:6d} {lost_acc:8.3f} {lost_mse:8.1%} "
              f"{np.median(costs):8.2f} {max(costs):8.2f} {fmt(free_share, '.0%'):>7}")
        if who == "batchlab":
            checks = {
                f"an answer on every case ({answer:.0%})": answer >= GOAL_ANSWER,
                f"no suggestion that diverges or ends at chance ({fails})": fails == 0,
                f"within 3x or in range >= {GOAL_3X:.0%} ({w3:.0%})": w3 >= GOAL_3X,
                f"within 2x or in range >= {GOAL_2X:.0%} ({w2:.0%})": w2 >= GOAL_2X,
                f"mean accuracy lost <= {100 * GOAL_LOST_ACC:.1f} points ({100 * lost_acc:.2f})":
                    lost_acc <= GOAL_LOST_ACC,
                f"mean MSE lost <= {GOAL_LOST_REL:.0%} relative ({lost_mse:.1%})": lost_mse <= GOAL_LOST_REL,
                f"probe cost median <= {GOAL_COST_MEDIAN} run ({np.median(costs):.2f})":
                    np.median(costs) <= GOAL_COST_MEDIAN,
                f"probe cost max <= {GOAL_COST_MAX} run ({max(costs):.2f})": max(costs) <= GOAL_COST_MAX,
                f">= the best LR-free optimizer (within noise) on >= {GOAL_VS_FREE:.0%} "
                f"({fmt(free_share, '.0%')})": not vs_free or free_share >= GOAL_VS_FREE,
            }
    with_free = [r for r in rows if r["free"][0]]
    if with_free:
        # what a perfect suggestion would reach: the grid's own best against the LR-free peers
        ceiling = sum(r["best"] >= r["free"][1] - r["noise"] for r in with_free) / len(with_free)
        print(f"(the grid's own best LR, a perfect suggestion, is >= the best LR-free optimizer "
              f"on {ceiling:.0%} of these cases)")
    print(f"\nbatchlab's default suggestion, {title}:")
    for text, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")
        ok_all &= ok
    return ok_all


# --------------------------------------------------------------------------- recommend


def judge_recommend(case: Case, entry: dict[str, Any], jobs: int) -> dict[str, Any]:
    """``bl.recommend`` from the base configuration, trained by the plain loop at the
    recommended batch size for the case's number of examples; against the grid's best and the
    base LR at the user's batch size."""
    import batchlab as bl
    from batchlab.probes.validate import against_base

    d = data_of(case)
    sizes = [b for b in (16, 32, 64, 128, 256, 512) if b <= len(d.y_train) // 8] or [case.batch_size]
    kw = objects(case)
    kw.pop("batch_size")
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rec = bl.recommend(**kw, batch_size=case.batch_size, batch_sizes=sizes)
    seconds = time.perf_counter() - t0
    b, lr = rec.batch_size, float(f"{rec.lr:.3g}")
    steps = max(1, round(case.steps * case.batch_size / b))
    moved = Case(case.name, case.data, case.variant, case.family, case.optimizer, b, steps, case.schedule)
    runs = run_many([(moved, case.optimizer, lr, s, False) for s in SEEDS], jobs)
    score, failed = outcome_score(moved, runs)
    s = entry["summary"]
    base = s["scores"].get(str(truthlib.lr_at(case, 0)), -math.inf)
    # a regression is compared on its loss (the MSE, lower is better), as --validate does
    as_metric = (lambda v: -v) if d.regression else (lambda v: v)
    flagged, line = against_base((b, lr), as_metric(score), (case.batch_size, case.base_lr),
                                 as_metric(base), loss=d.regression)
    worse_than_base = not score >= base - s["noise"]  # a NaN score (diverged) is worse too
    return {"case": case.name, "batch": b, "lr": lr, "score": score, "best": s["best"], "base": base,
            "ok": score >= s["best"] - s["noise"], "failed": failed, "worse": worse_than_base,
            "said": flagged, "seconds": seconds}


def print_recommend(title: str, rows: list[dict[str, Any]]) -> bool:
    print(f"\n== recommend, {title}: from the base configuration, vs the grid at the user's batch size")
    head = f"{'case':58} {'batch':>5} {'lr':>8} {'score':>7} {'best':>7} {'base':>7} {'ok':>3} {'said':>4}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['case']:58} {r['batch']:5d} {r['lr']:8.3g} {fmt(r['score'], '.3f'):>7} {r['best']:7.3f} "
              f"{fmt(r['base'], '.3f'):>7} {'yes' if r['ok'] else 'no':>3} "
              f"{('yes' if r['said'] else 'NO') if r['worse'] else '-':>4}")
    share = sum(r["ok"] for r in rows) / max(1, len(rows))
    silent = sum(r["worse"] and not r["said"] for r in rows)
    ok = share >= GOAL_RECOMMEND and silent == 0
    print(f"  {'PASS' if share >= GOAL_RECOMMEND else 'FAIL'}  within noise of the grid's best at the user's "
          f"batch on >= {GOAL_RECOMMEND:.0%} ({share:.0%})")
    print(f"  {'PASS' if silent == 0 else 'FAIL'}  never worse than the base without saying so "
          f"({silent} silent)")
    return ok


# --------------------------------------------------------------------------- main


def judge_case(case: Case, entry: dict[str, Any], jobs: int, seed: int | None = None,
               budget: float | None = None) -> dict[str, Any]:
    d = data_of(case)
    judged = {}
    for who, strategy in (("batchlab", None), ("trial (0.2)", "trial")):
        mine = batchlab_suggestion(case, strategy, seed, budget)
        runs = truthlib.train_lrs(case, [mine["lr"]], jobs) if mine["lr"] else []
        judged[who] = {**judge_lr(case, entry, mine["lr"], runs, mine["cost_steps"]),
                       "confidence": mine["confidence"], "seconds": mine["seconds"]}
    for name, f in peer_finders(case, entry, jobs).items():
        judged[name] = judge_lr(case, entry, f["lr"], f["runs"], f["cost_steps"])
    s = entry["summary"]
    return {"case": case.name, "half": case.half, "regression": d.regression, "best": s["best"],
            "noise": s["noise"], "free": free_best(case, entry), "judged": judged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="measure the cached ground truth again")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--half", choices=("dev", "held-out", "both"), default="both")
    parser.add_argument("--no-suggestion", action="store_true", help="skip the LR suggestion part")
    parser.add_argument("--no-recommend", action="store_true", help="skip the recommend part")
    parser.add_argument("--no-diagnosis", action="store_true", help="skip the diagnosis part")
    parser.add_argument("--jobs", type=int, default=2, help="plain-loop processes (one thread each)")
    parser.add_argument("--probe-seed", type=int, default=None,
                        help="the seed of batchlab's own suggestion probes (default: train.seed's "
                             "default); another seed shows how much the scores owe to one draw")
    parser.add_argument("--probe-budget", type=float, default=None,
                        help="the default suggestion's share of the run (lr_find's budget; "
                             "default 0.5)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    drawn = draw()
    fresh = {c.name for c in drawn[FRESH:]}
    cases = drawn
    if args.cases:
        wanted = set(args.cases.split(","))
        unknown = wanted - {c.name for c in cases}
        if unknown:
            sys.exit(f"unknown cases: {', '.join(sorted(unknown))}; "
                     "python bench/_bench_space.py lists them")
        cases = [c for c in cases if c.name in wanted]
    if args.half != "both":
        cases = [c for c in cases if c.half == args.half]
    print(f"judgement bench: {len(cases)} cases ({sum(c.half == 'dev' for c in cases)} dev, "
          f"{sum(c.half == 'held-out' for c in cases)} held-out)", flush=True)
    truth = truthlib.restore_none(ground_truth(cases, args.regenerate, args.jobs))
    results = []
    for case in [] if args.no_suggestion else cases:
        results.append(judge_case(case, truth[case.name], args.jobs, args.probe_seed,
                                  args.probe_budget))
        j = results[-1]["judged"]["batchlab"]
        print(f"  suggestion measured: {case.name}: lr {fmt(j['lr'])} (best {fmt(j['best_lr'])}), "
              f"cost {j['cost']:.2f} run, {j['seconds']:.0f} s", flush=True)
    truthlib.merge_truth({c.name: truth[c.name] for c in cases})  # the finders' results
    recs = []
    if not args.no_recommend:
        for case in cases:
            recs.append({**judge_recommend(case, truth[case.name], args.jobs), "half": case.half})
            print(f"  recommend measured: {case.name}", flush=True)
    passed = {}
    for half in ("dev", "held-out", "fresh"):
        if half == "fresh":  # the held-out cases drawn after the older ones had been seen
            names = {c.name for c in cases if c.half == "held-out" and c.name in fresh}
            title = f"held-out, fresh cases only (drawn from index {FRESH} on, unseen until measured)"
        else:
            names = {c.name for c in cases if c.half == half}
            title = half + (" (the half that counts)" if half == "held-out" else " (rules developed here)")
        if not names:
            continue
        passed[half] = True
        if results:
            passed[half] &= print_suggestions(title, [r for r in results if r["case"] in names])
        if recs:
            passed[half] &= print_recommend(title, [r for r in recs if r["case"] in names])
    diagnosis_ok = True  # checked over every case measured: it counts in each half's verdict
    if not args.no_diagnosis:
        from _bench_diagnosis import judge_diagnosis, print_diagnosis

        diagnosis_ok = print_diagnosis([judge_diagnosis(c, truth[c.name]) for c in cases])
    partial = (" (of the parts measured)"
               if args.no_suggestion or args.no_recommend or args.no_diagnosis else "")
    for half in ("held-out", "fresh"):
        verdict = (("PASS" + partial) if passed.get(half) and diagnosis_ok
                   else "FAIL" if half in passed else "not run")
        print(f"\n{half if half == 'held-out' else 'held-out, fresh cases'}: {verdict}")


if __name__ == "__main__":
    main()
