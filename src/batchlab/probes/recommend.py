"""Recommend a batch size, LR and warm-up from the probes, with the numbers behind it.

The model (McCandlish et al. 2018): the steps to reach a target fall with batch size as
S(B) = S_min (1 + B_noise / B), where B_noise is the gradient noise scale. A step at batch B
takes B / T(B) seconds with T the measured throughput (samples/s), so the time to target is

    time(B) = S_min (1 + B_noise / B) * B / T(B) = S_min (B + B_noise) / T(B).

Without a measured S_min the times are relative (the fastest batch size that fits = 1.0); with
one (from a sweep that reached the target) they are in seconds.

The same model says what a batch costs in examples: S(B) B = S_min (B + B_noise), so batch B
needs (B + B_noise) / (B_user + B_noise) times the examples (epochs) of the user's batch to
reach the same target. A batch far above B_noise is fast per example but needs many more of
them; trained for the user's epochs it ends short of the target. So the batch size chosen is
the fastest among those that fit in memory *and* reach the target within the user's epochs
(at most EXAMPLES_SLACK times their examples); a faster one that needs more epochs is named,
with how many more. (On the judgement bench, ``recommend`` had moved to the fastest batch
whatever its examples, and those runs, trained for the user's epochs, ended below the grid's
best at the user's batch.) Its LR comes from the LR suggestion at that batch size (or the
square-root rule when none can be made), and a warm-up is advised when that LR is far above the
LR at the user's batch size, as Goyal et al. (2017) do for large-batch training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from batchlab.jsonsafe import json_safe
from batchlab.probes.common import ProbeError
from batchlab.probes.plotting import Plottable
from batchlab.spec import RunConfig
from batchlab.train.inputs import RunInputs
from batchlab.train.scaling import scaled_lr
from batchlab.train.schedules import run_length, steps_per_epoch

WARMUP_LR_RATIO = 4.0  # LR this many times the one at the user's batch size: warm up first
WARMUP_FRACTION = 0.05  # of the run's steps (Goyal et al. warm up for 5 of 90 epochs)
#: the most examples a chosen batch may need, relative to the user's batch, to reach the
#: same target: the noise scale is measured early in training, and within a tenth the
#: prediction cannot tell two batch sizes apart
EXAMPLES_SLACK = 1.1


@dataclass(frozen=True)
class Prediction:
    batch_size: int
    samples_per_s: float
    steps_factor: float  # S(B) / S_min = 1 + B_noise / B
    relative_time: float  # time(B) / min over candidates
    seconds: float | None  # with a measured S_min
    fits: bool
    examples_factor: float = 1.0  # examples to target / the user's batch's: (B + B_noise) / (B_u + B_noise)


def predict_times(batch_sizes: Sequence[int], samples_per_s: Sequence[float], b_noise: float,
                  largest_fitting: int | None = None,
                  s_min: float | None = None, user_batch: int | None = None) -> list[Prediction]:
    """Predicted time to target per batch size (pure). Batch sizes above ``largest_fitting``
    are kept for the figure but marked as not fitting and never chosen. ``user_batch``: the
    batch the examples factors are relative to (None: every factor 1, no constraint)."""
    if b_noise <= 0 or not math.isfinite(b_noise):
        raise ProbeError(f"the gradient noise scale must be a positive number (got {b_noise}); "
                         "measure it on more steps (--noise-steps).")
    raw = [(b + b_noise) / t if t > 0 else math.inf for b, t in zip(batch_sizes, samples_per_s,
                                                                    strict=True)]
    fits = [largest_fitting is None or b <= largest_fitting for b in batch_sizes]
    best = min((r for r, f in zip(raw, fits, strict=True) if f), default=math.inf)
    if not math.isfinite(best):
        raise ProbeError("no measured batch size fits in memory; lower --memory-limit's "
                         "demands (a smaller model or input) or raise the limit.")
    return [Prediction(b, t, 1 + b_noise / b, r / best, s_min * r if s_min else None, f,
                       (b + b_noise) / (user_batch + b_noise) if user_batch else 1.0)
            for b, t, r, f in zip(batch_sizes, samples_per_s, raw, fits, strict=True)]


def within_epochs(p: Prediction) -> bool:
    """Whether batch ``p`` is predicted to reach the target within the user's epochs."""
    return p.examples_factor <= EXAMPLES_SLACK


