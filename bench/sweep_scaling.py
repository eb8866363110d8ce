"""Wall time of one 8-run sweep: a 2-process pool vs one process (the CLI's --workers 1 path).

The sweep is cnn1d (the MNIST-1D paper's small CNN) on MNIST-1D, batch size {32, 64} x four
learning rates, ~3-6 s per run single-threaded. It is run through ``run_sweep`` exactly as
``batchlab sweep`` does, each time into a fresh store in a temporary directory (so no run is
ever skipped as already done), with three executors:

* ``inline``: ``InlineExecutor()``, runs one after another in this process with the process's
  default torch threads (2 here): what ``batchlab sweep --workers 1`` does;
* ``pool(1)``: ``LocalPoolExecutor(1)``, one spawned worker with all cores' threads (reference);
* ``pool(2)``: ``LocalPoolExecutor(2)``, two spawned workers with 1 thread each.

The executors are interleaved (their order rotates each repetition) and the speed-up is the
median of the per-repetition ratios; the target is >= 1.6x for pool(2) over inline.

    python bench/sweep_scaling.py           # 3 repetitions (~4-5 minutes)
    python bench/sweep_scaling.py --quick   # short runs, 2 repetitions (< 60 s)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import load_line, machine_line, median, print_table

from batchlab.events import COMPLETED
from batchlab.execute.base import Executor
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.local import LocalPoolExecutor, available_cores
from batchlab.execute.sweep import run_sweep
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store

TARGET_SPEEDUP = 1.6
RUNS = 8


def sweep_spec(epochs: int) -> Spec:
    return spec_from_dict({
        "name": "sweep-scaling",
        "data": {"name": "mnist1d", "size": 5000, "validation": "test"},
        "model": {"name": "cnn1d"},
        "train": {"optimizer": "sgd", "momentum": 0.9, "epochs": epochs, "device": "cpu"},
        "sweep": {"grid": {"train.batch_size": [32, 64], "train.lr": [0.01, 0.02, 0.05, 0.1]}},
    })


EXECUTORS: dict[str, Callable[[], Executor]] = {
    "inline": InlineExecutor,
    "pool(1)": lambda: LocalPoolExecutor(1),
    "pool(2)": lambda: LocalPoolExecutor(2),
}


def timed_sweep(spec: Spec, name: str) -> float:
    """Wall seconds of one whole sweep (planning, preflight, training, store writes)."""
    torch.set_num_threads(available_cores())  # the process default, whatever ran before
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        with Store(Path(tmp) / "sweep.db") as store:
            start = time.perf_counter()
            outcome = run_sweep(spec, store, EXECUTORS[name]())
            wall = time.perf_counter() - start
    statuses = [r.status for r in outcome.records]
    if outcome.skipped or outcome.trained != RUNS or statuses != [COMPLETED] * RUNS:
        raise RuntimeError(f"{name}: expected {RUNS} fresh completed runs, got "
                           f"skipped={outcome.skipped} trained={outcome.trained} {statuses}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 epochs per run, 2 repetitions")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 25, quick 4)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3, quick 2)")
    args = parser.parse_args()
    epochs = args.epochs or (4 if args.quick else 25)
    reps = args.reps or (2 if args.quick else 3)
    spec = sweep_spec(epochs)
    names = list(EXECUTORS)
    print(machine_line())
    print(f"sweep: {RUNS} runs of cnn1d on mnist1d (4000 train), batch {{32, 64}} x 4 LRs, "
          f"{epochs} epochs each; {available_cores()} cores; {reps} repetitions, order rotated")
    walls: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(reps):
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            walls[name].append(timed_sweep(spec, name))
            print(f"  rep {rep + 1}: {name:8s} {walls[name][-1]:6.1f} s", file=sys.stderr, flush=True)

    def speedup(over: str) -> float:
        return median([a / b for a, b in zip(walls[over], walls["pool(2)"], strict=True)])

    threads = {"inline": available_cores(), "pool(1)": LocalPoolExecutor(1).threads,
               "pool(2)": LocalPoolExecutor(2).threads}
    rows = [[name, f"{1 if name == 'inline' else int(name[5])} x {threads[name]}",
             f"{median(walls[name]):.1f}", " ".join(f"{w:.1f}" for w in walls[name]),
             f"{speedup(name):.2f}x"] for name in names]
    print()
    print_table(["executor", "procs x threads", "median wall s", "per rep s", "pool(2) speed-up"], rows)
    s_inline, s_pool1 = speedup("inline"), speedup("pool(1)")
    verdict = "PASS" if s_inline >= TARGET_SPEEDUP else "FAIL"
    if args.quick:  # ~1 s runs: worker start-up (spawn, import torch) is a large share
        verdict = "(not judged with --quick: runs this short are dominated by worker start-up)"
    print(f"\nworkers=2 over workers=1 (inline, the CLI path): {s_inline:.2f}x "
          f"(target >= {TARGET_SPEEDUP}x) {verdict}")
    print(f"workers=2 over pool(1) (reference):              {s_pool1:.2f}x")
    print(f"at the end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
