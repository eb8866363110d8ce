"""The horizon strategy: miniatures of the run compared by successive halving, always an answer."""

import math

import pytest
import torch
from lr_problem import DATA
from lr_problem import config as problem_config
from torch import nn

from batchlab.data import load_dataset
from batchlab.plan import plan_runs
from batchlab.probes.auto_lr import resolve_auto_lr
from batchlab.probes.lr_horizon import (
    BUDGET,
    DECADE,
    LADDER,
    MIN_STEPS,
    SPREAD,
    compressed,
    conventional_lr,
    horizon_lr,
    rung_steps,
)
from batchlab.probes.lr_search import HORIZON, default_range_steps, lr_find
from batchlab.spec import RunConfig, spec_from_dict


def config(**train) -> RunConfig:
    """The shared tiny problem (``lr_problem``) as a run of 300 steps unless told."""
    return problem_config(**{"steps": 300, **train})


def test_rungs_double_and_fit_half_the_run():
    h0, h1 = rung_steps(3000, int(BUDGET * 3000))
    assert h1 == 2 * h0 and len(LADDER) * h0 + 3 * h1 <= BUDGET * 3000
    assert h0 == 150  # a twentieth of the run: 4 x 150 + 3 x 300 = 1500 steps
    # a short run: never below MIN_STEPS, never beyond the run
    assert rung_steps(100, 50) == (MIN_STEPS, 2 * MIN_STEPS)
    assert rung_steps(10, 5) == (MIN_STEPS, 10)


