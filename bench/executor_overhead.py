"""Per-run scheduling overhead of each executor: the same 16 short runs inline, on the local
pool and on Ray.

The sweep is an MLP on synthetic 1x28x28 data (2000 examples: 1600 train / 400 validation),
batch 32, 5 epochs, SGD, LR {0.005, 0.01, 0.02, 0.05} x 4 seeds = 16 runs of about 0.3 s of
training each, every run with 1 torch thread. It goes through ``run_sweep`` exactly as
``batchlab sweep`` does, each time into a fresh store in a temporary directory:

* ``inline``: ``InlineExecutor(threads=1)``: one run after another in this process
  (parallelism 1);
* ``pool(2)``: ``LocalPoolExecutor(2)``: two spawned worker processes, 1 thread each
  (parallelism 2); the workers are started by each sweep, so their start-up is counted;
* ``ray(2)``: ``RayExecutor(cpus_per_run=1)`` on a local Ray started once by
  ``ray.init(num_cpus=2)`` (parallelism 2). The ``ray.init`` time is printed on its own and is
  not part of any sweep; Ray's worker processes stay up between sweeps, so the first Ray sweep
  (cold workers: process start, torch import) is shown apart from the later ones.

For each sweep: wall time of ``run_sweep`` (planning, preflight, claims, store writes,
scheduling, training), the sum of the runs' own wall times from the store
(``RunRecord.wall_time``: from model set-up to the end of the run, data loading excluded), and
the per-run overhead = (wall - sum of run times / parallelism) / runs. The executors are
interleaved (their order rotates each repetition); medians over repetitions. Target: Ray's
overhead per run under 0.5 s.

    python bench/executor_overhead.py            # 3 repetitions (~1-2 minutes)
    python bench/executor_overhead.py --reps 5
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

from batchlab.data import load_dataset
from batchlab.events import COMPLETED
from batchlab.execute.base import Executor
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.local import LocalPoolExecutor, available_cores
from batchlab.execute.sweep import prepare_sweep, run_sweep
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store

RUNS = 16
TARGET_RAY_S = 0.5
PARALLELISM = {"inline": 1, "pool(2)": 2, "ray(2)": 2}


def sweep_spec() -> Spec:
    return spec_from_dict({
        "name": "executor-overhead",
        "data": {"name": "synthetic", "shape": [1, 28, 28], "classes": 10, "size": 2000},
        "model": {"name": "mlp"},
        "train": {"optimizer": "sgd", "momentum": 0.9, "batch_size": 32, "epochs": 5,
                  "device": "cpu"},
        "sweep": {"grid": {"train.lr": [0.005, 0.01, 0.02, 0.05]}, "repeats": 4},
    })


def executors() -> dict[str, Callable[[], Executor]]:
    from batchlab.execute.ray import RayExecutor

    return {
        "inline": lambda: InlineExecutor(threads=1),
        "pool(2)": lambda: LocalPoolExecutor(2),
        "ray(2)": lambda: RayExecutor(cpus_per_run=1),
    }


def timed_sweep(spec: Spec, make: Callable[[], Executor]) -> tuple[float, list[float]]:
    """(wall seconds of run_sweep, the runs' own wall times from the store)."""
    torch.set_num_threads(available_cores())  # the process default, whatever ran before
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        with Store(Path(tmp) / "sweep.db") as store:
            executor = make()
            start = time.perf_counter()
            outcome = run_sweep(spec, store, executor)
            wall = time.perf_counter() - start
            records = store.runs(spec.name)
    statuses = [r.status for r in records]
    if outcome.skipped or outcome.trained != RUNS or statuses != [COMPLETED] * RUNS:
        raise RuntimeError(f"expected {RUNS} fresh completed runs, got skipped={outcome.skipped} "
                           f"trained={outcome.trained} {statuses}")
    return wall, [r.wall_time or 0.0 for r in records]


def _noop() -> None:
    return None


def overhead(wall: float, run_times: list[float], parallelism: int) -> float:
    return (wall - sum(run_times) / parallelism) / len(run_times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    args = parser.parse_args()
    spec = sweep_spec()
    print(machine_line())
    print(f"sweep: {RUNS} runs of mlp on synthetic 1x28x28 (1600 train), batch 32, 5 epochs, "
          f"1 torch thread per run; {available_cores()} cores; {args.reps} repetitions, order rotated")

    # what every executor pays in the driver, and what each Ray task pays on top (no data cache)
    start = time.perf_counter()
    prepare_sweep(spec)
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    load_dataset(spec.data)
    load_s = time.perf_counter() - start

    start = time.perf_counter()
    import ray

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    init_s = time.perf_counter() - start
    print(f"ray start-up (not in any sweep): import ray {import_s:.2f} s, "
          f"ray.init(num_cpus=2) {init_s:.2f} s")

    makers = executors()
    names = list(makers)
    walls: dict[str, list[float]] = {n: [] for n in names}
    sums: dict[str, list[float]] = {n: [] for n in names}
    overs: dict[str, list[float]] = {n: [] for n in names}
    try:
        for rep in range(args.reps):
            for name in names[rep % len(names):] + names[: rep % len(names)]:
                wall, runs = timed_sweep(spec, makers[name])
                walls[name].append(wall)
                sums[name].append(sum(runs))
                overs[name].append(overhead(wall, runs, PARALLELISM[name]))
                print(f"  rep {rep + 1}: {name:8s} wall {wall:6.2f} s  runs {sum(runs):6.2f} s  "
                      f"overhead/run {overs[name][-1]:.3f} s", file=sys.stderr, flush=True)
        # context: the bare cost of one Ray task round trip on the warm local cluster
        noop = ray.remote(num_cpus=1)(_noop)
        trips = []
        for _ in range(20):
            start = time.perf_counter()
            ray.get(noop.remote())
            trips.append(time.perf_counter() - start)
    finally:
        start = time.perf_counter()
        ray.shutdown()
        shutdown_s = time.perf_counter() - start

    rows = []
    for name in names:
        rows.append([name, PARALLELISM[name], f"{median(walls[name]):.2f}",
                     f"{median(sums[name]):.2f}", f"{median(sums[name]) / RUNS:.3f}",
                     f"{median(overs[name]):.3f}",
                     " ".join(f"{o:.3f}" for o in overs[name])])
    print()
    print_table(["executor", "parallelism", "median wall s", "sum of run times s", "mean run s",
                 "overhead/run s (median)", "overhead/run s per rep (in run order)"], rows)
    ray_median = median(overs["ray(2)"])
    ray_cold = overs["ray(2)"][0]
    print(f"\nray.init: {init_s:.2f} s (excluded above); ray.shutdown: {shutdown_s:.2f} s")
    print(f"in every sweep: planning + preflight (data load, model build) {prepare_s:.3f} s; "
          f"a Ray task loads its data itself (no per-worker cache): {load_s:.3f} s per run, "
          "outside RunRecord.wall_time, so it counts as overhead")
    print(f"an empty Ray task (num_cpus=1), submitted and waited for one at a time: "
          f"median {1e3 * median(trips):.1f} ms over {len(trips)}")
    print(f"Ray overhead per run, median of {args.reps} sweeps: {ray_median:.3f} s "
          f"(target < {TARGET_RAY_S} s) {'PASS' if ray_median < TARGET_RAY_S else 'FAIL'}")
    print(f"Ray overhead per run, first sweep after ray.init (cold workers): {ray_cold:.3f} s "
          f"(target < {TARGET_RAY_S} s) {'PASS' if ray_cold < TARGET_RAY_S else 'FAIL'}")
    print(f"at the end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
