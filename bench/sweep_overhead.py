"""A whole 12-run sweep through batchlab vs the same 12 runs in a plain hand-written loop.

The sweep: the zoo MLP on scikit-learn's digits (1437 train / 360 validation), batch size
{16, 32, 64, 128} x LR {0.01, 0.03, 0.1}, SGD momentum 0.9, 10 epochs, 1 torch thread. Five
contenders, each timed from start to finish of the whole sweep, wall clock:

* ``hand``: what a person writes: load the data once, then per run build the model (seeded),
  train with random-permutation batches (each gathered with ``x[perm[i : i + b]]``), keep the
  losses as tensors, evaluate the validation set after every epoch, keep the final numbers in
  a list. The target is against this one;
* ``hand, gather per epoch``: the same loop with batchlab's memory-path batching: the epoch's
  rows copied once in permutation order and the batches sliced from that copy (the same
  numbers, fewer copies);
* ``hand, same work``: that loop also measuring what batchlab measures and the plain loop does
  not: the untrained model before the first step, and train loss/accuracy in eval mode on the
  same fixed train subset at every evaluation (``bench/train_subset.py`` shows why that subset
  cannot be smaller). batchlab over this one is the cost of its machinery alone (store, rows,
  checkpoints, planning);
* ``batchlab``: ``run_sweep`` into a fresh store in a temporary folder with
  ``InlineExecutor(threads=1)`` (``batchlab sweep --workers 1`` without the progress bars):
  planning, preflight, training, evaluation (validation and train accuracy), every row in
  SQLite, and checkpoints (``train.checkpoint = true``, the default);
* ``batchlab, no checkpoints``: the same with ``train.checkpoint = false``.

The contenders are interleaved (the order rotates each repetition); a ratio is the median of
the per-repetition ratios contender / hand. Each sweep is timed twice: wall clock, and the
process's CPU time (``time.process_time``: with one torch thread it is the work done, and it
does not count the time other processes hold the cores, so it is the steadier number on a
busy machine; it misses only time spent waiting on the disk). Checkpoint writes in the checkpointed sweep are
counted and timed (their share of that sweep is printed). Target (issue 9): batchlab with
checkpoints <= 1.05x the hand loop.

    python bench/sweep_overhead.py            # 5 repetitions (~2 minutes)
    python bench/sweep_overhead.py --reps 9   # steadier on a busy machine
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _common import CallTimer, load_line, machine_line, median, print_table, set_threads

import batchlab.train.loop as loop
from batchlab.data import load_dataset
from batchlab.events import COMPLETED
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.models import build_model
from batchlab.spec import Spec, spec_from_dict
from batchlab.store import Store

TARGET = 1.05
BATCHES = (16, 32, 64, 128)
LRS = (0.01, 0.03, 0.1)
EPOCHS = 10
MOMENTUM = 0.9
SEED = 0


def sweep_spec(checkpoint: bool, epochs: int) -> Spec:
    return spec_from_dict({
        "name": "sweep-overhead",
        "data": {"name": "digits"},
        "model": {"name": "mlp"},
        "train": {"optimizer": "sgd", "momentum": MOMENTUM, "epochs": epochs, "seed": SEED,
                  "threads": 1, "device": "cpu", "checkpoint": checkpoint},
        "sweep": {"grid": {"train.batch_size": list(BATCHES), "train.lr": list(LRS)}},
    })


Clock = tuple[float, float]  # (wall seconds, process CPU seconds)


def clocks() -> Clock:
    return time.perf_counter(), time.process_time()


def since(start: Clock) -> Clock:
    now = clocks()
    return now[0] - start[0], now[1] - start[1]


def hand_sweep(spec: Spec, epochs: int, same_evaluations: bool = False,
               gather_per_epoch: bool = False) -> Clock:
    """(wall, CPU) seconds of the 12 runs written by hand (data loaded once, as a script would).

    ``same_evaluations``: also measure what batchlab measures beyond the plain loop: the
    untrained model before the first step, and train loss/accuracy in eval mode on the same
    fixed train subset (``train_eval_size`` rows) at every evaluation. ``gather_per_epoch``:
    copy the epoch's rows in permutation order once and slice the batches from that copy, as
    batchlab's memory path does, instead of gathering each batch (``x[perm[i : i + b]]``)."""
    start = clocks()
    data = load_dataset(spec.data)
    x, y, vx, vy = data.train_x, data.train_y, data.val_x, data.val_y
    rows = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[
        : loop.train_eval_size(len(y), len(vy))]
    sets = [(vx, vy), (x[rows], y[rows])] if same_evaluations else [(vx, vy)]

    def evaluate(model: torch.nn.Module) -> list[tuple[float, float]]:
        model.eval()
        with torch.no_grad():
            out = []
            for ex, ey in sets:
                logits = model(ex)
                out.append((F.cross_entropy(logits, ey).item(),
                            (logits.argmax(1) == ey).float().mean().item()))
        return out
    results: list[dict[str, Any]] = []
    for batch in BATCHES:
        for lr in LRS:
            torch.manual_seed(SEED)
            model = build_model(spec.model, data.input_shape, data.num_classes)
            optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=MOMENTUM)
            order = torch.Generator().manual_seed(SEED)
            losses: list[torch.Tensor] = []
            val = [evaluate(model)] if same_evaluations else []
            for _ in range(epochs):
                model.train()
                perm = torch.randperm(len(y), generator=order)
                if gather_per_epoch:
                    xs, ys = x.index_select(0, perm), y.index_select(0, perm)
                for i in range(0, len(y), batch):
                    if gather_per_epoch:
                        xb, yb = xs[i : i + batch], ys[i : i + batch]
                    else:
                        idx = perm[i : i + batch]
                        xb, yb = x[idx], y[idx]
                    loss = F.cross_entropy(model(xb), yb)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.detach())
                val.append(evaluate(model))
            results.append({"batch": batch, "lr": lr, "losses": torch.stack(losses).tolist(),
                            "val": val})
    return since(start)


