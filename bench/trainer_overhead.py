"""batchlab's trainer vs the minimal hand-written PyTorch loop: same model, data, seed, threads.

For each case (model x data x batch size) both contenders train the same model (built by
``batchlab.models.build_model`` right after ``torch.manual_seed(seed)``) on the same tensors
(``batchlab.data.load_dataset``) for the same number of epochs, with SGD (same lr, momentum)
and the batch order drawn from ``torch.Generator().manual_seed(seed)`` exactly as
``batchlab.train.loop`` does, so the loss curves should coincide.

Throughput is samples/s over training only: batchlab's ``summary["samples_per_s"]`` (its
training time excludes evaluation) and, for the hand loop, the time of its training loop. The
two are interleaved (the order alternates each repetition) and the medians are compared; the
ratio is the median of the per-repetition ratios batchlab/hand.

    python bench/trainer_overhead.py            # all cases, 1 torch thread (a few minutes)
    python bench/trainer_overhead.py --quick    # fewer cases, shorter measurements (< 60 s)
    python bench/trainer_overhead.py --threads 1 2
    python bench/trainer_overhead.py --clock cpu   # thread CPU time: robust on a busy machine
    python bench/trainer_overhead.py --profile lenet5:16   # cProfile one batchlab run

``--clock cpu`` (one thread only) times both contenders with ``time.thread_time``: batchlab's
trainer is handed a stand-in for its ``time`` module whose ``perf_counter`` is the thread's CPU
clock, so its own ``summary["samples_per_s"]`` covers exactly the same region as usual but no
longer counts the time other processes hold the core. Use it when the load average is high.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import math
import pstats
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from _common import (
    load_line,
    machine_line,
    median,
    metric_rows,
    print_table,
    run_config,
    set_threads,
    train_collect,
    trainer_cpu_clock,
)

from batchlab.data import Dataset, load_dataset
from batchlab.models import build_model
from batchlab.spec import DataSpec, ModelSpec, RunConfig

SEED = 0
LR = 0.01
MOMENTUM = 0.9
LOSS_TOLERANCE = 1e-4
WARMUP_S = 0.3
SYNTHETIC = {"name": "synthetic", "shape": [1, 28, 28], "classes": 10, "val_fraction": 0.05}
MNIST1D = {"name": "mnist1d", "size": 5000, "validation": "test"}  # 4000 train / 1000 test
# model -> (model spec, data spec). 5% of the synthetic examples are the (small) eval set. LeNet-5
# trains at ~800 samples/s on one core, so it gets fewer examples to keep an epoch near 2.5 s.
MODELS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mlp": ({"name": "mlp"}, {**SYNTHETIC, "size": 4096}),  # 3891 train / 205 validation
    "lenet5": ({"name": "lenet5"}, {**SYNTHETIC, "size": 2048}),  # 1945 train / 103 validation
    "cnn1d": ({"name": "cnn1d"}, MNIST1D),
}
QUICK_SIZES = {"lenet5": 1024}  # --quick: an epoch of LeNet-5 in ~1.2 s
BATCHES = (16, 64, 256, 1024)
QUICK_BATCHES = (16, 256)


clock = time.perf_counter  # the hand loop's clock; --clock cpu makes it time.thread_time


def target_ratio(batch: int) -> float:
    return 0.90 if batch < 64 else 0.95


@dataclass(frozen=True)
class Measure:
    samples_per_s: float
    final_loss: float  # mean training loss over the last epoch


def hand_loop(
    data: Dataset, model_spec: ModelSpec, batch: int, epochs: int, time_limit: float | None = None
) -> Measure:
    """The minimal loop a person writes: no .item() inside it, one at the end.

    ``time_limit`` (warm-up and sizing only) stops after the first step past that many seconds.
    """
    torch.manual_seed(SEED)
    model = build_model(model_spec, data.input_shape, data.num_classes)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    order = torch.Generator().manual_seed(SEED)
    x, y = data.train_x, data.train_y
    n = len(y)
    model.train()
    losses: list[torch.Tensor] = []
    seen = 0
    start = clock()
    for _ in range(epochs):
        losses = []
        perm = torch.randperm(n, generator=order)
        for i in range(0, n, batch):
            idx = perm[i : i + batch]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
            if time_limit is not None:
                seen += len(idx)
                if clock() - start > time_limit:
                    return Measure(seen / (clock() - start), math.nan)
    seconds = clock() - start
    # the mean in double precision over the float losses, exactly as done for batchlab's rows
    values = torch.stack(losses).tolist()
    return Measure(epochs * n / seconds, sum(values) / len(values))


def batchlab_config(model: str, data_spec: DataSpec, batch: int, length: dict[str, int]) -> RunConfig:
    """``length``: {"epochs": E} or {"steps": S}."""
    train = {"optimizer": "sgd", "lr": LR, "momentum": MOMENTUM, "batch_size": batch,
             "seed": SEED, "checkpoint": False, **length}
    return run_config(data_spec.model_dump(), MODELS[model][0], train)


def batchlab_loop(data: Dataset, data_spec: DataSpec, model: str, batch: int, epochs: int) -> Measure:
    ended, events = train_collect(batchlab_config(model, data_spec, batch, {"epochs": epochs}), data)
    spe = ended.summary["steps_per_epoch"]
    last_epoch = [v for s, v in metric_rows(events, "train_loss") if s > ended.steps - spe]
    return Measure(ended.summary["samples_per_s"], sum(last_epoch) / len(last_epoch))


def measure_case(
    data: Dataset, data_spec: DataSpec, model: str, batch: int, seconds: float, reps: int
) -> dict[str, Any]:
    """Warm up both, size the run to ~``seconds`` of training, then ``reps`` interleaved pairs."""
    model_spec = ModelSpec.model_validate(MODELS[model][0])
    n = len(data.train_y)
    warm = hand_loop(data, model_spec, batch, 1, time_limit=WARMUP_S)
    warm_steps = max(2, math.ceil(warm.samples_per_s * WARMUP_S / batch))
    train_collect(batchlab_config(model, data_spec, batch, {"steps": warm_steps}), data)
    epochs = max(1, math.ceil(seconds * warm.samples_per_s / n))
    hands: list[Measure] = []
    labs: list[Measure] = []
    for rep in range(reps):
        if rep % 2 == 0:
            hands.append(hand_loop(data, model_spec, batch, epochs))
            labs.append(batchlab_loop(data, data_spec, model, batch, epochs))
        else:
            labs.append(batchlab_loop(data, data_spec, model, batch, epochs))
            hands.append(hand_loop(data, model_spec, batch, epochs))
    ratios = [b.samples_per_s / h.samples_per_s for b, h in zip(labs, hands, strict=True)]
    hand_loss, lab_loss = hands[0].final_loss, labs[0].final_loss
    losses_agree = all(abs(b.final_loss - h.final_loss) <= LOSS_TOLERANCE
                       for b, h in zip(labs, hands, strict=True))
    return {
        "epochs": epochs,
        "hand": median([h.samples_per_s for h in hands]),
        "lab": median([b.samples_per_s for b in labs]),
        "ratio": median(ratios),
        "spread": f"{min(ratios):.2f}-{max(ratios):.2f}",
        "hand_loss": hand_loss,
        "lab_loss": lab_loss,
        "loss_diff": abs(hand_loss - lab_loss),
        "losses_agree": losses_agree,
    }


def data_spec_for(model: str, quick: bool) -> DataSpec:
    raw = dict(MODELS[model][1])
    if quick and model in QUICK_SIZES:
        raw["size"] = QUICK_SIZES[model]
    return DataSpec.model_validate(raw)


def run_table(threads: int, batches: tuple[int, ...], seconds: float, reps: int, quick: bool) -> bool:
    set_threads(threads)
    print(f"\n== torch threads: {threads}  (>= {seconds:g} s of training per contender per "
          f"repetition, {reps} repetitions interleaved, medians)")
    headers = ["case", "batch", "epochs", "hand samp/s", "batchlab samp/s", "ratio", "min-max", "target",
               "hand loss", "batchlab loss", "|diff|", "loss match", "result"]
    rows: list[list[Any]] = []
    all_pass = True
    for model in MODELS:
        data_spec = data_spec_for(model, quick)
        data = load_dataset(data_spec)
        n_train = len(data.train_y)
        for batch in batches:
            r = measure_case(data, data_spec, model, batch, seconds, reps)
            target = target_ratio(batch)
            ok = r["ratio"] >= target
            all_pass &= ok and r["losses_agree"]
            match = ("identical" if r["loss_diff"] == 0 else "yes") if r["losses_agree"] else "NO"
            rows.append([f"{model}/{data_spec.name} n={n_train}", batch, r["epochs"], r["hand"], r["lab"],
                         f"{r['ratio']:.3f}", r["spread"], f">= {target:.2f}", f"{r['hand_loss']:.6f}",
                         f"{r['lab_loss']:.6f}", f"{r['loss_diff']:.1e}", match,
                         "PASS" if ok else "FAIL"])
            print(f"  {model} batch {batch}: ratio {r['ratio']:.3f}", file=sys.stderr, flush=True)
    print_table(headers, rows)
    return all_pass


def profile(case: str, threads: int, seconds: float) -> None:
    """cProfile one batchlab run of ``model:batch`` sized to ~``seconds`` of training.

    Prints the top functions, then the per-step cost of what batchlab adds to the hand loop
    (the recorder, the LR schedule and setter; evaluation is outside the timed region).
    """
    model, _, batch_text = case.partition(":")
    batch = int(batch_text or 16)
    set_threads(threads)
    data_spec = data_spec_for(model, quick=False)
    data = load_dataset(data_spec)
    warm = hand_loop(data, ModelSpec.model_validate(MODELS[model][0]), batch, 1, time_limit=WARMUP_S)
    epochs = max(1, math.ceil(seconds * warm.samples_per_s / len(data.train_y)))
    profiler = cProfile.Profile()
    profiler.enable()
    batchlab_loop(data, data_spec, model, batch, epochs)
    profiler.disable()
    print(f"cProfile of batchlab {model} batch {batch}, {epochs} epochs, {threads} thread(s):")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(20)
    steps = epochs * math.ceil(len(data.train_y) / batch)
    print(f"batchlab's own per-step work over {steps} steps (cumulative, under the profiler):")
    wanted = ("recorder.py", "schedules.py", "optim.py", "loop.py")
    rows = []
    for (path, line, func), (_, calls, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if path.endswith(wanted) and "batchlab" in path:
            rows.append([f"{path.rsplit('/', 1)[-1]}:{line} {func}", calls, f"{cum:.4f}",
                         f"{cum / steps * 1e6:.2f}"])
    print_table(["function", "calls", "cum s", "us/step"], sorted(rows, key=lambda r: -float(r[2])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 16 and 256 only, short runs")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch thread counts")
    parser.add_argument("--seconds", type=float, default=None,
                        help="training seconds per contender per repetition (default 1.5, quick 0.4)")
    parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time by the thread's CPU clock (1 thread only; busy machines)")
    parser.add_argument("--profile", metavar="MODEL:BATCH", help="profile one batchlab run instead")
    args = parser.parse_args()
    if args.clock == "cpu" and args.threads != [1]:
        parser.error("--clock cpu needs --threads 1: other threads' CPU time is not counted")
    global clock
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    with trainer_cpu_clock() if args.clock == "cpu" else contextlib.nullcontext():
        return run(args)


def run(args: argparse.Namespace) -> int:
    seconds = args.seconds if args.seconds is not None else (0.4 if args.quick else 1.5)
    print(machine_line())
    print(f"clock: {args.clock} ({'thread CPU time' if args.clock == 'cpu' else 'wall time'})")
    if args.profile:
        profile(args.profile, args.threads[0], seconds)
        return 0
    batches = QUICK_BATCHES if args.quick else BATCHES
    ok = all([run_table(t, batches, seconds, args.reps, args.quick) for t in args.threads])
    print(f"\noverall: {'PASS' if ok else 'FAIL'} (ratio >= 0.95 at batch >= 64, >= 0.90 at batch 16;"
          f" final losses within {LOSS_TOLERANCE:g})")
    print(f"at the end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
