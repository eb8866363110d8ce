"""LR schedules agree value by value with torch.optim.lr_scheduler, or with hand values."""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import pairwise

import pytest
import torch
from torch.optim import lr_scheduler as tls

from batchlab.errors import SpecError
from batchlab.spec import ScheduleSpec
from batchlab.train.schedules import lr_curve, schedule_fn, schedule_notes, steps_per_epoch

BASE_LR = 0.1

# (total_steps, steps_per_epoch): realistic shapes, including partial last batches.
GRID = [
    (5 * steps_per_epoch(1000, 32), steps_per_epoch(1000, 32)),  # 32/epoch, last batch of 8
    (4 * steps_per_epoch(100, 7), steps_per_epoch(100, 7)),  # 15/epoch, last batch of 2
    (100, steps_per_epoch(1000, 32)),  # a steps-based run that stops mid-epoch
    (10, steps_per_epoch(50, 50)),  # full batch: one step per epoch
    (1, 3),  # a single step
]

MakeSched = Callable[[torch.optim.Optimizer], tls.LRScheduler]


def torch_curve(make: MakeSched, total: int, spe: int, per_epoch: bool) -> list[float]:
    """The LR torch's scheduler gives each of ``total`` updates, stepped per epoch or step."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=BASE_LR, momentum=0.9)
    sched = make(opt)
    out = []
    for s in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()  # no grads: a no-op that keeps torch's "step order" warning quiet
        if s + 1 < total and (not per_epoch or (s + 1) % spe == 0):
            sched.step()
    return out


def assert_curves_equal(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    for s, (g, w) in enumerate(zip(got, want, strict=True)):
        assert math.isclose(g, w, rel_tol=1e-9), f"step {s}: got {g}, want {w}"


def past_the_end(spec: ScheduleSpec, total: int, spe: int) -> bool:
    """Does a multistep milestone fall at or after the run's last step (never reached)?"""
    unit_len = spe if spec.unit == "epoch" else 1
    return any(m * unit_len >= total for m in spec.milestones)


# unit -> ScheduleSpec fields and the torch scheduler they should match.
CASES: dict[str, list[tuple[dict, MakeSched]]] = {
    "epoch": [
        (dict(name="step", step_size=2, gamma=0.5), lambda o: tls.StepLR(o, 2, gamma=0.5)),
        (dict(name="step", step_size=1, gamma=0.1), lambda o: tls.StepLR(o, 1, gamma=0.1)),
        (
            dict(name="multistep", milestones=[1, 3], gamma=0.1),
            lambda o: tls.MultiStepLR(o, [1, 3], gamma=0.1),
        ),
        (dict(name="exponential", gamma=0.9), lambda o: tls.ExponentialLR(o, 0.9)),
    ],
    "step": [
        (dict(name="step", step_size=7, gamma=0.5), lambda o: tls.StepLR(o, 7, gamma=0.5)),
        (
            dict(name="multistep", milestones=[5, 20, 50], gamma=0.3),
            lambda o: tls.MultiStepLR(o, [5, 20, 50], gamma=0.3),
        ),
        (dict(name="exponential", gamma=0.97), lambda o: tls.ExponentialLR(o, 0.97)),
    ],
}


@pytest.mark.parametrize("total,spe", GRID)
@pytest.mark.parametrize(
    "unit,fields,make",
    [(unit, f, m) for unit, cases in CASES.items() for f, m in cases],
)
def test_decay_schedules_match_torch(total, spe, unit, fields, make):
    spec = ScheduleSpec(unit=unit, **fields)
    if past_the_end(spec, total, spe):  # torch would ignore it; batchlab refuses it
        with pytest.raises(SpecError, match="at or past the end of the run"):
            lr_curve(spec, BASE_LR, total, spe)
        return
    want = torch_curve(make, total, spe, per_epoch=unit == "epoch")
    assert_curves_equal(lr_curve(spec, BASE_LR, total, spe), want)