def test_the_schedule_is_squeezed_into_the_trial_keeping_its_shape():
    cfg = config(schedule={"name": "multistep", "unit": "step", "milestones": [150, 225], "gamma": 0.1})
    f = compressed(cfg, 400, 30)  # the 300-step run in 30 steps: decays at trial steps 15 and 23
    assert [f(s) for s in (0, 14, 15, 22, 23, 29)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    cos = compressed(config(schedule={"name": "cosine", "warmup": 30, "warmup_unit": "step"}), 400, 10)
    assert cos(0) == pytest.approx(1 / 30) and cos(1) == pytest.approx(1.0, abs=0.05)
    assert cos(9) < 0.05  # annealed at the end, as the run will be
    assert compressed(config(), 400, 7)(6) == 1.0


def test_conventional_lr_follows_the_optimizer_family():
    p = [nn.Parameter(torch.zeros(1))]
    assert conventional_lr(torch.optim.SGD(p, lr=1)) == 0.1
    assert conventional_lr(torch.optim.SGD(p, lr=1, momentum=0.9)) == 0.01
    assert conventional_lr(torch.optim.Adam(p)) == 1e-3
    assert conventional_lr(torch.optim.Adagrad(p)) == 0.01


def _scrambled(cfg: RunConfig):
    """The synthetic data with labels the inputs cannot predict: nothing can learn them."""
    data = load_dataset(cfg.data)
    return type(data)(**{**data.__dict__, "train_y": data.train_y[torch.randperm(len(data.train_y))],
                         "val_y": data.val_y[torch.randperm(len(data.val_y))]})


def test_horizon_climbs_a_decade_ladder_then_compares_the_best_with_its_neighbours():
    cfg = config()  # SGD with momentum: conventionally 0.01
    out = horizon_lr(cfg, load_dataset(cfg.data))
    first, second = out.rungs
    default = 0.01
    ladder = sorted(t.lr for t in first)
    assert all(any(lr == pytest.approx(default * m) for lr in ladder) for m in LADDER)
    assert all(b / a == pytest.approx(DECADE) for a, b in zip(ladder, ladder[1:], strict=False))
    h0, h1 = rung_steps(300, int(BUDGET * 300))
    assert {t.steps for t in first if t.rejected is None} == {h0}
    best0 = second[1].lr
    assert [t.lr for t in second] == pytest.approx([best0 / SPREAD, best0, best0 * SPREAD])
    assert all(t.steps == h1 for t in second if t.rejected is None)
    assert out.lr in [t.lr for t in second]
    assert out.steps == sum(t.steps for t in out.trials) <= BUDGET * 300 + 2 * h0
    assert out.confidence in ("high", "medium") and f"{out.lr:.3g}" in out.reason


def test_the_ladder_grows_a_decade_towards_the_edge_its_best_is_on():
    from batchlab.probes.lr_horizon import MAX_EXTEND, _extended
    from batchlab.probes.lr_trial import Baseline, Trial

    base = Baseline(val_loss=2.3, chance_acc=0.1, n_val=500)

    def grows_up(lr: float) -> Trial:  # the higher the LR, the better: up to the ceiling
        return Trial(lr, 10, 2.0 / (1 + lr), min(0.9, 0.2 + lr), None)

    ladder = [grows_up(lr) for lr in (1e-4, 1e-3, 1e-2, 1e-1)]
    tried: list[str] = []
    out = _extended(ladder, grows_up, base, tried)
    assert sorted(t.lr for t in out)[-MAX_EXTEND:] == pytest.approx([1.0, 10.0])
    assert len(tried) == MAX_EXTEND and "highest" in tried[0]

    def blows_up(lr: float) -> Trial:  # everything above 1e-5 diverges
        ok = lr <= 1e-5
        return Trial(lr, 10 if ok else 2, 1.5 if ok else float("nan"), 0.5 if ok else float("nan"),
                     None if ok else "the loss turned non-finite at step 2")

    tried = []
    out = _extended([blows_up(lr) for lr in (1e-4, 1e-3, 1e-2, 1e-1)], blows_up, base, tried)
    # down a decade, where 1e-5 trains and is the best, so down once more
    assert sorted(t.lr for t in out)[:2] == pytest.approx([1e-6, 1e-5])
    assert "blew up too" in tried[0] and "was the best" in tried[1]
    # the best inside the ladder: nothing added
    inside = [Trial(lr, 10, abs(math.log10(lr) + 2.5), 0.5, None) for lr in (1e-4, 1e-3, 1e-2, 1e-1)]
    assert _extended(inside, grows_up, base, []) == inside


def test_horizon_always_answers_even_when_nothing_learns():
    cfg = config()
    out = horizon_lr(cfg, _scrambled(cfg))
    assert out.lr > 0 and out.confidence == "low"


def test_when_nothing_learns_the_answer_is_the_conventional_lr():
    cfg = config()  # SGD with momentum: conventionally 0.01
    out = horizon_lr(cfg, _scrambled(cfg))
    assert out.lr == pytest.approx(0.01) and out.confidence == "low"
    assert "conventional LR 0.01" in out.reason and "too short to tell" in out.reason
    # the ladder was tried again at twice the length, within one run, and said nothing either
    h0, h1 = rung_steps(300, int(BUDGET * 300))
    assert [{t.steps for t in rung} for rung in out.rungs] == [{h0}, {h1}]
    assert [t.lr for t in out.rungs[1]] == pytest.approx([0.01 * m for m in LADDER])
    assert out.steps == len(LADDER) * (h0 + h1) <= 300
    assert any(f"no {h0}-step miniature learned anything" in note for note in out.tried)


def _learns_only_from(h: int, best: float):
    """A stand-in for ``run_trial``: a miniature shorter than ``h`` steps learns nothing; a
    longer one learns best at ``best`` (accuracy falling off a decade either side)."""
    from batchlab.probes.lr_trial import Trial

    def fake(config, data, lr, steps, *args, **kwargs) -> Trial:
        if steps < h:
            return Trial(lr, steps, 1.1, 0.34, "learned nothing: val loss 1.1 from 1.1")
        off = abs(math.log10(lr / best))
        return Trial(lr, steps, 0.3 + off, 0.95 - 0.2 * off, None)
    return fake



def _draw_then(winner: float, rival: float, regression: bool = False, h1: int = 30):
    """A stand-in for ``run_trial`` whose miniatures up to ``h1`` steps (``config()``'s rung 1)
    rank ``rival`` a hair behind ``winner`` (within noise) and whose longer ones rank it clearly
    ahead; every other LR falls off a decade either side."""
    from batchlab.probes.lr_trial import Trial

    def fake(config, data, lr, steps, *args, **kwargs) -> Trial:
        off = min(abs(math.log10(lr / winner)), abs(math.log10(lr / rival)))
        if math.isclose(lr, rival) or math.isclose(lr, winner):
            ahead = math.isclose(lr, rival) == (steps > h1)  # the rival leads only when longer
            acc, loss = (0.90, 0.300) if ahead else (0.899, 0.302 if steps <= h1 else 0.5)
        else:
            acc, loss = 0.6 - 0.2 * off, 0.9 + off
        return Trial(lr, steps, loss, math.nan if regression else acc, None)
    return fake


@pytest.mark.parametrize("regression", [False, True])
def test_a_draw_at_rung_1_is_decided_by_a_duel_in_longer_miniatures(monkeypatch, regression):
    from batchlab.probes import lr_horizon

    h0, h1 = rung_steps(300, int(BUDGET * 300))
    duel = round(lr_horizon.DUEL * h1)  # 50: the run's sixth
    monkeypatch.setattr(lr_horizon, "run_trial", _draw_then(0.1, 0.1 * SPREAD, regression))
    out = horizon_lr(config(), load_dataset(config().data))
    first, second, pair = out.rungs
    assert [t.lr for t in second] == pytest.approx([0.1 / SPREAD, 0.1, 0.1 * SPREAD])
    assert [t.lr for t in pair] == pytest.approx([0.1, 0.1 * SPREAD])
    assert {t.steps for t in pair} == {duel} and duel > h1
    assert out.lr == pytest.approx(0.1 * SPREAD)  # rung 1 said 0.1; the longer look says otherwise
    assert out.steps == sum(t.steps for t in out.trials) == 4 * h0 + 3 * h1 + 2 * duel <= 300
    assert any("within noise of each other in 30-step miniatures: both again in 50-step" in n
               for n in out.tried) and out.confidence == "medium"
    assert f"then of 0.1 and {0.1 * SPREAD:.3g} in {duel}-step ones" in out.reason


def test_a_clear_winner_at_rung_1_or_a_run_with_no_room_left_has_no_duel(monkeypatch):
    from batchlab.probes import lr_horizon

    # neighbours 2/3 of a decade off lose 0.13 of accuracy: far outside the noise
    monkeypatch.setattr(lr_horizon, "run_trial", _learns_only_from(0, best=0.1))
    out = horizon_lr(config(), load_dataset(config().data))
    assert len(out.rungs) == 2 and not any("within noise" in n for n in out.tried)
    assert out.lr == pytest.approx(0.1)
    # a draw, but rung 1 ends where two longer miniatures would pass the run: no duel
    monkeypatch.setattr(lr_horizon, "run_trial", _draw_then(0.1, 0.1 * SPREAD, h1=54))
    out = horizon_lr(config(), load_dataset(config().data), budget=int(0.9 * 300))  # 4 x 27 + 3 x 54
    assert len(out.rungs) == 2 and out.lr == pytest.approx(0.1) and out.steps <= 300

@pytest.mark.parametrize("steps, neighbours", [(300, True), (100, False)])
def test_miniatures_too_short_to_learn_are_run_again_longer(monkeypatch, steps, neighbours):
    from batchlab.probes import lr_horizon

    h0, h1 = rung_steps(steps, int(BUDGET * steps))
    monkeypatch.setattr(lr_horizon, "run_trial", _learns_only_from(h1, best=0.1))
    out = horizon_lr(config(steps=steps), load_dataset(config().data))
    first, again, *last = out.rungs
    assert {t.steps for t in first} == {h0} and all(t.rejected for t in first)
    assert {t.steps for t in again} == {h1}
    assert out.lr == pytest.approx(0.1) and out.confidence == "medium"
    if neighbours:  # 4 x 15 + 4 x 30 + 2 x 30 <= 300: the best's neighbours at h1 too
        assert [t.lr for t in last[0]] == pytest.approx([0.1 / SPREAD, 0.1, 0.1 * SPREAD])
        assert out.steps == len(LADDER) * (h0 + h1) + 2 * h1
    else:  # a 100-step run: 4 x 8 + 4 x 16 = 96, no room for neighbours within one run
        assert last == [] and any("no room left within one run" in n for n in out.tried)
        assert out.steps == len(LADDER) * (h0 + h1) == 96
    assert out.steps <= steps and f"{h1} steps" in out.reason


def test_lr_find_horizon_runs_no_range_test_unless_asked():
    cfg = config()
    res = lr_find(cfg)
    b = res.per_batch[0]
    assert res.strategy == HORIZON and res.suggested_lr is not None and b.confidence is not None
    assert b.tests == [] and b.cost_steps == sum(t.steps for t in b.trials)
    d = res.to_dict()
    assert d["lrs"] == [] and d["per_batch"][0]["rung_steps"] == b.rung_steps
    assert d["per_batch"][0]["confidence"] == b.confidence
    # asked for one: a range test of a twentieth of the run, shown and paid from the budget
    assert default_range_steps(HORIZON, cfg, 320) == 20  # 300 // 20 = 15, at least 20
    assert default_range_steps("valley", cfg, 320) == 100
    shown = lr_find(cfg, repeats=1).per_batch[0]
    duel = 2 * shown.rung_steps[-1] if any("within noise" in n for n in shown.tried) else 0
    assert len(shown.tests) == 1 and shown.cost_steps == len(shown.tests[0].lrs) + sum(
        t.steps for t in shown.trials) <= min(300, 0.5 * 300 + 2 * shown.rung_steps[0] + duel)


def test_a_range_test_that_blows_up_at_once_is_only_a_note():
    res = lr_find(config(), repeats=1, start_lr=1e4, end_lr=1e6)
    b = res.per_batch[0]
    assert res.suggested_lr is not None
    assert any("range test" in note for note in b.tried)


def test_repeats_below_zero_or_zero_for_a_curve_rule_are_refused():
    from batchlab.probes.common import ProbeError

    with pytest.raises(ProbeError, match="at least 1 for the 'valley' strategy"):
        lr_find(config(), repeats=0, strategy="valley")
    with pytest.raises(ProbeError, match="at least 0"):
        lr_find(config(), repeats=-1)


def test_auto_lr_never_aborts_when_a_curve_rule_finds_nothing():
    spec = spec_from_dict({"name": "auto", "data": DATA, "model": {"name": "mlp", "hidden": [16]},
                           "train": {"batch_size": 32, "lr": "auto", "threads": 1, "steps": 200}})
    runs = plan_runs(spec)
    # a range far below anything that trains: the loss stays flat, valley suggests nothing
    resolved = resolve_auto_lr(runs, strategy="valley", start_lr=1e-9, end_lr=1e-8)
    assert resolved[0].config.train.lr > 0


def test_a_larger_budget_buys_longer_miniatures_within_one_run():
    res = lr_find(config(), budget=0.9)
    b = res.per_batch[0]
    h0, h1 = rung_steps(300, int(0.9 * 300))
    assert (h0, h1) == (27, 54)  # a default budget gives (15, 30)
    assert b.rung_steps[0] == h0 and b.cost_steps <= 300 and res.settings["budget"] == 0.9
    assert lr_find(config()).settings["budget"] == BUDGET


def test_rung_1_gives_way_when_the_grown_ladder_leaves_too_little_of_the_run(monkeypatch):
    from batchlab.probes import lr_horizon

    # the higher the LR the better, up to 1e4: the ladder grows twice, 6 x 27 = 162 steps
    monkeypatch.setattr(lr_horizon, "run_trial", _learns_only_from(0, best=1e4))
    out = horizon_lr(config(), load_dataset(config().data), budget=int(0.9 * 300))
    first, second = out.rungs
    assert len(first) == len(LADDER) + 2 and {t.steps for t in first} == {27}
    # 3 x 54 would pass the run: rung 1 gets (300 - 162) // 3 = 46 steps each
    assert {t.steps for t in second} == {46} and out.steps == 300
    # steps the probe spent before (range tests) count against the same run
    out = horizon_lr(config(), load_dataset(config().data), budget=int(0.9 * 300) - 30, spent=30)
    assert out.steps + 30 <= 300


@pytest.mark.parametrize("budget, strategy, message", [
    (0, "horizon", "above 0 and at most 1"), (1.5, "horizon", "above 0 and at most 1"),
    (0.9, "trial", "applies to the 'horizon' strategy only")])
def test_a_budget_outside_one_run_or_for_another_strategy_is_refused(budget, strategy, message):
    from batchlab.probes.common import ProbeError

    with pytest.raises(ProbeError, match=message):
        lr_find(config(), budget=budget, strategy=strategy)


def _blows_up_from(edge: float, then):
    """``then`` (a stand-in for ``run_trial``), except that an LR from ``edge`` up blows up."""
    from batchlab.probes.lr_trial import Trial

    def fake(config, data, lr, steps, *args, **kwargs) -> Trial:
        if lr >= edge * 0.999:
            return Trial(lr, 3, math.nan, math.nan, "the loss turned non-finite at step 3")
        return then(config, data, lr, steps, *args, **kwargs)
    return fake


def test_when_some_blow_up_and_the_rest_have_not_moved_yet_the_ladder_runs_longer(monkeypatch):
    """Not a decade lower: the LRs that did not blow up merely had too few steps (a GRU with
    SGD on the bench went down to 1e-5 and answered it, a collapse, before this)."""
    from batchlab.probes import lr_horizon

    h0, h1 = rung_steps(300, int(BUDGET * 300))
    monkeypatch.setattr(lr_horizon, "run_trial", _blows_up_from(1.0, _learns_only_from(h1, best=0.1)))
    out = horizon_lr(config(), load_dataset(config().data))
    first, again, *_ = out.rungs
    assert sorted(t.lr for t in first) == pytest.approx([0.01 * m for m in LADDER])  # not extended
    assert {t.steps for t in again if t.lr < 1} == {h1} and out.lr == pytest.approx(0.1)


def test_when_nothing_learns_and_the_conventional_lr_blows_up_the_answer_is_below_it(monkeypatch):
    from batchlab.probes import lr_horizon

    monkeypatch.setattr(lr_horizon, "run_trial", _blows_up_from(0.01, _learns_only_from(10**6, best=0.1)))
    out = horizon_lr(config(), load_dataset(config().data))  # SGD with momentum: 0.01
    assert out.lr == pytest.approx(0.001) and out.confidence == "low"
    assert "below 0.01, which blew up" in out.reason and "conventional LR is 0.01" in out.reason


def test_an_lr_that_blew_up_in_the_longer_ladder_is_never_the_answer(monkeypatch):
    from batchlab.probes import lr_horizon
    from batchlab.probes.lr_trial import Trial

    h0, h1 = rung_steps(300, int(BUDGET * 300))

    def fake(config, data, lr, steps, *args, **kwargs) -> Trial:
        # short: 1 blows up and the rest do not move; at h1 every LR from 0.001 blows up
        if lr >= (0.001 if steps >= h1 else 1.0) * 0.999:
            return Trial(lr, 3, math.nan, math.nan, "the loss turned non-finite at step 3")
        return Trial(lr, steps, 1.1, 0.34, "learned nothing: val loss 1.1 from 1.1")

    monkeypatch.setattr(lr_horizon, "run_trial", fake)
    out = horizon_lr(config(), load_dataset(config().data))
    moved_not = [{t.steps for t in rung if t.rejected.startswith("learned")} for rung in out.rungs]
    assert moved_not == [{h0}, set()]  # the second ladder, at h1, blew up everywhere
    assert out.lr == pytest.approx(1e-4) and "below 0.001, which blew up" in out.reason


@pytest.mark.parametrize("steps, ladder, neighbours", [
    (16, (1, 10), False), (24, (1, 10, 100), False), (40, LADDER, False), (60, LADDER, True)])
def test_a_short_run_gets_fewer_miniatures_never_more_than_the_run(monkeypatch, steps, ladder,
                                                                   neighbours):
    """No miniature is under MIN_STEPS, so on a short run the ladder keeps the candidates
    nearest the conventional LR's most common best (10x, then 1x, 100x) and rung 1 gives way."""
    from batchlab.probes import lr_horizon

    monkeypatch.setattr(lr_horizon, "run_trial", _learns_only_from(0, best=0.1))  # 10x of 0.01
    out = horizon_lr(config(steps=steps), load_dataset(config().data))
    assert sorted(t.lr for t in out.rungs[0]) == pytest.approx([0.01 * m for m in ladder])
    assert out.lr == pytest.approx(0.1) and out.steps <= steps
    assert (len(out.rungs) == 2) is neighbours
    if not neighbours:
        assert any("no room left within one run" in n for n in out.tried)
    if len(ladder) < len(LADDER):
        assert f"room for {len(ladder)} of the ladder's {len(LADDER)}" in out.tried[0]


def test_a_run_too_short_for_two_miniatures_gets_the_conventional_lr_untried(monkeypatch):
    from batchlab.probes import lr_horizon

    def never(*args, **kwargs):
        raise AssertionError("no miniature fits within the run")

    monkeypatch.setattr(lr_horizon, "run_trial", never)
    out = horizon_lr(config(steps=2 * MIN_STEPS - 1), load_dataset(config().data))
    assert out.lr == pytest.approx(0.01) and out.confidence == "low"  # SGD with momentum
    assert out.rungs == [] and out.steps == 0 and "too short to compare" in out.reason
    b = lr_find(config(steps=10)).per_batch[0]
    assert b.lr == pytest.approx(0.01) and b.cost_steps == 0 and b.trials == []
    # range tests (asked for) that took the whole run leave no room either
    out = horizon_lr(config(steps=30), load_dataset(config().data), budget=0, spent=40)
    assert out.rungs == [] and "the range tests took 40 of its 30 steps" in out.reason
