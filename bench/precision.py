"""What train.precision, train.channels_last and train.accumulate cost or buy, measured side by side.

**Speed** — LeNet-5 (dropout off, so accumulation is comparable update for update) at batch
128 on generated 1x28x28 data, one torch thread, batchlab's own trainer, five variants: fp32,
channels_last, bf16 autocast, bf16 + channels_last, and fp32 with the batch as 4 x 32
(``train.accumulate = 4``). The variants are interleaved (each round runs all five, the order
rotating) and each variant's samples/s is the median over rounds of the trainer's own
``summary["samples_per_s"]`` (training steps only, evaluation excluded); ratios are to fp32.
The accumulated run's per-step loss curve is compared with batch 128's (max relative
difference), which must be float round-off only.

**Accuracy** — the quality cases of ``bench/quality.py`` (cnn1d / MNIST-1D, mlp / digits),
one seed, trained in fp32 and in bf16 (channels_last does not apply: their inputs are not
images); bf16 must reach the case's target and stay within 1 point of fp32. The LeNet-5
runs' final validation accuracy is shown beside their speed too (generated data: a sanity
check, not a quality measure).

Targets printed: accumulation >= 0.9x the samples/s of batch 128 with the same loss curve
(max relative difference <= 1e-4); bf16 and channels_last faster than fp32 on a CPU with
AVX512-BF16/AMX (the issue measured 1.21x channels_last, 1.84x bf16, 2.37x both for LeNet-5 at
batch 128); bf16 costs no accuracy.

    python bench/precision.py             # ~2-3 minutes
    python bench/precision.py --quick     # speed only, 2 rounds (< 1 minute)
    python bench/precision.py --clock wall   # wall time instead of this thread's CPU time

``--clock cpu`` (the default) times the trainer with this thread's CPU clock (see
``_common.trainer_cpu_clock``): with one torch thread it is the work done, whatever else
competes for the cores on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
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


def accuracy() -> tuple[list[list[Any]], bool]:
    """The quality cases in fp32 and bf16 (seed 0); rows and whether bf16 costs nothing."""
    rows, ok = [], True
    for case in CASES:
        accs = {}
        for precision in ("fp32", "bf16"):
            config = run_config(case.data, case.model, {**case.train, "seed": 0, "checkpoint": False,
                                                        "threads": 1, "precision": precision})
            ended, _ = train_collect(config)
            accs[precision] = ended.summary["final_val_acc"]
            print(f"  {case.label} {precision}: {accs[precision]:.2%}", file=sys.stderr, flush=True)
        good = accs["bf16"] >= case.target and accs["bf16"] >= accs["fp32"] - ACC_TOLERANCE
        ok &= good
        rows.append([case.label, f"{accs['fp32']:.1%}", f"{accs['bf16']:.1%}",
                     f"{100 * (accs['bf16'] - accs['fp32']):+.1f} pts",
                     f">= {case.target:.0%} and >= fp32 - {100 * ACC_TOLERANCE:.0f} pt",
                     "PASS" if good else "FAIL"])
    return rows, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="speed only, 2 rounds")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 3, quick 2)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="cpu",
                        help="cpu (default): the thread's CPU time, robust on a busy machine")
    args = parser.parse_args()
    print(machine_line())
    set_threads(1)
    with trainer_cpu_clock() if args.clock == "cpu" else contextlib.nullcontext():
        rows, speed_ok = speed(args.rounds or (2 if args.quick else 3))
    print(f"\nLeNet-5, batch {BATCH}, 1 thread, {STEPS} steps per run, clock: {args.clock}")
    print_table(["variant", "samples/s", "vs fp32", "range", "val acc", "target", "result"], rows)
    acc_ok = True
    if not args.quick:
        acc_rows, acc_ok = accuracy()
        print("\nbf16 on the quality cases (final validation accuracy, seed 0)")
        print_table(["case", "fp32", "bf16", "bf16 - fp32", "target", "result"], acc_rows)
    print(f"\noverall: {'PASS' if speed_ok and acc_ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
