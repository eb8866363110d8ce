"""``throughput --options`` against the trainer: do its ratios say what training measures?

For two models — LeNet-5 (the zoo's ``lenet5``, dropout off) at batch 128 on generated
1x28x28 data, and a small CNN (``small_cnn`` below: three 3x3 conv + batch-norm layers, global
pooling, a linear head) at batch 64 on generated 3x32x32 data — each of ``--rounds`` rounds
runs, in this process with one torch thread:

* batchlab's trainer once per variant (fp32, channels_last, bf16 autocast, bf16 +
  channels_last; ``--steps`` steps each, the order rotating per round), reading its own
  ``summary["samples_per_s"]`` (training steps only), timed in this thread's CPU time
  (``_common.trainer_cpu_clock``) as the probe times its windows with one torch thread
  (``probes.options.window_clock``): on a shared machine wall-clock timings measure the other
  processes' load more than the step, and with one thread the two agree when it is quiet;
* ``option_speedups`` once, with its default settings (what ``batchlab throughput --options``
  runs): rounds of 0.1 s windows repeated until each ratio's spread is within 5 %, or 20 s.

The trainer's ratio of a variant is the median over rounds of its samples/s over fp32's in the
same round; the probe's is the median of its calls' ratios. Targets: every probe ratio within
10 % of the trainer's (PASS/FAIL per variant), and each call reaching the 5 % spread (how many
did is printed with the spreads; on a busy machine the probe says it could not).

    python bench/throughput_check.py                 # 3 rounds: 18 min at a load average of 15-27
    python bench/throughput_check.py --rounds 5 --steps 30
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import median
from typing import Any

import torch
from _common import (
    load_line,
    machine_line,
    print_table,
    run_config,
    set_threads,
    train_collect,
    trainer_cpu_clock,
)
from torch import nn

from batchlab.data import load_dataset
from batchlab.probes.options import VARIANTS, option_speedups

AGREE = 0.10  # |probe / trainer - 1| at most this
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], int]] = {
    "LeNet-5": ({"name": "synthetic", "shape": [1, 28, 28], "classes": 10, "size": 2560},
                {"name": "lenet5", "dropout": 0.0}, 128),
    "small CNN": ({"name": "synthetic", "shape": [3, 32, 32], "classes": 10, "size": 2560},
                  {"name": "throughput_check:small_cnn"}, 64),
}
TRAIN = {name: {"precision": precision, "channels_last": channels_last}
         for name, precision, channels_last in VARIANTS}


def small_cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Three 3x3 conv + batch-norm + ReLU layers (16, 32, 64 channels; the last two stride 2),
    global average pooling and a linear head: a small modern CNN."""
    layers: list[nn.Module] = []
    channels = input_shape[0]
    for out, stride in ((16, 1), (32, 2), (64, 2)):
        layers += [nn.Conv2d(channels, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out),
                   nn.ReLU(inplace=True)]
        channels = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))


def trainer_rates(data_spec: dict[str, Any], model: dict[str, Any], batch: int, steps: int,
                  data: Any, order: list[str]) -> dict[str, float]:
    """The trainer's samples/s for each variant, in ``order``."""
    out = {}
    for name in order:
        train = {"batch_size": batch, "steps": steps, "lr": 0.01, "threads": 1,
                 "checkpoint": False, **TRAIN[name]}
        with trainer_cpu_clock():
            ended, _ = train_collect(run_config(data_spec, model, train), data)
        out[name] = ended.summary["samples_per_s"]
    return out


def check(case: str, rounds: int, steps: int) -> list[list[Any]]:
    """Interleaved trainer and probe rounds of one case; its table rows."""
    data_spec, model, batch = CASES[case]
    data = load_dataset(run_config(data_spec, model, {}).data)
    config = run_config(data_spec, model, {"batch_size": batch, "threads": 1, "lr": 0.01})
    names = list(TRAIN)
    trainer_rates(data_spec, model, batch, 3, data, names)  # warm-up: oneDNN builds its kernels
    trainer: dict[str, list[float]] = {n: [] for n in names[1:]}
    probe: dict[str, list[float]] = {n: [] for n in names[1:]}
    spreads: dict[str, list[float]] = {n: [] for n in names[1:]}
    reached = 0
    for r in range(rounds):
        rates = trainer_rates(data_spec, model, batch, steps, data,
                              names[r % len(names):] + names[: r % len(names)])
        o = option_speedups(config)
        reached += o.reached
        for i, name in enumerate(names[1:], start=1):
            trainer[name].append(rates[name] / rates["fp32"])
            probe[name].append(o.ratio[i])
            spreads[name].append(o.spread[i])
        print(f"  {case}, round {r + 1}: trainer "
              + ", ".join(f"{n} {trainer[n][-1]:.2f}x" for n in names[1:])
              + f"; probe ({o.rounds} rounds, {o.wall_time:.0f} s, spread "
              + ("reached" if o.reached else "NOT reached") + ") "
              + ", ".join(f"{n} {probe[n][-1]:.2f}x ±{spreads[n][-1]:.0%}" for n in names[1:]),
              file=sys.stderr, flush=True)
    rows = []
    for name in names[1:]:
        want, got = median(trainer[name]), median(probe[name])
        gap = got / want - 1
        rows.append([case, name, f"{want:.2f}x", f"{min(trainer[name]):.2f}-{max(trainer[name]):.2f}",
                     f"{got:.2f}x", f"{min(probe[name]):.2f}-{max(probe[name]):.2f}",
                     f"{median(spreads[name]):.0%}", f"{reached}/{rounds}", f"{gap:+.1%}",
                     "PASS" if abs(gap) <= AGREE else "FAIL"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="trainer steps per variant and round")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # small_cnn's module, by name
    set_threads(1)
    torch.manual_seed(0)
    print(machine_line(), flush=True)
    rows = [row for case in args.cases.split(",") for row in check(case, args.rounds, args.steps)]
    print()
    print_table(["case", "variant", "trainer", "trainer range", "probe", "probe range",
                 "probe spread (median)", "5% reached", "probe vs trainer", f"within {AGREE:.0%}"],
                rows)
    print(load_line())


if __name__ == "__main__":
    main()
