"""Learning-rate schedules as pure functions of the (0-based) optimizer step.

``schedule_fn`` turns a :class:`~batchlab.spec.ScheduleSpec` into ``lr(step)``: the LR to use
for the optimizer update at ``step``. It holds no torch state, so a resumed run only needs its
step counter, and a curve can be plotted without building a model.

Which schedules follow ``unit``:

- ``step``, ``multistep`` and ``exponential`` decay in whole units: they reproduce StepLR,
  MultiStepLR and ExponentialLR value for value, with the torch scheduler stepped once per
  epoch (``unit = "epoch"``, the default) or once per optimizer step (``unit = "step"``);
  ``step_size`` and ``milestones`` count in that unit.
- ``cosine`` and ``onecycle`` always anneal smoothly per optimizer step over the whole run,
  whatever ``unit`` says: CosineAnnealingLR with ``T_max`` = total steps and OneCycleLR with
  ``total_steps`` = total steps, both stepped after every update.
- ``power`` switches at the thirds of the run counted in steps; ``constant`` never changes.

Linear warm-up (``warmup``, counted in ``warmup_unit``) multiplies whichever schedule is chosen.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

from batchlab.errors import SpecError
from batchlab.spec import ScheduleSpec

LRFn = Callable[[int], float]


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimizer steps in one pass over ``n_train`` examples: ``ceil(n_train / batch_size)``.

    The last, partial batch is kept (it is still an update). Both arguments must be >= 1.
    """
    if n_train < 1:
        raise ValueError(f"n_train must be >= 1 to train for an epoch, got {n_train}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return -(-n_train // batch_size)


def run_length(steps: int | None, epochs: int | None, steps_per_epoch: int) -> int:
    """Optimizer steps of a whole run: ``steps`` when given, else ``epochs`` (one when unset)
    times ``steps_per_epoch``. The one place the trainer, the preflight and the probes agree."""
    return steps if steps is not None else (epochs or 1) * steps_per_epoch


def _steps_per_unit(unit: str, steps_per_epoch: int) -> int:
    """How many optimizer steps one ``unit`` ("epoch" or "step") lasts.

    The single place units become steps: epoch-counted decay boundaries, epoch indices and
    warm-up lengths are all derived from it.
    """
    return steps_per_epoch if unit == "epoch" else 1


def _constant(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    return lambda step: base_lr


def _step(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    # StepLR: decay by gamma every step_size units (units_done = step // unit_len).
    gamma, size = spec.gamma, spec.step_size
    return lambda step: base_lr * gamma ** ((step // unit_len) // size)


def _multistep(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    if not spec.milestones:
        raise SpecError(
            "train.schedule.milestones must list at least one "
            f"{spec.unit} for a multistep schedule, e.g. milestones = [30, 60]."
        )
    # the LR decays after milestone m units, at step m * unit_len: one at or past the last
    # step never takes effect, so the run would not be the schedule the user asked for
    length = total / unit_len
    late = [m for m in spec.milestones if m * unit_len >= total]
    if late:
        early = [m for m in spec.milestones if m * unit_len < total]
        fix = (f"give milestones below {length:g}{f' (e.g. {early})' if early else ''} or train "
               "longer (train.epochs / train.steps)" if length > 1 else
               "train longer (train.epochs / train.steps) or use another schedule")
        raise SpecError(
            f"train.schedule.milestones = {spec.milestones}: {late} "
            f"{'is' if len(late) == 1 else 'are'} at or past the end of the run ({length:g} "
            f"{spec.unit}{'' if length == 1 else 's'}), where the LR never decays; {fix}."
        )
    # ScheduleSpec keeps the milestones strictly increasing: bisect counts those passed
    milestones, gamma = spec.milestones, spec.gamma
    return lambda step: base_lr * gamma ** bisect.bisect_right(milestones, step // unit_len)


def _exponential(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    gamma = spec.gamma
    return lambda step: base_lr * gamma ** (step // unit_len)


def _power(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    # base_lr ** k only decays when 0 < base_lr < 1; otherwise the "decay" would grow the LR.
    if not 0 < base_lr < 1:
        raise SpecError(
            f"the power schedule (train.schedule.name = 'power') needs 0 < train.lr < 1, got an "
            f"LR of {base_lr} (after train.scale_lr): it uses lr, lr**2, lr**3 over the thirds "
            "of training. Lower train.lr or pick another schedule."
        )
    # Thirds by step, not by unit, so the split is the same whatever schedule.unit says.
    lrs = (base_lr, base_lr**2, base_lr**3)
    return lambda step: lrs[min(2, 3 * step // total)]


def _cosine(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    min_lr = spec.min_lr
    if min_lr > base_lr:
        raise SpecError(
            f"train.schedule.min_lr ({min_lr}) must not exceed the LR ({base_lr}, after "
            "train.scale_lr) for a cosine schedule, which anneals from the LR down to min_lr."
        )
    span = base_lr - min_lr
    return lambda step: min_lr + span * (1 + math.cos(math.pi * step / total)) / 2


def _onecycle(spec: ScheduleSpec, base_lr: float, total: int, unit_len: int) -> LRFn:
    # Mirrors torch's OneCycleLR (anneal_strategy="cos", three_phase=False) term by term so
    # the values agree to rounding: same phase ends, same interpolation formula.
    initial = base_lr / spec.div_factor
    final = initial / spec.final_div_factor
    rise_end = float(spec.pct_start * total) - 1  # may be <= 0 for short runs, as in torch
    last = total - 1

    def anneal(start: float, end: float, pct: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def lr(step: int) -> float:
        if step <= rise_end:
            # torch divides 0/0 when rise_end == 0 (pct_start * total_steps == 1); the rise
            # then has no length, so it has already reached its peak.
            pct = step / rise_end if rise_end > 0 else 1.0
            return anneal(initial, base_lr, pct)
        return anneal(base_lr, final, (step - rise_end) / (last - rise_end))

    return lr


_BUILDERS: dict[str, Callable[[ScheduleSpec, float, int, int], LRFn]] = {
    "constant": _constant,
    "step": _step,
    "multistep": _multistep,
    "exponential": _exponential,
    "power": _power,
    "cosine": _cosine,
    "onecycle": _onecycle,
}


def schedule_fn(spec: ScheduleSpec, base_lr: float, total_steps: int, steps_per_epoch: int) -> LRFn:
    """Return ``lr(step)``, the LR for the optimizer update at 0-based ``step``.

    ``base_lr`` is the (already scaled) peak LR; ``total_steps`` the length of training;
    ``steps_per_epoch`` converts epoch-counted fields (``spec.unit``, ``spec.warmup_unit``)
    to steps. The returned function is pure and cheap, and accepts
    ``0 <= step < total_steps`` (anything else raises ValueError: it is an off-by-one in the
    caller). Impossible schedule parameters raise :class:`SpecError` naming the field.

    Warm-up (``spec.warmup > 0``) multiplies the schedule by ``min(1, (step+1) / W)`` with
    ``W`` the warm-up length in steps; a warm-up longer than training never reaches full LR.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if not base_lr > 0:
        raise ValueError(f"base_lr must be > 0, got {base_lr}")

    unit_len = _steps_per_unit(spec.unit, steps_per_epoch)
    base = _BUILDERS[spec.name](spec, base_lr, total_steps, unit_len)
    warmup_steps = spec.warmup * _steps_per_unit(spec.warmup_unit, steps_per_epoch)

    def lr(step: int) -> float:
        if not 0 <= step < total_steps:
            raise ValueError(f"step {step} is outside the schedule's range [0, {total_steps})")
        if step < warmup_steps:
            return base(step) * (step + 1) / warmup_steps
        return base(step)

    return lr


def schedule_notes(spec: ScheduleSpec, total_steps: int, steps_per_epoch: int) -> list[str]:
    """What the sweep says at its start about a schedule that is not the one its name promises
    over this run (pure): a warm-up as long as the run or longer (the LR never reaches the
    value set; a study shortened with ``--set train.steps=25`` keeps a 100-step warm-up), and a
    step or exponential schedule whose first decay comes at or past the run's end (it trains
    at a constant LR under the name of a decay)."""
    notes = []
    warmup = spec.warmup * _steps_per_unit(spec.warmup_unit, steps_per_epoch)
    if spec.warmup and warmup >= total_steps:
        notes.append(f"train.schedule.warmup = {spec.warmup} {spec.warmup_unit}"
                     f"{'' if spec.warmup == 1 else 's'} is as long as the run ({total_steps} steps) "
                     f"or longer: the LR only climbs, to {total_steps / warmup:.0%} of the one set at "
                     "its last step (shorten the warm-up or train longer).")
    if spec.name in ("step", "exponential"):
        unit_len = _steps_per_unit(spec.unit, steps_per_epoch)
        every = spec.step_size if spec.name == "step" else 1
        if every * unit_len >= total_steps:
            length = total_steps / unit_len
            notes.append(
                f"train.schedule {spec.name}: its first decay comes after {every} {spec.unit}"
                f"{'' if every == 1 else 's'}, at or past the end of a run of {length:.3g} "
                f"{spec.unit}{'' if length == 1 else 's'}, so the LR never decays: the run trains "
                "as the constant schedule would (lower step_size or train longer for a decay).")
    return notes


def lr_curve(
    spec: ScheduleSpec, base_lr: float, total_steps: int, steps_per_epoch: int
) -> list[float]:
    """The whole schedule: ``[lr(s) for s in range(total_steps)]`` (for plots and reports)."""
    lr = schedule_fn(spec, base_lr, total_steps, steps_per_epoch)
    return [lr(s) for s in range(total_steps)]
