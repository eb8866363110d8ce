"""What ``train.watch`` (per-layer signals at each evaluation) costs a run: watch on vs off.

Each case trains the same run with ``train.watch`` on and off, interleaved (the order
alternates each repetition), timing the whole run (``train_run``'s wall, evaluations
included: the probe pass and the weight copy happen there). The overhead is the median of the
per-repetition ratios on/off minus 1. The budget is 2 %. The middle half of the ratios (their
quartiles) is printed beside it: how far one repetition strays on this machine at this load.

    python bench/layer_watch.py              # 3 cases x 5 repetitions (~1-2 min on one core)
    python bench/layer_watch.py --reps 9
    python bench/layer_watch.py --clock cpu   # this thread's CPU time: steadier on a busy machine
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import load_line, machine_line, median, print_table, run_config, set_threads, train_collect

from batchlab.data import load_dataset
from batchlab.spec import DataSpec

# name -> (data spec, model spec, train fields): evaluation once per epoch (the default)
CASES = {
    "mlp digits b32": ({"name": "digits"}, {"name": "mlp"}, {"batch_size": 32, "epochs": 4}),
    "lenet5 digits b64": ({"name": "digits"}, {"name": "lenet5"}, {"batch_size": 64, "epochs": 3}),
    "cnn1d mnist1d b128": ({"name": "mnist1d", "size": 4000}, {"name": "cnn1d"},
                           {"batch_size": 128, "epochs": 3}),
}
BUDGET = 0.02


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: time.thread_time (1 torch thread: the work done, whatever else "
                         "holds the cores)")
    args = ap.parse_args()
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    set_threads(1)
    print(machine_line())
    rows = []
    for name, (data, model, train) in CASES.items():
        loaded = load_dataset(DataSpec(**data))
        configs = {w: run_config(data, model, {**train, "threads": 1, "watch": w, "checkpoint": False})
                   for w in (True, False)}
        train_collect(configs[True], loaded)  # warm-up: first-call costs are no one's overhead
        ratios, on_s, off_s = [], [], []
        for rep in range(args.reps):
            wall = {}
            for w in ((True, False) if rep % 2 == 0 else (False, True)):
                t0 = clock()
                train_collect(configs[w], loaded)
                wall[w] = clock() - t0
            ratios.append(wall[True] / wall[False])
            on_s.append(wall[True])
            off_s.append(wall[False])
        overhead = median(ratios) - 1
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        rows.append([name, median(off_s), median(on_s), f"{100 * overhead:+.2f} %",
                     f"{100 * (q1 - 1):+.1f} .. {100 * (q3 - 1):+.1f} %",
                     "ok" if overhead <= BUDGET else "OVER"])
    print(load_line())
    print(f"clock: {args.clock}")
    print_table(["case", "watch off s", "watch on s", "overhead (median ratio)",
                 "middle half of the ratios", "<= 2 %"], rows)


if __name__ == "__main__":
    main()
