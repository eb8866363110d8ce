"""What ``train.precision`` and ``train.channels_last`` would buy on the user's model.

At one batch size, each variant — fp32 (the reference), channels_last, bf16 autocast, bf16 +
channels_last, and on CUDA fp16 (with its grad scaler) — trains its own fresh copy of the
model (``probes.common.fresh_setup``) with the trainer's own step (``train.accumulate``,
``train.precision``; the config's accumulation applies), is warmed up (``warmup_steps``: the
first bf16/channels_last steps build their kernels), and then timed in ``windows`` windows of
``window_seconds``. The windows are *interleaved* across variants (window 1 of each, then
window 2 of each, ...), so load on a shared machine slows them alike and the ratios stay
meaningful; each variant's samples/s is the median of its windows.

Variants that cannot apply are listed with the reason instead of a number: channels_last on
inputs that are not images (``train.precision.check_channels_last``), a dtype this torch
cannot autocast on the device. An out-of-memory error in a variant is recorded the same way.

Cost: ``variants * windows * window_seconds`` of timed training plus the warm-up steps and
each variant's setup: with the defaults (4 variants on CPU, 2 warm-up steps, 5 windows of
0.1 s) about 2-3 s at a batch whose step is shorter than a window. A window holds at least one
step, so a step slower than that costs ``variants * (warmup_steps + windows)`` steps.
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
from batchlab.probes.throughput import timed_window
from batchlab.spec import RunConfig
from batchlab.train.accumulate import accumulate_gradients
from batchlab.train.inputs import RunInputs

#: (label, precision, channels_last); fp16 only where a GPU makes it worth timing
VARIANTS = (("fp32", "fp32", False), ("channels_last", "fp32", True),
            ("bf16 autocast", "bf16", False), ("bf16 + channels_last", "bf16", True))
CUDA_VARIANTS = (("fp16 autocast + grad scaler", "fp16", False),)


@dataclass(frozen=True)
class OptionsResult:
    """Samples/s per variant at ``batch_size`` (None where it did not apply: ``skipped``
    says why), its ratio to fp32, and the spread of its windows ((max - min) / median)."""

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

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def lines(self) -> list[str]:
        """One line per variant, e.g. 'bf16 autocast: 1.84x samples/s (1,382 vs 751 in fp32)'."""
        base = self.samples_per_s[0]
        out = []
        for label, rate, ratio in zip(self.labels[1:], self.samples_per_s[1:], self.ratio[1:],
                                      strict=True):
            if rate is None or ratio is None or base is None:
                out.append(f"{label}: not measured ({self.skipped.get(label, 'fp32 failed')})")
            else:
                out.append(f"{label}: {ratio:.2f}x samples/s ({rate:,.0f} vs {base:,.0f} in fp32) "
                           f"at batch {self.batch_size}")
        return out


def option_speedups(config: RunConfig, *, batch_size: int | None = None, warmup_steps: int = 2,
                    windows: int = 5, window_seconds: float = 0.1,
                    model: nn.Module | None = None,
                    inputs: RunInputs | None = None) -> OptionsResult:
    """Time the precision / memory-format variants of ``config``'s training step (module doc).

    ``batch_size``: default ``config.train.batch_size``. ``model``/``inputs``: as for the other
    probes (the caller's module is never touched). torch's global RNG state is unchanged.
    Raises ProbeError for bad settings and when a variant fails with an error that is not an
    out-of-memory error (quoting it).
    """
    if warmup_steps < 0 or windows < 1 or not window_seconds > 0:
        raise ProbeError(f"need warmup_steps >= 0, windows >= 1 and window_seconds > 0; got "
                         f"{warmup_steps}, {windows} and {window_seconds}.")
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
        rates: dict[str, list[float]] = {label: [] for label in steps}
        for _ in range(windows):
            for label, step in steps.items():
                n, dt = timed_window(step, device, window_seconds, None)
                rates[label].append(n * batch / max(dt, 1e-9))
    labels = [label for label, _, _ in variants]
    per = [median(rates[label]) if label in rates else None for label in labels]
    base = per[0]
    return OptionsResult(
        batch_size=batch, labels=labels, samples_per_s=per,
        ratio=[None if r is None or base is None else r / base for r in per],
        spread=[window_spread(rates[label]) if label in rates else None for label in labels],
        skipped=skipped, device=str(device),
        settings={"warmup_steps": warmup_steps, "windows": windows,
                  "window_seconds": window_seconds, "micro_batch_size": micro},
        wall_time=time.perf_counter() - t0)


def _variant_step(config: RunConfig, data: Any, batch: int, micro: int, precision: str,
                  channels_last: bool, model: nn.Module | None,
                  inputs: RunInputs | None) -> Callable[[], None]:
    """The trainer's step for one variant, on a fresh model and optimizer of its own."""
    train = config.train.model_copy(update={"precision": precision, "channels_last": channels_last})
    # fresh_setup applies both as the trainer does (SpecError where one cannot apply)
    setup = fresh_setup(config.model_copy(update={"train": train}), data, model=model, inputs=inputs)
    opt = setup_optimizer(setup, batch)
    batches = setup_batches(setup, batch, torch.Generator().manual_seed(setup.seed))

    def step() -> None:
        xb, yb = next(batches)
        opt.zero_grad(set_to_none=True)
        accumulate_gradients(setup.model, setup.loss_fn, xb, yb, micro, setup.precision)
        setup.precision.step(opt)

    return step


def _micro_batch(config: RunConfig, batch: int) -> int:
    """The config's accumulation applied at ``batch``: its micro_batch_size (a short last part
    is fine for timing), or ``batch / accumulate`` when that divides, else no split."""
    t = config.train
    if t.micro_batch_size is not None:
        return min(t.micro_batch_size, batch)
    return batch // t.accumulate if batch % t.accumulate == 0 else batch
