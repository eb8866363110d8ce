"""How good is batchlab's advice? LR suggestions, `recommend` and the diagnosis, scored against
ground truth from plain sweeps on varied cases.

    python bench/judgement.py                  # ground truth from the cache, advice measured now
    python bench/judgement.py --regenerate     # re-measure the ground truth too (~10 min, 1 core)
    python bench/judgement.py --cases digits-mlp-sgd-b64,cancer-mlp-sgd-b32 --no-recommend

Ground truth (cached in bench/judgement_truth.json): for every case of
``_judgement_cases.py``, a plain sweep of the case's LR grid (a third of a decade apart) x 2
seeds at the case's fixed budget, run by batchlab's own sweep into a store. The grid's best LR
is the one with the highest validation accuracy at the end (mean over seeds; ties broken by
validation loss).

Then, measured in this run:
- LR suggestion: ``lr_find`` at the case's batch size (default settings) gives every strategy's
  LR (and torch-lr-finder's and Lightning's tuner's, each when installed); each distinct
  suggestion is trained like the grid (same budget, 2 seeds). Reported: the ratio to the
  grid's best LR, validation accuracy at the suggestion vs at the best, whether
  training collapsed or diverged there, and the probe's cost in epochs. Targets for the default
  strategy: within 3x of the best in >= 90% of cases, within 2x in >= 70%, never a collapse.
- recommend: from the user's base configuration (the case at its ``base_lr``), the recommended
  (batch, LR) is trained like the grid and compared with the base and the grid's best:
  predicted vs measured time to target (the target: 95% of the grid's best accuracy).
- diagnosis: every ground-truth run is diagnosed as one experiment per case, and the labels are
  checked against rules implied by the run's own numbers (``judgement_rules.check_diagnosis``).

Everything runs on one thread. Not a test: a measurement, printed as tables.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _judgement_cases import Case, cases, threads_pinned  # noqa: E402

from batchlab.analysis.diagnose import DIAGNOSIS_METRICS  # noqa: E402
from batchlab.analysis.experiment import analyze_runs  # noqa: E402
from batchlab.execute.inline import InlineExecutor  # noqa: E402
from batchlab.execute.sweep import run_sweep  # noqa: E402
from batchlab.jsonsafe import json_safe  # noqa: E402
from batchlab.probes.lr_range import DEFAULT_STRATEGY, LR_STRATEGIES, lr_find  # noqa: E402
from batchlab.probes.suggest import DEFAULT_CURVE_STRATEGY  # noqa: E402
from batchlab.probes.validate import against_base  # noqa: E402
from batchlab.spec import RunConfig, spec_from_dict  # noqa: E402
from batchlab.store import RunRecord, Series, Store  # noqa: E402

TRUTH = HERE / "judgement_truth.json"
SEEDS = (0, 1)  # train.seed 0 with 2 repeats
TARGET_FRACTION = 0.95  # time to target: 95% of the grid's best accuracy
RATIO_3X, RATIO_2X = 3.0, 2.0
GOAL_3X, GOAL_2X = 0.9, 0.7


# --------------------------------------------------------------------------- training


def spec_for(case: Case, name: str, points: list[dict[str, Any]], **train: Any) -> Any:
    """A sweep spec of ``case`` over explicit points x the benchmark's seeds."""
    return spec_from_dict({
        "name": name, "data": case.data, "model": case.model,
        "train": {**case.train, "lr": case.base_lr, "device": "cpu", "threads": 1,
                  "checkpoint": False, **train},
        # prune off: the ground truth is every run trained to its end
        "sweep": {"points": points, "repeats": len(SEEDS), "prune": "off"}})


def base_config(case: Case) -> RunConfig:
    spec = spec_for(case, "base", [{}])
    return RunConfig(data=spec.data, model=spec.model, train=spec.train)


