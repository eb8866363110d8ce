"""What ``train.precision`` and ``train.channels_last`` would buy on the user's model.

At one batch size, each variant — fp32 (the reference), channels_last, bf16 autocast, bf16 +
channels_last, and on CUDA fp16 (with its grad scaler) — trains its own fresh copy of the
model (``probes.common.fresh_setup``) with the trainer's own step (``train.accumulate``,
``train.precision``; the config's accumulation applies), is warmed up (``warmup_steps``: the
first bf16/channels_last steps build their kernels), and then timed in rounds of windows of
``window_seconds``: one window of each variant per round, back to back, so load on a shared
machine slows them alike; each window follows one untimed step of its variant, so it times
the warm steady state the trainer runs in, not the first step after another model's. Each
round gives each variant a ratio to fp32; the reported ratio is their median (quoted with the
samples/s of the round it comes from, which agree with it), and rounds are
added until every ratio's spread (the width of its 95 % confidence interval,
``probes.repeat``) is at most ``max_spread`` (5 %), at least ``windows`` rounds and at most
``max_windows`` or ``max_seconds`` of them; then ``reached`` says whether the spread was
reached. Each variant's samples/s is the median of its windows. On the CPU with one torch
thread (``train.threads = 1``) the windows are timed in that thread's CPU time
(``window_clock``): with other work on the machine, wall-clock windows measure that work.

Variants that cannot apply are listed with the reason instead of a number: channels_last on
inputs that are not images (``train.precision.check_channels_last``), a dtype this torch
cannot autocast on the device. An out-of-memory error in a variant is recorded the same way.

Cost: ``variants * rounds * window_seconds`` of timed training plus the warm-up steps and
each variant's setup: on a quiet machine the 5 first rounds (4 variants on CPU, 0.1 s windows)
usually agree, about 2-3 s in all at a batch whose step is shorter than a window; on a busy
one the rounds go on, up to ``max_seconds`` (20 s). A window holds at least one step, and
follows one more, so ``windows`` rounds cost at least ``2 * variants * windows`` steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import median
from typing import Any

import torch
from torch import nn

from batchlab.errors import BatchlabError, DataError
from batchlab.probes.common import ProbeError, check_batch_fits, fresh_setup, isolated_rng, load_probe_data
from batchlab.probes.knee import window_spread
from batchlab.probes.memory import (
    is_oom,
    probe_device,
    release_memory,
    setup_batches,
    setup_optimizer,
)
from batchlab.probes.repeat import MAX_ROUNDS, MAX_SECONDS, MAX_SPREAD, Window, decide
from batchlab.probes.throughput import timed_window
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.step import make_train_step

#: (label, precision, channels_last); fp16 only where a GPU makes it worth timing
VARIANTS = (("fp32", "fp32", False), ("channels_last", "fp32", True),
            ("bf16 autocast", "bf16", False), ("bf16 + channels_last", "bf16", True))
CUDA_VARIANTS = (("fp16 autocast + grad scaler", "fp16", False),)


@dataclass(frozen=True)
class OptionsResult:
    """Samples/s per variant at ``batch_size`` (None where it did not apply: ``skipped``
    says why; the median of its windows), its ratio to fp32 (the median of the rounds'
    ratios) and that ratio's spread (``probes.repeat``; fp32's own: its windows' (max - min)
    / median). ``rounds`` were timed; ``reached``: every ratio's spread is within
    ``settings["max_spread"]``. ``window_rates``: samples/s of every window, per variant."""

    batch_size: int
    labels: list[str]
    samples_per_s: list[float | None]
    ratio: list[float | None]
    spread: list[float | None]
    skipped: dict[str, str]
    device: str
    settings: dict[str, Any]
    wall_time: float
    notes: list[str] = field(default_factory=list)
    rounds: int = 0
    reached: bool = True
    window_rates: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def lines(self) -> list[str]:
        """One line per variant, e.g. 'bf16 autocast: 1.84x samples/s at batch 128 (median of 5
        rounds, each timed beside fp32; median round: 1,382 vs 751 in fp32), spread 3%', then
        one saying so when the spread was not reached.

        The numbers quoted beside the ratio are those of the round(s) the median ratio comes
        from (the middle one, or the two middle ones of an even count, whose ratios average to
        it), so they agree with it. The medians of each variant's windows
        (``samples_per_s``) need not: on a loaded machine they come from different rounds, and
        their quotient can be far from the paired ratio (396 vs 313 beside 1.04x)."""
        base = self.samples_per_s[0]
        out = []
        for label, rate, ratio, spread in zip(self.labels[1:], self.samples_per_s[1:],
                                              self.ratio[1:], self.spread[1:], strict=True):
            if rate is None or ratio is None or base is None:
                out.append(f"{label}: not measured ({self.skipped.get(label, 'fp32 failed')})")
                continue
            middle = _middle_rounds(self.window_rates.get(label, []),
                                    self.window_rates.get("fp32", []))
            n = len(self.window_rates.get(label, []))
            pairs = " and ".join(f"{v:,.0f} vs {f:,.0f}" for v, f in middle)
            which = "median round" if len(middle) == 1 else "the two middle rounds"
            rounds = (f"median of {n} rounds, each timed beside fp32; {which}: {pairs} in fp32"
                      if middle else f"{rate:,.0f} vs {base:,.0f} in fp32")
            out.append(f"{label}: {ratio:.2f}x samples/s at batch {self.batch_size} ({rounds}), "
                       f"spread {_percent(spread)}")
        if not self.reached:
            limit = self.settings.get("max_spread", MAX_SPREAD)
            out.append(f"could not reach a spread of {limit:.0%} in {self.rounds} rounds "
                       f"({self.wall_time:.0f} s): other work on the machine moves the timings, so "
                       "read each ratio as uncertain by its spread; measure again when the machine "
                       "is quieter, or with fewer threads.")
        return out


def option_speedups(config: RunConfig, *, batch_size: int | None = None, warmup_steps: int = 2,
                    windows: int = 5, window_seconds: float = 0.1,
                    max_spread: float = MAX_SPREAD, max_windows: int = MAX_ROUNDS,
                    max_seconds: float = MAX_SECONDS,
                    model: nn.Module | None = None,
                    inputs: RunInputs | None = None) -> OptionsResult:
    """Time the precision / memory-format variants of ``config``'s training step (module doc).

    ``batch_size``: default ``config.train.batch_size``. ``windows``: rounds measured at least;
    then more until every ratio's spread is at most ``max_spread``, or ``max_windows`` rounds or
    ``max_seconds`` of timing are spent (``probes.repeat.decide``). ``model``/``inputs``: as for
    the other probes (the caller's module is never touched). torch's global RNG state is
    unchanged. Raises ProbeError for bad settings and when a variant fails with an error that
    is not an out-of-memory error (quoting it).
    """
    if (warmup_steps < 0 or windows < 1 or not window_seconds > 0 or max_windows < windows
            or not max_spread > 0 or not max_seconds >= 0):
        raise ProbeError(f"need warmup_steps >= 0, windows >= 1, window_seconds > 0, "
                         f"max_windows >= windows, max_spread > 0 and max_seconds >= 0; got "
                         f"{warmup_steps}, {windows}, {window_seconds}, {max_windows}, "
                         f"{max_spread} and {max_seconds}.")
    t0 = time.perf_counter()
    batch = batch_size or config.train.batch_size
    device = probe_device(config)
    data = load_probe_data(config, inputs)
    check_batch_fits(len(data.train_y), batch)
    micro = _micro_batch(config, batch)
    variants = VARIANTS + (CUDA_VARIANTS if device.type == "cuda" else ())
    steps: dict[str, Callable[[], None]] = {}
    skipped: dict[str, str] = {}
    with isolated_rng():
        for label, precision, channels_last in variants:
            try:
                steps[label] = _variant_step(config, data, batch, micro, precision, channels_last,
                                             model, inputs)
                for _ in range(warmup_steps):
                    steps[label]()
            except DataError:  # a bad file of streamed data: the user's to fix, not a skip
                raise
            except BatchlabError as err:  # does not apply here (not images, no such dtype)
                skipped[label] = str(err)
                steps.pop(label, None)
            except Exception as err:
                if not is_oom(err):
                    raise ProbeError(f"the {label} variant of a training step at batch size "
                                     f"{batch} failed with {type(err).__name__}: {err}.") from err
                skipped[label] = f"out of memory: {str(err).splitlines()[0][:200]}"
                steps.pop(label, None)
        if skipped:
            release_memory(device)
        measured: dict[str, list[Window]] = {label: [] for label in steps}
        clock, clock_name = window_clock(device)
        started = time.perf_counter()
        while measured:
            for label, step in steps.items():
                # one untimed step first: the window before ran another variant, whose model
                # and optimizer state pushed this one's out of the caches, while the trainer
                # runs one model step after step (untimed, a cold step made fast variants'
                # ratios read 10-30 % low against the trainer's on a busy machine)
                step()
                measured[label].append(timed_window(step, device, window_seconds, None, clock))
            if "fp32" in measured:
                stop = decide(measured, "fp32", time.perf_counter() - started,
                              max_spread=max_spread, min_rounds=windows, max_rounds=max_windows,
                              max_seconds=max_seconds).stop
            else:  # fp32 itself failed (out of memory): no ratio to settle, the minimum will do
                stop = len(next(iter(measured.values()))) >= windows
            if stop:
                break
    labels = [label for label, _, _ in variants]
    rates = {label: [n * batch / max(dt, 1e-9) for n, dt in w] for label, w in measured.items()}
    ratio, spread, reached = _ratios(measured, rates, labels, max_spread)
    return OptionsResult(
        batch_size=batch, labels=labels,
        samples_per_s=[median(rates[label]) if label in rates else None for label in labels],
        ratio=ratio, spread=spread, skipped=skipped, device=str(device),
        settings={"warmup_steps": warmup_steps, "windows": windows,
                  "window_seconds": window_seconds, "max_spread": max_spread,
                  "max_windows": max_windows, "max_seconds": max_seconds,
                  "micro_batch_size": micro, "clock": clock_name},
        wall_time=time.perf_counter() - t0, rounds=len(next(iter(measured.values()), [])),
        reached=reached, window_rates=rates)


def window_clock(device: torch.device) -> tuple[Callable[[], float], str]:
    """What the windows are timed with: on the CPU with one torch thread, that thread's CPU
    time (all the step's work runs in it, and time other processes hold the core is not
    counted, so a busy shared machine does not move the ratios); else the wall clock."""
    if device.type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time, "cpu time of the one torch thread"
    return time.perf_counter, "wall"


def _ratios(measured: dict[str, list[Window]], rates: dict[str, list[float]], labels: list[str],
            max_spread: float) -> tuple[list[float | None], list[float | None], bool]:
    """Per label: the median of the rounds' ratios to fp32 and its spread (fp32's own: its
    windows' spread; None where not measured), and whether every spread is within the limit."""
    if "fp32" not in measured:  # fp32 itself failed: no ratios, only each variant's windows
        return ([None] * len(labels),
                [window_spread(rates[label]) if label in rates else None for label in labels], True)
    final = decide(measured, "fp32", 0.0, max_spread=max_spread)
    ratio: list[float | None] = [None if label not in rates else final.ratios.get(label, 1.0)
                                 for label in labels]
    spread: list[float | None] = [None if label not in rates else final.spreads.get(
        label, window_spread(rates[label])) for label in labels]
    return ratio, spread, final.reached


def _variant_step(config: RunConfig, data: Any, batch: int, micro: int, precision: str,
                  channels_last: bool, model: nn.Module | None,
                  inputs: RunInputs | None) -> Callable[[], None]:
    """The trainer's step for one variant, on a fresh model and optimizer of its own."""
    train = config.train.model_copy(update={"precision": precision, "channels_last": channels_last})
    # fresh_setup applies both as the trainer does (SpecError where one cannot apply)
    setup = fresh_setup(config.model_copy(update={"train": train}), data, model=model, inputs=inputs)
    opt = setup_optimizer(setup, batch)
    batches = setup_batches(setup, batch, torch.Generator().manual_seed(setup.seed))

    # the loop's own update (a BatchNorm model's short last micro-batch joins the one before)
    train_step = make_train_step(setup.model, setup.loss_fn, opt, batch, micro, setup.precision)

    def step() -> None:
        train_step(*next(batches))

    return step


def _middle_rounds(rates: list[float], reference: list[float]) -> list[tuple[float, float]]:
    """The (variant, fp32) samples/s of the round(s) whose ratio is the median of the rounds'
    ratios: the middle one, or the two middle ones of an even count; [] without rounds."""
    rounds = sorted(zip(rates, reference, strict=False), key=lambda vf: vf[0] / vf[1])
    n = len(rounds)
    return [] if n == 0 else rounds[(n - 1) // 2:n // 2 + 1]


def _percent(spread: float | None) -> str:
    return "unknown (one round)" if spread is None or spread == float("inf") else f"{spread:.0%}"


def _micro_batch(config: RunConfig, batch: int) -> int:
    """The config's accumulation applied at ``batch``: its micro_batch_size (a short last part
    is fine for timing), or ``batch / accumulate`` when that divides, else no split."""
    t = config.train
    if t.micro_batch_size is not None:
        return min(t.micro_batch_size, batch)
    return batch // t.accumulate if batch % t.accumulate == 0 else batch