@pytest.mark.parametrize("total,spe", GRID)
@pytest.mark.parametrize("min_lr", [0.0, 0.001])
def test_cosine_matches_torch(total, spe, min_lr):
    spec = ScheduleSpec(name="cosine", min_lr=min_lr)
    want = torch_curve(
        lambda o: tls.CosineAnnealingLR(o, T_max=total, eta_min=min_lr), total, spe, False
    )
    assert_curves_equal(lr_curve(spec, BASE_LR, total, spe), want)


@pytest.mark.parametrize("name", ["cosine", "onecycle", "power"])
def test_smooth_schedules_anneal_per_step_whatever_the_unit(name):
    # the module docstring and docs/spec.md say so: only step/multistep/exponential follow unit
    by_epoch, by_step = (lr_curve(ScheduleSpec(name=name, unit=u), 0.5, 120, 12)
                         for u in ("epoch", "step"))
    assert by_epoch == by_step
    if name != "power":  # a new LR within the first epoch: not held for 12 steps
        assert len(set(by_epoch[:12])) == 12


def test_unit_counts_the_decay_of_stepped_schedules():
    by_epoch, by_step = (lr_curve(ScheduleSpec(name="step", step_size=2, unit=u), 0.5, 120, 12)
                         for u in ("epoch", "step"))
    assert by_epoch[23] == 0.5 and by_epoch[24] == pytest.approx(0.05)
    assert by_step[1] == 0.5 and by_step[2] == pytest.approx(0.05)


@pytest.mark.parametrize("total,spe", GRID + [(2, 1), (3, 1), (1000, 40)])
@pytest.mark.parametrize(
    "pct_start,div,final_div", [(0.3, 25.0, 1e4), (0.25, 10.0, 100.0), (0.5, 25.0, 1e4)]
)
def test_onecycle_matches_torch(total, spe, pct_start, div, final_div):
    if float(pct_start * total) - 1 == 0:
        pytest.skip("torch divides by zero here; see test_onecycle_zero_length_rise")
    spec = ScheduleSpec(
        name="onecycle", pct_start=pct_start, div_factor=div, final_div_factor=final_div
    )

    def make(o):
        return tls.OneCycleLR(
            o,
            max_lr=BASE_LR,
            total_steps=total,
            pct_start=pct_start,
            div_factor=div,
            final_div_factor=final_div,
            anneal_strategy="cos",
            three_phase=False,
            cycle_momentum=False,
        )

    assert_curves_equal(lr_curve(spec, BASE_LR, total, spe), torch_curve(make, total, spe, False))


def test_onecycle_zero_length_rise():
    # pct_start * total_steps == 1: torch's first phase has zero length (0/0). We start at
    # the peak, as the limit of shorter and shorter rises does, then anneal as usual.
    spec = ScheduleSpec(name="onecycle", pct_start=0.1)
    curve = lr_curve(spec, BASE_LR, 10, 1)
    assert curve[0] == BASE_LR
    assert all(a > b for a, b in pairwise(curve))
    assert math.isclose(curve[-1], BASE_LR / 25.0 / 1e4, rel_tol=1e-9)


@pytest.mark.parametrize("unit", ["epoch", "step"])
@pytest.mark.parametrize("total,spe", GRID)
def test_constant(total, spe, unit):
    assert (
        lr_curve(ScheduleSpec(name="constant", unit=unit), BASE_LR, total, spe) == [BASE_LR] * total
    )


@pytest.mark.parametrize("milestones", [[30, 10], [10, 10, 30], [5, 2]])
def test_multistep_milestones_must_increase(milestones):
    """Unsorted or repeated milestones are refused (MultiStepLR would decay twice at a
    repeated one, silently): one message naming the field and the sorted list."""
    with pytest.raises(ValueError, match=r"milestones = \[.*\] must increase strictly.*e\.g\. \["):
        ScheduleSpec(name="multistep", milestones=milestones)


@pytest.mark.parametrize(("unit", "total", "spe", "late", "fix"), [
    ("epoch", 3, 3, r"\[2, 5\] are .* \(1 epoch\)", "train longer"),
    ("epoch", 12, 3, r"\[5\] is .* \(4 epochs\)", r"below 4 \(e\.g\. \[2\]\)"),
    ("step", 5, 3, r"\[5\] is .* \(5 steps\)", r"below 5 \(e\.g\. \[2\]\)")])
