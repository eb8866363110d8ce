"""What sweep.prune saves, and whether it changes the answer.

1. ``batchlab demo``'s spec (24 runs: LeNet-5 on digits, batch 16/32/64/128 x LR 0.1/0.01/0.001
   x constant/step decay, 30 epochs) with ``sweep.prune = "off"`` and ``"hopeless"``: the best
   configuration of each, and the ratio of their times (target <= 0.8).
2. A 16-run sweep (the demo's model and data, constant LR, batch 16/32/64/128 x LR
   0.1/0.03/0.01/0.001) with ``"off"`` and ``"halving"`` (eta 3): the best configuration of
   each (the same, or the halving pick within seed noise of the best) and the fraction of the
   examples the off sweep trained that halving trained.
3. The false-positive check of the hopeless rule, on the "off" runs: replaying the rule on each
   run's evaluations, which runs it would have pruned and where, and whether any of them ended
   at (or within a point of) the best final accuracy.

Each sweep runs through ``run_sweep`` with ``LocalPoolExecutor(2, threads=1)`` (as ``batchlab
demo``; ``--workers 1``: ``InlineExecutor(threads=1)``) into a fresh store, one after another;
the off stores are shared by 1 and 2, so the 12 runs the two sweeps have in common (same
config, same run id) are trained once. Times: wall clock, and the CPU time of the process and
its workers (one torch thread each: the work done, steadier than the wall on a shared machine).
``--replay STORE`` runs part 3 alone on a store trained with prune off; ``--truth`` only the
replay on the judgement ground truth (~1 CPU minute).

    python bench/prune.py                 # ~10 CPU minutes
    python bench/prune.py --epochs 10     # quicker, less saved (a collapse is cut at epoch ~4)
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import load_line, machine_line, print_table, set_threads

from batchlab.analysis import analyze_experiment
from batchlab.collapse import CollapseRule, collapsed, hopeless, never_learned
from batchlab.demo import demo_spec
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.local import LocalPoolExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store

NEAR_BEST = 0.01  # a run within a point of the best final val acc "ended near best"


def with_sweep(spec: Spec, name: str, **sweep: Any) -> Spec:
    raw = spec.model_dump(mode="json")
    raw["name"] = name
    raw["sweep"] = {**raw["sweep"], **sweep}
    return spec_from_dict(raw)


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the pool's workers)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_sweep(spec: Spec, store: Store, workers: int) -> tuple[float, float]:
    """(wall s, CPU s) of one sweep: in this process with one worker, else a local pool whose
    workers have 1 torch thread each (as ``batchlab demo``)."""
    executor = InlineExecutor(threads=1) if workers == 1 else LocalPoolExecutor(workers, threads=1)
    wall, cpu = time.perf_counter(), cpu_seconds()
    run_sweep(spec, store, executor)
    return time.perf_counter() - wall, cpu_seconds() - cpu


def best_label(store: Store, name: str) -> tuple[str, float]:
    best = analyze_experiment(store, name).best
    if best is None:
        return "none", float("nan")
    return best["group"]["label"], best["group"]["best_val_acc_mean"]


def examples_trained(store: Store, name: str) -> int:
    """Examples seen over every run of the experiment (each run's last per-step row)."""
    total = 0
    for r in store.runs(name):
        loss = store.metrics(r.id, ["train_loss"]).get("train_loss")
        total += int(loss.examples[-1]) if loss is not None and len(loss.step) else 0
    return total


def would_prune(store: Store, name: str) -> tuple[list[list[str]], float]:
    """The hopeless rule replayed on every run's evaluations (see the module doc): a row per
    run, and the fraction of the runs' summed wall time that pruning would have saved (each
    pruned run's time after the evaluation that pruned it; pruning only observes, so the run
    is the same up to there)."""
    runs = [r for r in store.runs(name) if r.status != "pending"]
    finals, rows = {}, []
    for r in runs:
        m = store.metrics(r.id, ["val_acc", "train_eval_loss"])
        acc, loss = m["val_acc"], m["train_eval_loss"]
        finals[r.id] = float(acc.value[-1])
        epochs, accs, losses = list(acc.epoch), list(acc.value), list(loss.value)
        at = next((i for i in range(1, len(accs) + 1)
                   if hopeless(epochs[:i], accs[:i], losses[:i], 10) is not None), None)
        rows.append((r, at, epochs, float(acc.wall_time[at - 1]) if at else None))
    best = max(finals.values())
    out, total, saved = [], 0.0, 0.0
    for r, at, epochs, wall_at in rows:
        t = r.config["train"]
        total += r.wall_time or 0.0
        saved += (r.wall_time or 0.0) - wall_at if wall_at is not None else 0.0
        near = finals[r.id] >= best - NEAR_BEST
        out.append([f"batch {t['batch_size']}, lr {t['lr']}, {t['schedule']['name']}",
                    f"{finals[r.id]:.3f}", "yes" if near else "no",
                    f"epoch {epochs[at - 1]:.0f}" if at else "never"])
    return out, saved / total if total else float("nan")


def run_time(store: Store, name: str) -> float:
    """The summed wall time of the experiment's runs (a paused and resumed run counts once)."""
    return sum(r.wall_time or 0.0 for r in store.runs(name))


@dataclass
class TruthReplay:
    """What one rule would have pruned of bench/judgement's ground truth: ``runs`` replayed,
    ``pruned`` (one line per run, with the rule's first words and the epoch), ``near`` (those of
    them that ended within noise of their case's best final val acc, see :func:`case_best`:
    must stay empty), and the training steps the runs took and the steps pruning would have saved."""

    runs: int = 0
    pruned: list[str] = field(default_factory=list)
    near: list[str] = field(default_factory=list)
    steps: int = 0
    saved: int = 0


def case_best(runs: list[dict[str, Any]]) -> tuple[float, float]:
    """A judgement case's best final val acc and its noise: :data:`NEAR_BEST`, or the spread of
    the best LR's seeds when larger (two seeds of one LR can end 3 points apart)."""
    finals: dict[float, list[float]] = {}
    for r in runs:
        finals.setdefault(r["lr"], []).append(r["final"] or 0.0)
    top = max(finals.values(), key=lambda v: sum(v) / len(v))
    return max(max(v) for v in finals.values()), max(NEAR_BEST, max(top) - min(top))


def truth_replay(truth: dict[str, Any], rule: CollapseRule = CollapseRule(),  # noqa: B008 - frozen
                 judge: Callable[..., str | None] = hopeless) -> TruthReplay:
    """``judge`` (the hopeless rule, or one of its parts: ``collapsed``, ``never_learned``)
    replayed on bench/judgement's ground truth (every run trained to its end by the plain loop,
    ~11 evaluations): which runs it would prune, at which evaluation, and the steps after it.
    Regressions have no accuracy: skipped. ``truth``: ``_bench_truth.load_truth()``."""
    from _bench_space import draw
    from _bench_truth import data_of

    out = TruthReplay()
    for case in draw():
        entry = truth.get(case.name)
        if entry is None:
            continue
        data = data_of(case)
        if data.regression:
            continue
        runs = entry["runs"]
        best, noise = case_best(runs)
        per_epoch = len(data.y_train) // case.batch_size
        for r in runs:
            out.runs += 1
            acc, loss = r["series"].get("val_acc"), r["series"].get("train_eval_loss")
            if not acc or not loss or len(acc["value"]) != len(loss["value"]):
                continue
            out.steps += acc["step"][-1]
            epochs = [s / per_epoch for s in acc["step"]]
            accs = [math.nan if v is None else v for v in acc["value"]]
            losses = [math.nan if v is None else v for v in loss["value"]]
            at, why = next(((i, w) for i in range(1, len(accs) + 1)
                            if (w := judge(epochs[:i], accs[:i], losses[:i], data.classes, rule))),
                           (None, None))
            if at is None or why is None:
                continue
            out.saved += acc["step"][-1] - acc["step"][at - 1]
            name = (f"{case.name} lr {r['lr']:g} seed {r['seed']} ({why.split(':')[0]} at epoch "
                    f"{epochs[at - 1]:.3g})")
            out.pruned.append(name)
            if (r["final"] or 0.0) >= best - noise:
                out.near.append(name)
    return out


def replay(store: Store, names: list[str]) -> None:
    """Part 3 (see the module doc) on ``store``'s experiments ``names`` and on the judgement
    ground truth."""
    print("\n3. the hopeless rule replayed on the runs trained with prune off (false positives)")
    seen: set[str] = set()
    for name in names:
        rows, saved = would_prune(store, name)
        print_table(["run", "final val acc", "near best", "would be pruned at"],
                    [row for row in rows if row[0] not in seen])
        seen |= {row[0] for row in rows}
        print(f"'{name}': pruning would have saved {saved:.0%} of the runs' summed wall time")
    truth_table()


def truth_table() -> None:
    """The hopeless rule and its two parts replayed on the judgement ground truth, at the
    default patience and fewer (which shows how close the margin is)."""
    from _bench_truth import load_truth

    truth = load_truth()
    rows, lines = [], []
    for label, judge in (("hopeless (both)", hopeless), ("collapsed", collapsed),
                         ("never learned", never_learned)):
        for patience in (3, 2, 1):  # 3 is the default
            t = truth_replay(truth, CollapseRule(patience=patience), judge)
            rows.append([label, str(patience), str(t.runs), str(len(t.pruned)), str(len(t.near)),
                         f"{t.saved:,} of {t.steps:,} ({t.saved / t.steps:.1%})"])
            if patience == 3 and judge is hopeless:
                lines += t.pruned
    print("\nbench/judgement ground truth: runs the rule would prune, and of them those that "
          f"ended within noise of their case's best ({100 * NEAR_BEST:g} point, or the spread of "
          "the best LR's seeds when larger; must be 0)")
    print_table(["rule", "patience", "runs", "pruned", "pruned near best", "steps saved"], rows)
    print("pruned by the hopeless rule at patience 3 (the default):"
          + "".join(f"\n  {line}" for line in lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--replay", type=Path, metavar="STORE",
                        help="only replay the rule on the runs of an existing store trained "
                        "with prune off (experiment --experiment), and on the judgement truth")
    parser.add_argument("--truth", action="store_true",
                        help="only replay the rule on the judgement ground truth")
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--workers", type=int, default=2, help="as batchlab demo (1: in process)")
    args = parser.parse_args()
    set_threads(1)
    print(machine_line())
    if args.truth:
        truth_table()
        return
    if args.replay is not None:
        with Store(args.replay, create=False) as st:
            replay(st, [args.experiment])
        return
    demo = demo_spec(args.epochs)
    sixteen = {"train.batch_size": [16, 32, 64, 128], "train.lr": [0.1, 0.03, 0.01, 0.001]}
    with tempfile.TemporaryDirectory() as tmp:
        off = Store(Path(tmp) / "off.db")
        hop = Store(Path(tmp) / "hopeless.db")
        halv = Store(Path(tmp) / "halving.db")
        w = args.workers
        times = {"demo off": timed_sweep(with_sweep(demo, "demo", prune="off"), off, w),
                 "demo hopeless": timed_sweep(with_sweep(demo, "demo", prune="hopeless"), hop, w),
                 "16 off": timed_sweep(with_sweep(demo, "sixteen", prune="off", grid=sixteen), off, w),
                 "16 halving": timed_sweep(with_sweep(demo, "sixteen", prune="halving",
                                                      grid=sixteen), halv, w)}
        print(load_line())
        print("\n1. demo, prune off vs hopeless")
        (b_off, a_off), (b_hop, a_hop) = best_label(off, "demo"), best_label(hop, "demo")
        pruned = [r for r in hop.runs("demo") if r.status == "pruned"]
        print_table(["sweep", "wall s", "CPU s", "best configuration", "its best val acc"], [
            ["off", f"{times['demo off'][0]:.0f}", f"{times['demo off'][1]:.0f}", b_off, f"{a_off:.4f}"],
            ["hopeless", f"{times['demo hopeless'][0]:.0f}", f"{times['demo hopeless'][1]:.0f}",
             b_hop, f"{a_hop:.4f}"]])
        wall = times["demo hopeless"][0] / times["demo off"][0]
        cpu = times["demo hopeless"][1] / times["demo off"][1]
        print(f"hopeless / off: wall {wall:.2f}, CPU {cpu:.2f} (target <= 0.8: "
              f"{'PASS' if cpu <= 0.8 else 'FAIL'} on CPU); same best: {b_off == b_hop}; "
              f"{len(pruned)} runs pruned:")
        for r in pruned:
            print(f"  batch {r.config['train']['batch_size']}, lr {r.config['train']['lr']}, "
                  f"{r.config['train']['schedule']['name']}: step {r.steps} of {r.total_steps}: {r.error}")
        print("\n2. 16-run sweep, prune off vs halving (eta 3); 12 of its runs are the demo's, "
              "trained once in the off store, so its time is the runs' summed wall time")
        (b16, a16), (bh, _) = best_label(off, "sixteen"), best_label(halv, "sixteen")
        accs = {g["label"]: g["best_val_acc_mean"] for g in analyze_experiment(off, "sixteen").groups}
        fraction = examples_trained(halv, "sixteen") / examples_trained(off, "sixteen")
        t_off, t_halv = run_time(off, "sixteen"), run_time(halv, "sixteen")
        print_table(["sweep", "run time s", "best configuration", "its best val acc (off)"], [
            ["off", f"{t_off:.0f}", b16, f"{a16:.4f}"],
            ["halving", f"{t_halv:.0f}", bh, f"{accs.get(bh, float('nan')):.4f}"]])
        gap = a16 - accs.get(bh, float("nan"))
        print(f"same best: {b16 == bh}; halving's pick is {100 * gap:.2g} points under the best "
              f"(noise floor 1 point); examples trained: {fraction:.2f} of the off sweep's; "
              f"run time {t_halv / t_off:.2f} of it")
        statuses = [r.status for r in halv.runs("sixteen")]
        print(f"halving: {statuses.count('completed')} completed, {statuses.count('pruned')} pruned")
        replay(off, ["demo", "sixteen"])
        for st in (off, hop, halv):
            st.close()


if __name__ == "__main__":
    main()