@dataclass(frozen=True)
class LabSweep:
    took: Clock
    saves: int  # checkpoint writes
    save_s: float  # wall seconds in them
    eval_cpu_s: float  # CPU seconds in evaluation (validation and the train subset)


def batchlab_sweep(spec: Spec) -> LabSweep:
    """One sweep into a fresh store: its clocks, its checkpoint writes, its evaluation time."""
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        with (Store(Path(tmp) / "sweep.db") as store, CallTimer(loop, "save_checkpoint") as saves,
              CallTimer(loop, "evaluate_batches", clock=time.process_time) as evals):
            start = clocks()
            outcome = run_sweep(spec, store, InlineExecutor(threads=1))
            took = since(start)
    statuses = [r.status for r in outcome.records]
    if outcome.skipped or statuses != [COMPLETED] * len(BATCHES) * len(LRS):
        raise RuntimeError(f"expected {len(BATCHES) * len(LRS)} fresh completed runs, got "
                           f"skipped={outcome.skipped} {statuses}")
    return LabSweep(took, saves.calls, saves.seconds, evals.seconds)


def median_interval(values: list[float], draws: int = 2000) -> tuple[float, float]:
    """A 95 % bootstrap interval of the median of ``values`` (per-repetition ratios): how far
    this run's median may sit from the machine's, given the spread between repetitions."""
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(values, size=(draws, len(values))), axis=1)
    return float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs per run")
    args = parser.parse_args()
    set_threads(1)
    specs = {"batchlab": sweep_spec(True, args.epochs),
             "batchlab, no checkpoints": sweep_spec(False, args.epochs)}
    print(machine_line())
    print(f"sweep: {len(BATCHES) * len(LRS)} runs of the mlp on digits, batch {BATCHES} x lr {LRS}, "
          f"{args.epochs} epochs, 1 thread; {args.reps} repetitions, order rotated")
    # warm-up, untimed: imports (scikit-learn for digits), first-call costs, the data cache
    hand_sweep(specs["batchlab"], 1)
    batchlab_sweep(sweep_spec(True, 1))
    names = ["hand", "hand, gather per epoch", "hand, same work", *specs]
    took: dict[str, list[Clock]] = {n: [] for n in names}
    saves: list[tuple[int, float]] = []
    eval_share: list[float] = []
    for rep in range(args.reps):
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            if name.startswith("hand"):
                took[name].append(hand_sweep(specs["batchlab"], args.epochs,
                                             same_evaluations=name == "hand, same work",
                                             gather_per_epoch=name != "hand"))
            else:
                lab = batchlab_sweep(specs[name])
                took[name].append(lab.took)
                eval_share.append(lab.eval_cpu_s / lab.took[1])
                if name == "batchlab":
                    saves.append((lab.saves, lab.save_s / lab.took[0]))
            wall, cpu = took[name][-1]
            print(f"  rep {rep + 1}: {name:25s} wall {wall:6.2f} s  cpu {cpu:6.2f} s",
                  file=sys.stderr, flush=True)

    def ratios(name: str, k: int, base: str = "hand") -> list[float]:
        return [a[k] / h[k] for a, h in zip(took[name], took[base], strict=True)]

    rows = []
    for name in names:
        row: list[Any] = [name]
        for k in (0, 1):
            r = ratios(name, k)
            row += [f"{median([c[k] for c in took[name]]):.2f}", f"{median(r):.3f}",
                    f"{min(r):.2f}-{max(r):.2f}"]
        rows.append(row)
    print()
    print_table(["contender", "wall s", "wall x hand", "min-max", "cpu s", "cpu x hand", "min-max"],
                rows)
    calls = median([c for c, _ in saves])
    share = median([s for _, s in saves])
    print(f"\ncheckpoint writes per checkpointed sweep: {calls:g} ({calls / 12:.1f} per run), "
          f"{share:.1%} of its wall time (median)")
    print(f"evaluation (validation + train subset after every epoch): {median(eval_share):.1%} of "
          "batchlab's CPU time (median); the hand loop evaluates the validation set only")
    for k, clock_name in ((0, "wall"), (1, "cpu")):
        r = ratios("batchlab", k)
        low, high = median_interval(r)
        print(f"batchlab with checkpoints, {clock_name}: {median(r):.3f}x the hand loop "
              f"(95 % interval of the median {low:.3f}-{high:.3f}; target <= {TARGET}x) "
              f"{'PASS' if median(r) <= TARGET else 'FAIL'}")
    machinery = median(ratios("batchlab", 1, "hand, same work"))
    print(f"batchlab with checkpoints over the hand loop doing the same work (batches gathered "
          f"per epoch, the same evaluations), cpu: {machinery:.3f}x (the store, rows, "
          "checkpoints and planning)")
    print(f"at the end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