def test_multistep_milestones_past_the_end_are_refused(unit, total, spe, late, fix):
    spec = ScheduleSpec(name="multistep", unit=unit, milestones=[2, 5])
    says = rf"milestones = \[2, 5\]: {late}, where the LR never decays; .*{fix}"
    with pytest.raises(SpecError, match=says):
        schedule_fn(spec, BASE_LR, total, spe)


def test_multistep_last_milestone_inside_the_run_matches_torch():
    spec = ScheduleSpec(name="multistep", unit="step", milestones=[10, 39], gamma=0.5)
    want = torch_curve(lambda o: tls.MultiStepLR(o, [10, 39], gamma=0.5), 40, 8, False)
    assert_curves_equal(lr_curve(spec, BASE_LR, 40, 8), want)


# ------------------------------------------------------------------ power


@pytest.mark.parametrize(
    "total,want",
    [
        (9, [0.1] * 3 + [0.01] * 3 + [0.001] * 3),
        (10, [0.1] * 4 + [0.01] * 3 + [0.001] * 3),  # step s is in third 3s // 10
        (2, [0.1, 0.01]),
        (1, [0.1]),
    ],
)
def test_power_thirds(total, want):
    got = lr_curve(ScheduleSpec(name="power"), 0.1, total, 3)
    assert_curves_equal(got, want)


@pytest.mark.parametrize("lr", [1.0, 2.5])
def test_power_needs_lr_below_one(lr):
    with pytest.raises(SpecError, match=r"train\.lr") as err:
        schedule_fn(ScheduleSpec(name="power"), lr, 30, 3)
    assert "train.schedule.name" in str(err.value)


# ------------------------------------------------------------------ warm-up


@pytest.mark.parametrize("warmup", [2, 10, 50])
def test_warmup_matches_torch_linear_lr(warmup):
    spec = ScheduleSpec(name="constant", warmup=warmup, warmup_unit="step")

    def make(o):
        return tls.LinearLR(o, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)

    assert_curves_equal(lr_curve(spec, BASE_LR, 60, 15), torch_curve(make, 60, 15, False))


@pytest.mark.parametrize(
    "fields,make_base",
    [
        (dict(name="step", step_size=7, gamma=0.5), lambda o: tls.StepLR(o, 7, gamma=0.5)),
        (dict(name="exponential", gamma=0.97), lambda o: tls.ExponentialLR(o, 0.97)),
        (dict(name="cosine"), lambda o: tls.CosineAnnealingLR(o, T_max=60)),
    ],
)
def test_warmup_matches_torch_chained(fields, make_base):
    # ChainedScheduler multiplies these schedulers' factors: warm-up on top of the schedule.
    spec = ScheduleSpec(unit="step", warmup=12, warmup_unit="step", **fields)

    def make(o):
        warm = tls.LinearLR(o, start_factor=1 / 12, end_factor=1.0, total_iters=11)
        return tls.ChainedScheduler([warm, make_base(o)])

    assert_curves_equal(lr_curve(spec, BASE_LR, 60, 15), torch_curve(make, 60, 15, False))


@pytest.mark.parametrize("total,spe", GRID)
@pytest.mark.parametrize("warmup,warmup_unit", [(1, "epoch"), (2, "epoch"), (5, "step")])
@pytest.mark.parametrize(
    "fields",
    [
        dict(name="constant"),
        dict(name="step", step_size=2),
        dict(name="multistep", milestones=[1, 3]),
        dict(name="exponential", gamma=0.9),
        dict(name="power"),
        dict(name="cosine", min_lr=0.001),
        dict(name="onecycle"),
    ],
)
def test_warmup_multiplies_any_schedule(total, spe, warmup, warmup_unit, fields):
    if past_the_end(ScheduleSpec(**fields), total, spe):
        return  # refused (test_multistep_milestones_past_the_end_are_refused)
    plain = lr_curve(ScheduleSpec(**fields), BASE_LR, total, spe)
    warm_spec = ScheduleSpec(warmup=warmup, warmup_unit=warmup_unit, **fields)
    steps = warmup * (spe if warmup_unit == "epoch" else 1)
    want = [lr * min(1.0, (s + 1) / steps) for s, lr in enumerate(plain)]
    assert_curves_equal(lr_curve(warm_spec, BASE_LR, total, spe), want)