def sweep_rows(store: Store, spec: Any) -> list[dict[str, Any]]:
    """Train ``spec`` (runs already in the store are reused) and return one row per run:
    its point, status, final numbers and every series the diagnosis reads."""
    run_sweep(spec, store, InlineExecutor(threads=1))
    rows = []
    for r in store.runs(spec.name):
        t = r.config["train"]
        series = store.metrics(r.id, DIAGNOSIS_METRICS)
        rows.append({
            "lr": t["lr"], "batch_size": t["batch_size"], "seed": t["seed"], "status": r.status,
            "final_val_acc": r.summary.get("final_val_acc"),
            "final_val_loss": r.summary.get("final_val_loss"),
            "summary": r.summary, "config": r.config,
            "series": {k: {f: np.round(getattr(v, f), 6).tolist() for f in
                           ("step", "value", "epoch", "examples", "wall_time")}
                       for k, v in series.items()}})
    return rows


def mean_at(rows: list[dict[str, Any]], key: str = "final_val_acc") -> dict[tuple[int, float], float]:
    """Mean of ``key`` over seeds per (batch size, lr); NaN for runs without it (diverged)."""
    out: dict[tuple[int, float], list[float]] = {}
    for r in rows:
        v = r[key]
        out.setdefault((r["batch_size"], r["lr"]), []).append(math.nan if v is None else float(v))
    return {k: float(np.mean(v)) for k, v in out.items()}


def failed(rows: list[dict[str, Any]], classes: int) -> bool:
    """Did any run collapse (final val acc <= 1.5 / classes) or diverge?"""
    return any(r["status"] == "diverged" or r["final_val_acc"] is None
               or r["final_val_acc"] <= 1.5 / classes for r in rows)


def grid_best(rows: list[dict[str, Any]]) -> tuple[float, float, bool]:
    """(best lr, its mean val acc, whether it lies on the grid's edge)."""
    acc, loss = mean_at(rows), mean_at(rows, "final_val_loss")
    keys = sorted(acc)
    best = max(keys, key=lambda k: (np.nan_to_num(acc[k], nan=-1), -np.nan_to_num(loss[k], nan=np.inf)))
    return best[1], acc[best], best in (keys[0], keys[-1])


# --------------------------------------------------------------------------- ground truth


def fingerprint(case: Case) -> str:
    """What a case's ground truth depends on: its definition and the exact tensors batchlab
    loads for it (so a change to a data pipeline, e.g. normalisation, invalidates the cache)."""
    data = dataset(base_config(case))
    h = hashlib.sha256(json.dumps([case.name, case.model, case.train, case.lrs(), list(SEEDS)],
                                  sort_keys=True).encode())
    for t in (data.train_x, data.train_y, data.val_x, data.val_y):
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def ground_truth(all_cases: list[Case], names: set[str], regenerate: bool, work: Path) -> dict[str, Any]:
    """The cached ground truth; cases that are missing, asked for again or whose fingerprint
    changed are measured now (and the cache file rewritten)."""
    truth = json.loads(TRUTH.read_text()) if TRUTH.exists() else {}
    prints = {c.name: fingerprint(c) for c in all_cases if c.name in names}
    todo = [c for c in all_cases if c.name in names
            and (regenerate or truth.get(c.name, {}).get("fingerprint") != prints[c.name])]
    for case in todo:
        if case.name in truth and not regenerate:
            print(f"  {case.name}: its data or definition changed since the cached ground truth", flush=True)
        t0 = time.perf_counter()
        points = [{"train.lr": lr} for lr in case.lrs()]
        with Store(work / "truth.db") as store:
            rows = sweep_rows(store, spec_for(case, f"truth-{case.name}", points))
        truth[case.name] = {"fingerprint": prints[case.name], "grid": case.lrs(), "seeds": list(SEEDS),
                            "train": case.train, "runs": rows}
        print(f"  ground truth {case.name}: {len(rows)} runs in {time.perf_counter() - t0:.0f} s", flush=True)
        TRUTH.write_text(json.dumps(json_safe(truth), separators=(",", ":"), allow_nan=False))
    return truth


# --------------------------------------------------------------------------- LR suggestions


