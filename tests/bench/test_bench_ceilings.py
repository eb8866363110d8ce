"""bench/horizon_designs.py and bench/judgement.py: what a pick scored against the grid
(metric lost, within noise, against the LR-free peers), and the ceiling a perfect suggestion
would reach, computed from the ground truth's numbers."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from horizon_designs import ceilings, outcome  # noqa: E402
from judgement import print_suggestions  # noqa: E402


def table(regression: bool = False, free: float = 0.85) -> dict:
    scores = ({"0.1": -0.5, "1.0": -0.75, "0.01": math.nan} if regression
              else {"0.1": 0.79, "1.0": 0.5, "0.01": math.nan})
    best = -0.5 if regression else 0.8
    return {"regression": regression, "free": free,
            "summary": {"best": best, "best_lr": 0.1, "noise": 0.02, "scores": scores}}


def test_a_pick_is_judged_by_the_full_runs_score_at_its_lr() -> None:
    near = outcome(table(), 0.1)
    assert near["lost"] == pytest.approx(0.01) and near["in_noise"] and not near["free"]
    far = outcome(table(free=0.4), 1.0)
    assert far["lost"] == pytest.approx(0.3) and not far["in_noise"] and far["free"]
    # a regression loses relative MSE: -0.75 against -0.5 is 50 % more
    assert outcome(table(regression=True), 1.0)["lost"] == pytest.approx(0.5)


def test_no_answer_counts_no_loss_and_a_failed_run_loses_everything() -> None:
    assert outcome(table(), None) == {"lost": None, "in_noise": False, "free": False}
    assert outcome(table(), 0.01)["lost"] == 1.0


def test_ceilings_average_over_the_answers_only() -> None:
    line = ceilings([table(), table(), table(regression=True)], [0.1, None, 1.0])
    assert "answer  2/3" in line and "acc lost  1.0 pts" in line and "mse lost 50.0%" in line
    assert "in noise  1/3" in line


def test_the_judgement_table_prints_what_the_grid_itself_reaches_against_the_lr_free(capsys) -> None:
    def row(best: float, free: float) -> dict:
        judged = {"batchlab": {"lr": 0.1, "best_lr": 0.1, "answered": True, "ratio": 1.0,
                               "inside": True, "within3": True, "within2": True, "failed": False,
                               "score": best, "lost": 0.0, "cost": 0.5}}
        return {"case": "x", "regression": False, "best": best, "noise": 0.01,
                "free": ("prodigy", free), "judged": judged}

    print_suggestions("dev", [row(0.9, 0.8), row(0.9, 0.85), row(0.5, 0.8), row(0.7, 0.705)])
    out = capsys.readouterr().out
    assert "is >= the best LR-free optimizer on 75% of these cases" in out
    assert "FAIL  >= the best LR-free optimizer (within noise) on >= 80% (75%)" in out


def test_extrapolation_to_the_full_run_can_reverse_the_ranking_at_a_tenth() -> None:
    from horizon_variants import extrapolated

    def row(frac: float, lr: float, acc: float) -> dict:
        return {"frac": frac, "lr": lr, "val_acc": acc, "val_loss": 1 - acc, "rejected": None}

    # LR 1 leads at a tenth of the run, but LR 0.1 gains faster between a twentieth and a tenth
    t = {"total": 1000, "regression": False, "n_val": 10_000,
         "rows": [row(1 / 20, 1.0, 0.60), row(1 / 10, 1.0, 0.62),
                  row(1 / 20, 0.1, 0.40), row(1 / 10, 0.1, 0.55)]}
    assert extrapolated(t, 1 / 20, 1 / 10, 1.0) == 0.1
    # a smaller gain (0.50 -> 0.55) extrapolates to 0.595 against LR 1's 0.638: no reversal
    slower = {**t, "rows": [*t["rows"][:2], row(1 / 20, 0.1, 0.50), row(1 / 10, 0.1, 0.55)]}
    assert extrapolated(slower, 1 / 20, 1 / 10, 1.0) == 1.0
    assert extrapolated({**t, "total": 100}, 1 / 10, 1 / 10, 1.0) is None