# ------------------------------------------------------------------ contracts and errors


@pytest.mark.parametrize(
    "n,b,want", [(1000, 32, 32), (1024, 32, 32), (1025, 32, 33), (1, 32, 1), (50, 50, 1)]
)
def test_steps_per_epoch_keeps_partial_batch(n, b, want):
    assert steps_per_epoch(n, b) == want


@pytest.mark.parametrize("n,b", [(0, 32), (10, 0)])
def test_steps_per_epoch_rejects_empty(n, b):
    with pytest.raises(ValueError):
        steps_per_epoch(n, b)


def test_schedule_fn_is_pure():
    lr = schedule_fn(ScheduleSpec(name="onecycle", warmup=3), BASE_LR, 50, 7)
    forward = [lr(s) for s in range(50)]
    backward = [lr(s) for s in reversed(range(50))][::-1]
    assert forward == backward == lr_curve(ScheduleSpec(name="onecycle", warmup=3), 0.1, 50, 7)


@pytest.mark.parametrize("step", [-1, 20])
def test_step_out_of_range(step):
    lr = schedule_fn(ScheduleSpec(), BASE_LR, 20, 5)
    with pytest.raises(ValueError, match="outside"):
        lr(step)


@pytest.mark.parametrize("total,spe", [(0, 5), (10, 0)])
def test_bad_lengths(total, spe):
    with pytest.raises(ValueError):
        schedule_fn(ScheduleSpec(), BASE_LR, total, spe)


def test_multistep_needs_milestones():
    with pytest.raises(SpecError, match=r"train\.schedule\.milestones must list at least one"):
        schedule_fn(ScheduleSpec(name="multistep"), BASE_LR, 100, 10)


def test_cosine_min_lr_above_lr():
    with pytest.raises(SpecError, match=r"train\.schedule\.min_lr"):
        schedule_fn(ScheduleSpec(name="cosine", min_lr=0.5), BASE_LR, 100, 10)


def test_run_length_prefers_steps_then_epochs():
    from batchlab.train.schedules import run_length

    assert run_length(50, None, 7) == 50
    assert run_length(None, 3, 7) == 21
    assert run_length(None, None, 7) == 7


def test_a_decay_that_never_comes_within_the_run_is_said():
    step = ScheduleSpec(name="step", step_size=10)  # epochs
    (note,) = schedule_notes(step, total_steps=20, steps_per_epoch=10)  # a 2-epoch run
    assert "first decay comes after 10 epochs" in note
    assert "run of 2 epochs" in note and "never decays" in note
    assert schedule_notes(step, total_steps=101, steps_per_epoch=10) == []  # decays at step 100
    assert schedule_notes(ScheduleSpec(name="exponential", gamma=0.9), 8, 10)
    assert schedule_notes(ScheduleSpec(name="exponential", gamma=0.9), 11, 10) == []
    assert schedule_notes(ScheduleSpec(name="cosine"), 5, 10) == []


def test_a_warmup_as_long_as_the_run_is_said():
    cosine = ScheduleSpec(name="cosine", warmup=100, warmup_unit="step")
    (note,) = schedule_notes(cosine, total_steps=25, steps_per_epoch=10)
    assert note.startswith("train.schedule.warmup = 100 steps is as long as the run (25 steps)")
    assert "to 25% of the one set at its last step" in note
    lr = schedule_fn(cosine, 1.0, 25, 10)
    assert lr(24) < 0.26  # the LR the note quotes: it never gets near the one set
    assert schedule_notes(cosine, total_steps=101, steps_per_epoch=10) == []