def judge_suggestions(case: Case, truth: dict[str, Any], store: Store) -> list[dict[str, Any]]:
    config = base_config(case)
    # each strategy at its own defaults: the trial with its one range test, the curve rules on
    # the median of their three (one lr_find gives every curve rule on the same curves)
    trial = lr_find(config).per_batch[0]
    curves = lr_find(config, strategy=DEFAULT_CURVE_STRATEGY).per_batch[0]
    classes = n_classes(config)
    best_lr, best_acc, edge = grid_best(truth["runs"])
    suggested = {s: (trial if s == DEFAULT_STRATEGY else curves).by_strategy.get(s) for s in LR_STRATEGIES}
    cost = {s: (trial if s == DEFAULT_STRATEGY else curves).cost_epochs for s in LR_STRATEGIES}
    for name, peer in peer_suggestions(config).items():
        suggested[name], cost[name] = peer
    lrs = sorted({float(f"{v:.3g}") for v in suggested.values() if v})
    rows = sweep_rows(store, spec_for(case, f"suggest-{case.name}", [{"train.lr": lr} for lr in lrs])) \
        if lrs else []
    out = []
    for strategy, lr in suggested.items():
        entry: dict[str, Any] = {"case": case.name, "strategy": strategy, "lr": lr, "best_lr": best_lr,
                                 "best_acc": best_acc, "edge": edge, "cost_epochs": cost[strategy]}
        if lr:
            mine = [r for r in rows if r["lr"] == float(f"{lr:.3g}")]
            entry.update(ratio=lr / best_lr, acc=float(np.mean([r["final_val_acc"] or 0 for r in mine])),
                         failed=failed(mine, classes))
        out.append(entry)
    return out


def peer_suggestions(config: RunConfig) -> dict[str, tuple[float | None, float]]:
    """The peers' suggestions on the same model, data and optimizer, each when installed:
    ``{name: (lr, cost in epochs)}``, at their defaults."""
    return {**torch_lr_finder_suggestion(config), **lightning_suggestion(config)}


def lightning_suggestion(config: RunConfig) -> dict[str, tuple[float | None, float]]:
    """Lightning's ``Tuner.lr_find`` (defaults: 100 steps from 1e-8 to 1, exponential)."""
    try:
        import lightning as L
        from lightning.pytorch.tuner import Tuner
    except ImportError:
        return {}
    import logging

    import torch

    from batchlab.probes.common import fresh_setup
    from batchlab.train.optim import build_optimizer

    setup = fresh_setup(config)
    t = config.train

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.lr = setup.model, 1e-3

        def training_step(self, batch: Any, _: int) -> torch.Tensor:
            x, y = batch
            return torch.nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return build_optimizer(t, self.parameters(), self.lr)

    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(setup.train_x, setup.train_y),
                                         batch_size=t.batch_size, shuffle=True, drop_last=True)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, max_epochs=1000)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = Tuner(trainer).lr_find(Module(), train_dataloaders=loader)
    lr = result.suggestion() if result is not None else None
    steps = len(result.results["lr"]) if result is not None else 0
    return {"lightning": (lr, steps * t.batch_size / len(setup.train_y))}


def torch_lr_finder_suggestion(config: RunConfig) -> dict[str, tuple[float | None, float]]:
    """torch-lr-finder's suggestion (defaults: 100 iterations up to lr 10, exponential)."""
    try:
        from torch_lr_finder import LRFinder
    except ImportError:
        return {}
    import torch
    from matplotlib.figure import Figure

    from batchlab.probes.common import fresh_setup

    setup = fresh_setup(config)
    t = config.train
    opt = setup.make_optimizer(1e-7)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(setup.train_x, setup.train_y),
                                         batch_size=t.batch_size, shuffle=True, drop_last=True)
    finder = LRFinder(setup.model, opt, torch.nn.CrossEntropyLoss(), device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, end_lr=10, num_iter=100)  # its progress bar and prints
        try:
            _, lr = finder.plot(ax=Figure().add_subplot(), suggest_lr=True)
        except Exception:  # it raises when the curve is too short to suggest anything
            lr = None
    steps = len(finder.history["lr"])
    return {"torch-lr-finder": (lr, steps * t.batch_size / len(setup.train_y))}


