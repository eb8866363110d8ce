"""What train.precision, train.channels_last and train.accumulate cost or buy, measured side by side.

**Speed** — LeNet-5 (dropout off, so accumulation is comparable update for update) at batch
128 on generated 1x28x28 data, one torch thread, batchlab's own trainer, five variants: fp32,
channels_last, bf16 autocast, bf16 + channels_last, and fp32 with the batch as 4 x 32
(``train.accumulate = 4``). The variants are interleaved (each round runs all five, the order
rotating) and each variant's samples/s is the median over rounds of the trainer's own
``summary["samples_per_s"]`` (training steps only, evaluation excluded); ratios are to fp32.
The accumulated run's per-step loss curve is compared with batch 128's (max relative
difference), which must be float round-off only.

**Accuracy** — the quality cases of ``bench/quality.py`` (cnn1d / MNIST-1D, mlp / digits,
lenet5 / digits), trained in fp32 and in bf16 with the same seeds (``--seeds``, default 5:
same initialisation and batch order, so each seed gives one paired difference bf16 - fp32);
channels_last is left off (it only reorders memory, and the first two inputs are not images).
The seed-to-seed spread of these long runs is large (cnn1d: ~1 point std in fp32 alone, and
a paired difference is no smaller, as the tiny rounding differences of bf16 send training down
another path), so one seed cannot tell a cost from noise. bf16 passes when every seed reaches
the case's target and the mean paired difference is not a *significant* loss of more than 1
point: it fails only when it is below -1 point and its paired t statistic is below -t at 95 %
(two-sided) for that many seeds. The LeNet-5 speed runs' final validation accuracy is shown
beside their speed too (generated data, 32 steps: a sanity check, not a quality measure).

Targets printed: accumulation >= 0.9x the samples/s of batch 128 with the same loss curve
(max relative difference <= 1e-4); bf16 and channels_last faster than fp32 on a CPU with
AVX512-BF16/AMX (the issue measured 1.21x channels_last, 1.84x bf16, 2.37x both for LeNet-5 at
batch 128); bf16 costs no accuracy (as above).

    python bench/precision.py             # ~7 minutes of CPU (accuracy: 5 seeds x 3 cases x 2)
    python bench/precision.py --seeds 10  # a finer accuracy comparison (~11 minutes)
    python bench/precision.py --quick     # speed only, 2 rounds (< 1 minute)
    python bench/precision.py --clock wall   # wall time instead of this thread's CPU time

``--clock cpu`` (the default) times the trainer with this thread's CPU clock (see
``_common.trainer_cpu_clock``): with one torch thread it is the work done, whatever else
competes for the cores on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
from typing import Any

from _common import (
    machine_line,
    median,
    metric_rows,
    print_table,
    run_config,
    set_threads,
    train_collect,
    trainer_cpu_clock,
)
from quality import CASES

from batchlab.data import load_dataset

BATCH = 128
DATA = {"name": "synthetic", "shape": [1, 28, 28], "classes": 10, "size": 2560, "val_fraction": 0.2}
MODEL = {"name": "lenet5", "dropout": 0.0}
STEPS = 32  # per timed run: 2 epochs of the 2048 training examples
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {},
    "channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
    "fp32, 4 x 32 accumulated": {"accumulate": 4},
}
ISSUE = {"channels_last": 906 / 751, "bf16": 1382 / 751, "bf16 + channels_last": 1780 / 751}
ACCUMULATE_TARGET = 0.9
LOSS_TOLERANCE = 1e-4
ACC_TOLERANCE = 0.01
#: Student's t at 95 % two-sided by degrees of freedom (seeds - 1); between and beyond the
#: entries the next smaller one's (a little larger: conservative).
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
       10: 2.23, 12: 2.18, 14: 2.14, 19: 2.09, 29: 2.05}
SEEDS = 5


def speed(rounds: int) -> tuple[list[list[Any]], bool]:
    """Interleaved timed runs of every variant; table rows and whether the targets hold."""
    data = load_dataset(run_config(DATA, MODEL, {}).data)
    train = {"batch_size": BATCH, "steps": STEPS, "lr": 0.02, "checkpoint": False, "threads": 1}
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    last: dict[str, tuple[float, list[float]]] = {}
    names = list(VARIANTS)
    for v in names:  # warm-up: oneDNN builds its bf16/channels_last kernels on first use
        train_collect(run_config(DATA, MODEL, {**train, **VARIANTS[v], "steps": 4}), data)
    for r in range(rounds):
        for v in names[r % len(names):] + names[: r % len(names)]:
            ended, events = train_collect(run_config(DATA, MODEL, {**train, **VARIANTS[v]}), data)
            rates[v].append(ended.summary["samples_per_s"])
            last[v] = (ended.summary["final_val_acc"], [x for _, x in metric_rows(events, "train_loss")])
            print(f"  round {r + 1} {v}: {rates[v][-1]:.0f} samples/s", file=sys.stderr, flush=True)
    base = median(rates["fp32"])
    full, acc = last["fp32"][1], last["fp32, 4 x 32 accumulated"][1]
    loss_diff = max(abs(a - b) / abs(b) for a, b in zip(acc, full, strict=True))
    rows, ok = [], True
    for v in names:
        ratio = median(rates[v]) / base
        if v.startswith("fp32, 4"):
            good = ratio >= ACCUMULATE_TARGET and loss_diff <= LOSS_TOLERANCE
            target = f">= {ACCUMULATE_TARGET}x; loss rel diff {loss_diff:.1e} <= {LOSS_TOLERANCE:g}"
        elif v == "fp32":
            good, target = True, "reference"
        else:
            good, target = ratio > 1.0, f"> 1x (issue: {ISSUE[v]:.2f}x)"
        ok &= good
        rows.append([v, f"{median(rates[v]):,.0f}", f"{ratio:.2f}x",
                     f"{min(rates[v]):,.0f}-{max(rates[v]):,.0f}", f"{last[v][0]:.1%}", target,
                     "PASS" if good else "FAIL"])
    return rows, ok


def paired_t(diffs: list[float]) -> float:
    """The paired t statistic mean / (std / sqrt(n)) of per-seed differences: nan for one seed;
    with no spread at all +-inf (0 when they are all 0): a difference without noise is certain."""
    if len(diffs) < 2:
        return math.nan
    mean, sd = statistics.mean(diffs), statistics.stdev(diffs)
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / (sd / math.sqrt(len(diffs)))


def costs_accuracy(diffs: list[float], tolerance: float = ACC_TOLERANCE) -> bool:
    """Whether the per-seed differences bf16 - fp32 show a real loss of more than ``tolerance``:
    the mean is below -tolerance and (with 2 or more seeds) significantly so, a paired t below
    -t at 95 % two-sided. One seed has no noise estimate, so there the mean alone decides."""
    mean = statistics.mean(diffs)
    if mean >= -tolerance:
        return False
    if len(diffs) < 2:
        return True
    return paired_t(diffs) < -min(t for df, t in T95.items() if df <= len(diffs) - 1)


def mean_std(values: list[float]) -> str:
    """'93.1 ± 0.8 %' (percent); the std only with 2 or more values."""
    std = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.mean(values):.1f}{std} %"


def accuracy(seeds: int) -> tuple[list[list[Any]], bool]:
    """The quality cases in fp32 and bf16, seeds 0..seeds-1 paired; rows and whether bf16 costs
    no accuracy (``costs_accuracy``) and reaches each case's target on every seed."""
    rows, ok = [], True
    for case in CASES:
        accs: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for seed in range(seeds):
            for precision in accs:
                config = run_config(case.data, case.model, {
                    **case.train, "seed": seed, "checkpoint": False, "threads": 1,
                    "precision": precision})
                ended, _ = train_collect(config)
                accs[precision].append(ended.summary["final_val_acc"])
                print(f"  {case.label} seed {seed} {precision}: {accs[precision][-1]:.2%}",
                      file=sys.stderr, flush=True)
        diffs = [b - f for b, f in zip(accs["bf16"], accs["fp32"], strict=True)]
        good = min(accs["bf16"]) >= case.target and not costs_accuracy(diffs)
        ok &= good
        rows.append([case.label, mean_std(accs["fp32"]), mean_std(accs["bf16"]),
                     f"{100 * statistics.mean(diffs):+.1f} pts (t {paired_t(diffs):+.1f})",
                     " ".join(f"{100 * d:+.1f}" for d in diffs),
                     f"every seed >= {case.target:.0%}; not < fp32 - {100 * ACC_TOLERANCE:.0f} "
                     "pt significantly", "PASS" if good else "FAIL"])
    return rows, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="speed only, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, quick 2)")
    parser.add_argument("--seeds", type=int, default=SEEDS,
                        help=f"seeds per case and precision for the accuracy part (default {SEEDS})")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                        help="cpu (default): the thread's CPU time, robust on a busy machine")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1 (got {args.seeds})")
    print(machine_line())
    set_threads(1)
    with trainer_cpu_clock() if args.clock == "cpu" else contextlib.nullcontext():
        rows, speed_ok = speed(args.rounds or (2 if args.quick else 3))
    print(f"\nLeNet-5, batch {BATCH}, 1 thread, {STEPS} steps per run, clock: {args.clock}")
    print_table(["variant", "samples/s", "vs fp32", "range", "val acc", "target", "result"], rows)
    acc_ok = True
    if not args.quick:
        acc_rows, acc_ok = accuracy(args.seeds)
        print(f"\nbf16 on the quality cases (final validation accuracy, seeds 0-{args.seeds - 1}, "
              "mean ± std; bf16 - fp32 paired by seed)")
        print_table(["case", "fp32", "bf16", "bf16 - fp32 (paired t)", "per seed (pts)", "target",
                     "result"], acc_rows)
    print(f"\noverall: {'PASS' if speed_ok and acc_ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