def choose(predictions: Sequence[Prediction]) -> Prediction:
    """The fitting batch size with the least predicted time among those that reach the target
    within the user's epochs (ties: the smaller batch); when none does (the user's batch was not
    measured and every measured one is larger), the fitting one that needs the fewest examples."""
    fitting = [p for p in predictions if p.fits]
    eligible = [p for p in fitting if within_epochs(p)]
    if eligible:
        return min(eligible, key=lambda p: (p.relative_time, p.batch_size))
    return min(fitting, key=lambda p: (p.examples_factor, p.batch_size))


def lr_source(strategy: str, batch_size: int) -> str:
    """What produced an LR suggestion of ``strategy`` at ``batch_size``, in words: the default
    ``horizon`` strategy trains miniatures of the run and runs no range test, ``trial`` trains
    short constant-LR trials, only the curve rules read the LR range test alone."""
    from batchlab.probes.lr_search import HORIZON, TRIAL

    if strategy == HORIZON:
        return f"miniatures of your run at batch {batch_size}, compared by successive halving"
    if strategy == TRIAL:
        return f"constant-LR trials at batch {batch_size}, below the LR range test's minimum"
    return f"LR range test at batch {batch_size}, '{strategy}' rule"


def warmup_steps(lr: float, reference_lr: float, total_steps: int) -> int:
    """Linear warm-up length advised for ``lr``: none unless it is WARMUP_LR_RATIO x above the
    LR that trains well at the user's batch size; then WARMUP_FRACTION of the run."""
    if reference_lr <= 0 or lr / reference_lr < WARMUP_LR_RATIO:
        return 0
    return max(1, round(WARMUP_FRACTION * total_steps))


