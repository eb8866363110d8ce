"""The metric an experiment's configurations are compared by (batchlab.analysis.metric)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from batchlab.analysis import Thresholds
from batchlab.analysis.metric import ACCURACY, LOSS, experiment_metric, metric_of

NAN = math.nan


def run(acc: float = NAN, loss: float = NAN) -> SimpleNamespace:
    return SimpleNamespace(best_val_acc=acc, best_val_loss=loss)


def test_accuracy_when_any_run_has_it_else_the_loss():
    assert experiment_metric([run(loss=0.2), run(0.9, 0.3)]) is ACCURACY
    assert experiment_metric([run(loss=0.2), run(), run(loss=-1.5)]) is LOSS
    assert experiment_metric([run(), run()]) is ACCURACY  # nothing evaluated: the usual words
    assert experiment_metric([]) is ACCURACY
    assert metric_of({"metric": "val_loss"}) is LOSS and metric_of({}) is ACCURACY


def test_accuracy_differences_are_points_and_loss_differences_relative():
    th = Thresholds()
    assert ACCURACY.behind(0.95, 0.94) == pytest.approx(0.01) and ACCURACY.diff(0.01) == "1 point"
    assert ACCURACY.noise_floor(th) == 0.01 and ACCURACY.fmt(0.9944) == "99.4%"
    assert LOSS.behind(0.1, 0.104) == pytest.approx(0.04) and LOSS.behind(0.2, 0.1) == pytest.approx(-0.5)
    assert LOSS.spread(0.005, 0.1) == pytest.approx(0.05) and LOSS.noise_floor(th) == 0.05
    assert LOSS.behind(0.0, 0.0) == 0.0 and LOSS.behind(0.0, 0.1) == math.inf
    assert (LOSS.fmt(0.017034), LOSS.diff(0.04), LOSS.lead(1.62)) == ("0.01703", "4%", "162% in val loss")
    assert LOSS.order(0.1) > LOSS.order(0.2) and ACCURACY.order(0.9) > ACCURACY.order(0.8)
    assert (LOSS.mean, LOSS.std, LOSS.final_mean) == ("best_val_loss_mean", "best_val_loss_std",
                                                      "final_val_loss_mean")
