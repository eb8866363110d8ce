"""The follow-up LR grid per batch size (batchlab.analysis.nextlr)."""

from __future__ import annotations

from batchlab.analysis.nextlr import refine_lrs


def group(batch, lr, acc, eligible=True, run=None):
    return {"batch_size": batch, "lr": lr, "best_val_acc_mean": acc, "eligible": eligible,
            "run_ids": [run or f"{batch}-{lr}"]}


def test_between_grid_points_the_grid_gets_half_steps_around_the_best():
    (plan,) = refine_lrs([group(64, 0.001, 0.8), group(64, 0.01, 0.95), group(64, 0.1, 0.9)], {})
    assert plan.batch_size == 64 and plan.lrs == (0.00316, 0.01, 0.0316)
    assert plan.why == ("batch 64: best LR 0.01 (val acc 95%) lies between 0.001 and 0.1: "
                        "half-steps on either side")


def test_at_an_edge_the_grid_goes_on_beyond_it():
    top, bottom = refine_lrs([group(16, 0.001, 0.8), group(16, 0.01, 0.9),
                              group(32, 0.001, 0.9), group(32, 0.01, 0.8)], {})
    assert top.lrs == (0.00316, 0.01, 0.0316, 0.1) and "is the highest tried" in top.why
    assert bottom.lrs == (0.0001, 0.000316, 0.001, 0.00316) and "is the lowest tried" in bottom.why


def test_the_range_that_failed_is_left_out():
    groups = [group(16, 0.001, 0.8), group(16, 0.01, 0.9), group(16, 0.1, 0.1, False, "bad"),
              group(16, 1.0, 0.1, False, "worse")]
    (plan,) = refine_lrs(groups, {"bad": "collapsed", "worse": "diverged"})
    assert plan.lrs == (0.00316, 0.01, 0.0316)  # the half-step to 0.1 stays: below the failure
    assert "LR 0.1 and above left out (1 of 1 runs collapsed at 0.1)" in plan.why
    # a best at the top of the eligible LRs with failures above does not extend into them
    groups = [group(8, 0.01, 0.8), group(8, 0.03, 0.9), group(8, 0.1, 0.1, False, "x")]
    (plan,) = refine_lrs(groups, {"x": "never learned"})
    assert max(plan.lrs) < 0.1 and plan.lrs[-1] == 0.0548


def test_every_lr_failed_goes_below_the_lowest_and_a_fine_grid_is_left_alone():
    (plan,) = refine_lrs([group(16, 0.1, 0.1, False, "a"), group(16, 1.0, 0.1, False, "b")],
                         {"a": "diverged", "b": "diverged"})
    assert plan.lrs == (0.001, 0.01) and "no LR trained without failing" in plan.why
    assert refine_lrs([group(16, 0.008, 0.8), group(16, 0.01, 0.9), group(16, 0.012, 0.85)], {}) == []
    # a lone LR gets a bracket of half-decades around it
    (plan,) = refine_lrs([group(None, 0.01, 0.9)], {})
    assert plan.lrs == (0.001, 0.00316, 0.01, 0.0316, 0.1) and plan.why.startswith("best LR 0.01")


def loss_group(batch, lr, loss, eligible=True, run=None):
    """A group of an experiment without accuracies (a regression): ranked by its lowest loss."""
    return {"batch_size": batch, "lr": lr, "metric": "val_loss", "best_val_acc_mean": None,
            "best_val_loss_mean": loss, "eligible": eligible, "run_ids": [run or f"{batch}-{lr}"]}


def test_a_regression_refines_around_the_lowest_validation_loss():
    """The reported case: the best LR is the grid's lowest, so the grid goes on below it (before,
    ranked by an accuracy it never had, no LR grid was written at all)."""
    top, bottom = refine_lrs([loss_group(16, 0.1, 0.44), loss_group(16, 0.01, 0.017),
                              loss_group(64, 0.01, 0.3), loss_group(64, 0.1, 0.05),
                              loss_group(64, 1.0, None, False, "bad")], {"bad": "diverged"})
    assert top.lrs == (0.001, 0.00316, 0.01, 0.0316)
    assert top.why == ("batch 16: best LR 0.01 (val loss 0.017) is the lowest tried: the grid goes on "
                       "below it (/3.16, /10)")
    assert bottom.lrs == (0.0316, 0.1, 0.316)  # 0.1 lies between 0.01 and the 1.0 that diverged
    assert bottom.why.startswith("batch 64: best LR 0.1 (val loss 0.05) lies between 0.01 and 1: ")
    assert bottom.why.endswith("LR 1 and above left out (1 of 1 runs diverged at 1)")


def test_a_tie_goes_to_the_lower_validation_loss_not_the_lower_lr():
    """Both at chance (50 %): the run whose loss fell further is the better one to go on from."""
    flat, moved = group(16, 0.0001, 0.5), group(16, 0.001, 0.5)
    flat["best_val_loss_mean"], moved["best_val_loss_mean"] = 0.722, 0.715
    (plan,) = refine_lrs([flat, moved], {})
    assert plan.why.startswith("batch 16: best LR 0.001 (val acc 50%) is the highest tried")
    assert plan.lrs == (0.000316, 0.001, 0.00316, 0.01)