@dataclass(frozen=True)
class Recommendation(Plottable):
    KIND: ClassVar[str] = "recommend"

    batch_size: int
    lr: float
    lr_source: str
    warmup_steps: int
    b_noise: float
    b_noise_ci: tuple[float, float]
    largest_fitting: int | None
    knee: int | None
    predictions: list[Prediction]
    explanation: list[str]
    probes: dict[str, Any] = field(default_factory=dict)  # each probe's to_dict()
    devices: int = 1  # train.devices: batch_size and largest_fitting are global batches

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (non-finite floats become None) for ``Store.add_probe(..., "recommend", ...)``."""
        d = asdict(self)
        d["batch_sizes"] = [p.batch_size for p in self.predictions]
        d["relative_time"] = [p.relative_time for p in self.predictions]
        d["examples_slack"] = EXAMPLES_SLACK  # the figure marks the batches beyond it
        return json_safe(d)  # an unmeasured throughput's infinite time becomes None


def memory_sentence(largest: int, limited_by: str, devices: int = 1) -> str:
    """What the memory search found at ``largest`` (the global batch: ``devices`` x what fits
    one device), naming the limit that stopped it."""
    if devices > 1 and limited_by == "memory":
        return (f"The largest batch per device that fits in memory (with the safety margin) is "
                f"{largest // devices:,} → global {largest:,} over {devices} processes.")
    stopped = {
        "dataset size": f"the training set's size ({largest} examples)",
        "max_batch": f"the largest candidate batch size ({largest})",
        "cpu cap": f"the CPU search's cap ({largest})",
    }.get(limited_by)
    if stopped is None:
        return f"The largest batch that fits in memory (with the safety margin) is {largest}."
    return (f"Every batch size up to {stopped} fits in memory (with the safety margin); the "
            "memory limit itself was not reached.")


def _choice_sentences(rec_b: Prediction, preds: Sequence[Prediction], user_batch: int) -> list[str]:
    """Why this batch size: the fastest of those that reach the target within the user's
    epochs, against the others, and the faster one (if any) that would need more epochs."""
    when = f" ({rec_b.seconds:.1f} s)" if rec_b.seconds is not None else ""
    if not within_epochs(rec_b):
        return [f"No measured batch size is predicted to reach the target within your epochs "
                f"(batch {user_batch}'s); batch {rec_b.batch_size}{when} needs the fewest examples, "
                f"{rec_b.examples_factor:.1f}x yours: train it that much longer, or measure your "
                "own batch size too."]
    ranked = sorted((p for p in preds if p.fits and within_epochs(p) and p is not rec_b),
                    key=lambda p: p.relative_time)
    others = ", ".join(f"batch {p.batch_size}: x{p.relative_time / rec_b.relative_time:.2f}"
                       for p in ranked[:3])
    lines = [f"Predicted time to target is least at batch {rec_b.batch_size}{when} among the batch "
             f"sizes that reach it within your epochs; "
             + (f"relative to it: {others}." if others else "no other measured batch size does.")]
    faster = [p for p in preds if p.fits and p.relative_time < rec_b.relative_time]
    if faster:
        f = min(faster, key=lambda p: p.relative_time)
        lines.append(f"Batch {f.batch_size} would reach it in x{f.relative_time / rec_b.relative_time:.2f} "
                     f"the time, but needs {f.examples_factor:.1f}x the examples of batch "
                     f"{user_batch}: train it that many times the epochs, or it ends short of the "
                     "target.")
    return lines


def explain(rec_b: Prediction, preds: Sequence[Prediction], b_noise: float,
            ci: tuple[float, float], lr: float, lr_source: str, warmup: int,
            largest: int | None, knee: int | None, user_batch: int,
            limited_by: str = "memory", devices: int = 1) -> list[str]:
    """The recommendation in sentences, each with its numbers. ``limited_by``: what ended the
    memory search at ``largest`` (``MaxBatchResult.limited_by``): only "memory" makes it the
    largest batch that fits; the others are where the search stopped. ``devices``: the
    processes of a DDP run (``largest`` is then the global batch)."""
    lines = [
        f"Gradient noise scale B_noise = {b_noise:.0f} (95% CI {ci[0]:.0f}-{ci[1]:.0f}): up to "
        f"about that batch size, doubling the batch nearly halves the steps to a target; "
        f"far above it, more examples per step buy little.",
        # one measured batch has no curve to rise along ("rises from 945 ... to 945")
        f"Throughput rises from {preds[0].samples_per_s:.0f} samples/s at batch "
        f"{preds[0].batch_size} to {max(p.samples_per_s for p in preds):.0f} at best"
        + (f"; beyond batch {knee} doubling gains < 10%." if knee else ".") if len(preds) > 1
        else f"Throughput: {preds[0].samples_per_s:.0f} samples/s at batch {preds[0].batch_size}, "
             "the only batch size measured.",
    ]
    if largest is not None:
        lines.append(memory_sentence(largest, limited_by, devices))
    lines += _choice_sentences(rec_b, preds, user_batch)
    lines.append(f"Learning rate {lr:.3g} ({lr_source}).")
    if devices > 1:
        lines.append(f"Batch sizes here are global: each of the {devices} processes "
                     f"(train.devices) takes batch / {devices}. The update, the noise scale and "
                     "the LR are the global batch's; throughput was measured in one process, "
                     "so the speed over processes may differ (bench/ddp.py measures it).")
    if warmup:
        lines.append(f"Warm up linearly over the first {warmup} steps: the LR is over "
                     f"{WARMUP_LR_RATIO:g}x the one at your batch size {user_batch}.")
    return lines


def unmeasured(asked: list[int], skipped: list[dict[str, Any]]) -> list[str]:
    """A sentence per reason for the candidates the user named that the throughput curve did
    not measure (above the training set, after an out-of-memory error): without it they would
    drop out of the choice unsaid. The default candidates' gaps are the probe's own note."""
    by_reason: dict[str, list[int]] = {}
    for skip in skipped:
        if skip["batch_size"] in asked:
            by_reason.setdefault(skip["reason"], []).append(skip["batch_size"])
    return [f"Not measured, so not a candidate: batch {', '.join(map(str, sizes))} ({reason})."
            for reason, sizes in by_reason.items()]


def recommend(config: RunConfig, *, batch_sizes: Sequence[int] | None = None,
              memory_limit: int | None = None, margin: float = 0.1, noise_steps: int = 200,
              lr_repeats: int | None = None, s_min: float | None = None,
              inputs: RunInputs | None = None) -> Recommendation:
    """Run the probes on fresh copies (throughput curve, largest batch that fits, noise scale,
    the LR suggestion at the chosen and at the user's batch size: ``lr_find``'s default
    strategy, miniatures of the run) and combine them. ``lr_source`` names what gave the LR. ``inputs``:
    the caller's data/model/loss/optimizer builders (the Python API's objects)."""
    from batchlab.probes.auto_lr import resolve_auto_lr
    from batchlab.probes.lr_search import lr_find
    from batchlab.probes.max_batch import max_batch
    from batchlab.probes.noise_scale import measure_noise_scale
    from batchlab.probes.throughput import DEFAULT_BATCH_SIZES, throughput_curve

    if config.train.lr == "auto":
        from batchlab.plan import RunSpec

        config = resolve_auto_lr([RunSpec(config.run_id(), config)], repeats=lr_repeats)[0].config
    t = config.train
    # the user's own batch is always a candidate: "keep yours" is an answer too
    sizes = sorted({*(DEFAULT_BATCH_SIZES if batch_sizes is None else batch_sizes), t.batch_size})
    tp = throughput_curve(config, batch_sizes=sizes, inputs=inputs)
    n = config.train.devices  # max_batch measures one device: global = n x per device
    mb = max_batch(config, memory_limit=memory_limit, margin=margin,
                   max_batch=max(1, max(tp.batch_sizes) // n) if tp.batch_sizes else None,
                   inputs=inputs)
    ns = measure_noise_scale(config, steps=noise_steps, inputs=inputs)
    if not math.isfinite(ns.b_simple) or ns.b_simple <= 0:
        raise ProbeError(f"the gradient noise scale could not be measured: {ns.reason}")
    largest = n * (mb.recommended if mb.recommended is not None else mb.largest)
    preds = predict_times(tp.batch_sizes, tp.samples_per_s, ns.b_simple, largest, s_min,
                          user_batch=t.batch_size)
    best = choose(preds)
    found = lr_find(config, batch_sizes=sorted({best.batch_size, config.train.batch_size}),
                    repeats=lr_repeats, inputs=inputs)
    at = {b.batch_size: b.lr for b in found.per_batch}
    if at.get(best.batch_size):
        lr, source = at[best.batch_size], lr_source(found.strategy, best.batch_size)
    else:
        lr = scaled_lr(t.numeric_lr(), best.batch_size, "sqrt", t.batch_size)
        source = f"square-root rule from your LR {t.numeric_lr():g} at batch {t.batch_size}"
    reference = at.get(t.batch_size) or t.numeric_lr()
    total = run_length(t.steps, t.epochs, steps_per_epoch(mb.n_train, best.batch_size))
    warm = warmup_steps(lr, reference, total)
    ci = (ns.ci_low, ns.ci_high)
    # the margin can put the recommended batch below where the search stopped: memory limits it
    stop = mb.limited_by if largest == n * mb.largest else "memory"
    text = explain(best, preds, ns.b_simple, ci, lr, source, warm, largest, tp.knee, t.batch_size,
                   stop, n)
    text += unmeasured(batch_sizes or [], tp.skipped)
    if not tp.reliable:
        text.append(f"Caution: the throughput curve was unreliable (its timed windows spread more "
                    f"than {tp.max_spread:.0%} even when re-measured: a busy machine), and the "
                    "batch-size choice rests on it. Re-run on a quieter machine, or check with "
                    "--validate.")
    return Recommendation(best.batch_size, lr, source, warm, ns.b_simple, ci, largest, tp.knee,
                          preds, text, {"throughput": tp.to_dict(), "max_batch": mb.to_dict(),
                                        "noise_scale": ns.to_dict(), "lr_range": found.to_dict()},
                          n)