_DATASETS: dict[str, Any] = {}


def dataset(config: RunConfig) -> Any:
    """The case's data, loaded once per data spec (the fingerprint, the suggestion and the
    recommend parts all need it)."""
    from batchlab.data import load_dataset

    key = config.data.model_dump_json()
    if key not in _DATASETS:
        _DATASETS[key] = load_dataset(config.data)
    return _DATASETS[key]


def n_train(config: RunConfig) -> int:
    return len(dataset(config).train_y)


def n_classes(config: RunConfig) -> int:
    return dataset(config).num_classes


def print_suggestions(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    print("\nLR suggestion vs the grid's best (val acc: mean of 2 seeds at the case's budget)")
    head = f"{'case':26} {'strategy':15} {'suggested':>9} {'best':>8} {'ratio':>7} " \
           f"{'acc@sugg':>8} {'acc@best':>8} {'fails':>5} {'cost ep':>7}"
    print(head)
    print("-" * len(head))
    for e in results:
        ratio = e.get("ratio")
        mark = "*" if e["edge"] else " "
        name = e["strategy"] + (" (default)" if e["strategy"] == DEFAULT_STRATEGY else "")
        shown = fmt(ratio, ".2f") + "x" if ratio else "-"
        print(f"{e['case']:26} {name:15} {fmt(e['lr']):>9} {fmt(e['best_lr']):>7}{mark} {shown:>7} "
              f"{fmt(e.get('acc'), '.3f'):>8} {e['best_acc']:8.3f} "
              f"{('yes' if e.get('failed') else 'no') if ratio else '-':>5} {e['cost_epochs']:7.1f}")
    print("(* the grid's best LR is on the grid's edge)")
    for peer, package in (("torch-lr-finder", "torch-lr-finder"), ("lightning", "lightning")):
        if not any(e["strategy"] == peer for e in results):
            print(f"({peer} is not installed: pip install {package} to measure it here too)")
    summary: dict[str, dict[str, float]] = {}
    print(f"\n{'strategy':15} {'within 3x':>10} {'within 2x':>10} {'failed':>7} {'acc lost (mean)':>16} "
          f"{'cost ep (mean)':>15}")
    for s in dict.fromkeys(e["strategy"] for e in results):
        mine = [e for e in results if e["strategy"] == s]
        n = len(mine)
        def far(e: dict[str, Any]) -> float:
            return max(e["ratio"], 1 / e["ratio"]) if e.get("ratio") else math.inf
        w3 = sum(far(e) <= RATIO_3X for e in mine) / n
        w2 = sum(far(e) <= RATIO_2X for e in mine) / n
        fails = sum(bool(e.get("failed")) or not e.get("ratio") for e in mine)
        lost = float(np.mean([e["best_acc"] - e.get("acc", 0.0) for e in mine]))
        cost = float(np.mean([e["cost_epochs"] for e in mine]))
        summary[s] = {"within_3x": w3, "within_2x": w2, "failed": fails, "acc_lost": lost, "cost": cost}
        print(f"{s:15} {w3:10.0%} {w2:10.0%} {fails:7d} {lost:16.3f} {cost:15.1f}")
    d = summary[DEFAULT_STRATEGY]
    ok = d["within_3x"] >= GOAL_3X and d["within_2x"] >= GOAL_2X and d["failed"] == 0
    print(f"default '{DEFAULT_STRATEGY}': within 3x {d['within_3x']:.0%} (goal >= {GOAL_3X:.0%}), within 2x "
          f"{d['within_2x']:.0%} (goal >= {GOAL_2X:.0%}), collapsed/diverged {d['failed']:.0f} (goal 0): "
          + ("PASS" if ok else "FAIL"))
    return summary


def fmt(v: float | None, spec: str = ".3g") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


# --------------------------------------------------------------------------- recommend


def judge_recommend(case: Case, truth: dict[str, Any], store: Store) -> dict[str, Any]:
    """Recommend from the user's base config; train the recommendation, the base and the grid's
    best alike; compare accuracy and time to target (95% of the grid's best)."""
    from batchlab.probes.recommend import recommend

    config = base_config(case)
    n = n_train(config)
    sizes = [b for b in (16, 32, 64, 128, 256) if b <= n // 2]
    t0 = time.perf_counter()
    rec = recommend(config, batch_sizes=sizes)
    probe_s = time.perf_counter() - t0
    best_lr, best_acc, _ = grid_best(truth["runs"])
    b0 = case.train["batch_size"]
    points = {"recommended": (rec.batch_size, float(f"{rec.lr:.3g}")), "base": (b0, case.base_lr),
              "grid best": (b0, best_lr)}
    rows = sweep_rows(store, spec_for(case, f"recommend-{case.name}", [
        {"train.batch_size": b, "train.lr": lr} for b, lr in dict.fromkeys(points.values())]))
    target = TARGET_FRACTION * best_acc
    pred = {p.batch_size: p.relative_time for p in rec.predictions}
    out: dict[str, Any] = {"case": case.name, "probe_s": probe_s, "target": target}
    for label, (b, lr) in points.items():
        mine = [r for r in rows if r["batch_size"] == b and r["lr"] == lr]
        out[label] = {"batch_size": b, "lr": lr,
                      "acc": float(np.mean([r["final_val_acc"] or 0 for r in mine])),
                      "seconds": mean_to(mine, target, "wall_time"),
                      "examples": mean_to(mine, target, "examples"),
                      "predicted_rel": pred.get(b)}
    return out


def mean_to(rows: list[dict[str, Any]], target: float, clock: str) -> float | None:
    """Mean over the runs of ``clock`` (wall_time, examples) at the first evaluation whose
    validation accuracy reached ``target``; None when a run never reached it."""
    hits = []
    for row in rows:
        s = row["series"].get("val_acc") or {"value": [], clock: []}
        hit = [w for v, w in zip(s["value"], s[clock], strict=True) if v is not None and v >= target]
        if not hit:
            return None
        hits.append(hit[0])
    return float(np.mean(hits)) if hits else None


def print_recommend(results: list[dict[str, Any]]) -> None:
    print("\nrecommend from the user's base config, vs the base and the grid's best LR at the case's batch")
    print("(to target: 95% of the grid's best accuracy, mean of 2 seeds, '-' when a seed never reached it;")
    print(" pred/meas: predicted and measured time to target relative to the recommendation)")
    head = (f"{'case':26} {'config':12} {'batch':>5} {'lr':>8} {'val acc':>7} {'examples':>9} "
            f"{'seconds':>7} {'pred':>5} {'meas':>5}")
    print(head)
    print("-" * len(head))
    worse = 0
    for r in results:
        rec = r["recommended"]
        for label in ("recommended", "base", "grid best"):
            e = r[label]
            known = e["predicted_rel"] and rec["predicted_rel"]
            pred = e["predicted_rel"] / rec["predicted_rel"] if known else None
            meas = e["seconds"] / rec["seconds"] if e["seconds"] is not None and rec["seconds"] else None
            print(f"{r['case']:26} {label:12} {e['batch_size']:5d} {e['lr']:8.3g} {e['acc']:7.3f} "
                  f"{fmt(e['examples'], '.0f'):>9} {fmt(e['seconds'], '.2f'):>7} {fmt(pred, '.2f'):>5} "
                  f"{fmt(meas, '.2f'):>5}")
        base = r["base"]
        flagged, line = against_base((rec["batch_size"], rec["lr"]), rec["acc"],
                                     (base["batch_size"], base["lr"]), base["acc"])
        if flagged:
            worse += 1
            print(f"{'':26} validate says: {line}")
    print(f"recommendation worse than the user's base config beyond the noise floor: {worse} of "
          f"{len(results)}, each named plainly by `recommend --validate` (the line above)")


# --------------------------------------------------------------------------- diagnosis


def to_record(i: int, row: dict[str, Any], classes: int) -> tuple[RunRecord, dict[str, Series]]:
    """A stored run rebuilt from its JSON row (``num_classes`` added where an older trainer
    did not record it)."""
    series = {k: Series(*(np.asarray(v[f], dtype=float) for f in
                          ("step", "value", "epoch", "examples", "wall_time")))
              for k, v in row["series"].items()}
    summary = {"num_classes": classes, **row["summary"]}
    record = RunRecord(f"run{i}", row["status"], row["config"], {}, 0.0, None, None, None, None, None,
                       0, 1, None, summary, {"train.lr": row["lr"], "train.seed": row["seed"]})
    return record, series


def judge_diagnosis(case: Case, truth: dict[str, Any]) -> dict[str, Any]:
    """Diagnose the case's ground-truth runs as one experiment, as the report does; check each
    run's labels against the rules its numbers imply, with the same sweep best and noise."""
    from judgement_rules import check_diagnosis

    classes = n_classes(base_config(case))
    runs = [to_record(i, r, classes) for i, r in enumerate(truth["runs"])]
    analysis = analyze_runs(runs, case.name)
    group = (analysis.best or {}).get("group") or {}
    eligible = len([g for g in analysis.groups if g.get("best_val_acc_mean") is not None])
    best = group.get("best_val_acc_mean") if eligible >= 2 else None
    noise = group.get("best_val_acc_std")
    labels: dict[str, int] = {}
    violations = []
    for (record, series), a in zip(runs, analysis.runs, strict=True):
        for f in a.findings:
            labels[f.kind] = labels.get(f.kind, 0) + 1
        for v in check_diagnosis(series, a.findings, best, classes, sweep_noise=noise):
            violations.append(f"lr {record.point['train.lr']:.3g} seed {record.point['train.seed']}: {v}")
    return {"case": case.name, "runs": len(runs), "labels": labels, "violations": violations}


def print_diagnosis(results: list[dict[str, Any]]) -> None:
    print("\ndiagnosis of every ground-truth run, checked against the rules its own numbers imply")
    total = sum(r["runs"] for r in results)
    bad = sum(len(r["violations"]) for r in results)
    for r in results:
        labels = ", ".join(f"{k} {n}" for k, n in sorted(r["labels"].items()))
        print(f"{r['case']:26} {r['runs']:3d} runs: {labels}; violations: {len(r['violations'])}")
        for v in r["violations"]:
            print(f"    {v}")
    print(f"rule violations: {bad} over {total} runs: " + ("PASS" if bad == 0 else "FAIL"))


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="re-measure the cached ground truth")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--no-recommend", action="store_true", help="skip the recommend part (slowest)")
    parser.add_argument("--no-suggest", action="store_true", help="skip the LR suggestion part")
    parser.add_argument("--workdir", type=Path, help="keep the stores here (default: a temp folder)")
    args = parser.parse_args()
    threads_pinned(1)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="batchlab-judgement-"))
    work.mkdir(parents=True, exist_ok=True)
    all_cases = cases(work / "data")
    names = set(args.cases.split(",")) if args.cases else {c.name for c in all_cases}
    unknown = names - {c.name for c in all_cases}
    if unknown:
        known = ", ".join(c.name for c in all_cases)
        sys.exit(f"unknown cases: {', '.join(sorted(unknown))}; known: {known}")
    chosen = [c for c in all_cases if c.name in names]
    print(f"judgement benchmark: {len(chosen)} cases, stores in {work}", flush=True)
    truth = ground_truth(all_cases, names, args.regenerate, work)
    with Store(work / "judge.db") as store:
        if not args.no_suggest:
            sugg = []
            for case in chosen:
                sugg += judge_suggestions(case, truth[case.name], store)
                print(f"  suggestions measured: {case.name}", flush=True)
            print_suggestions(sugg)
        if not args.no_recommend:
            recs = []
            for case in chosen:
                recs.append(judge_recommend(case, truth[case.name], store))
                print(f"  recommend measured: {case.name}", flush=True)
            print_recommend(recs)
    print_diagnosis([judge_diagnosis(c, truth[c.name]) for c in chosen])


if __name__ == "__main__":
    main()
