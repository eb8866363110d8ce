"""The diagnosis tables: within-noise warning, alpha vs the scaling rules, critical batch."""

from __future__ import annotations

from types import SimpleNamespace

from batchlab.analysis import CriticalBatchFit, Finding, PowerLawFit
from batchlab.analysis.scaling import judge_exponent
from batchlab.report import diagnosis

SQRT_FIT = PowerLawFit(alpha=0.55, coefficient=0.01, r2=0.97, n=4, alpha_stderr=0.02)


def group(label: str, best: float, std: float | None) -> dict:
    return {"label": label, "n": 2, "n_runs": 2, "best_val_acc_mean": best, "best_val_acc_std": std,
            "final_val_acc_mean": best - 0.01, "final_val_acc_std": std, "n_diverged": 0}


def analysis(**over) -> SimpleNamespace:
    base = dict(
        target=0.9, conclusions=["best config: batch 32, lr 0.1."],
        best={"group": group("batch 32, lr 0.1", 0.95, 0.01),
              "runner_up": group("batch 64, lr 0.1", 0.945, 0.01), "difference": 0.005,
              "noise": 0.01, "noise_source": "seeds", "within_noise": True},
        to_target_by_batch=[{"batch_size": 32, "steps": 100.0, "epochs": 2.0, "examples": 3200.0,
                             "wall_time": 1.5, "steps_label": "batch 32, lr 0.1"},
                            {"batch_size": 64, "steps": None, "epochs": None, "examples": None,
                             "wall_time": None, "steps_label": None}],
        best_lr_by_batch=[{"batch_size": 32, "lr": 0.1, "effective_lr": 0.1, "schedule": "constant",
                           "best_val_acc": 0.95, "n_lrs": 3}],
        gap_by_batch=[{"batch_size": 32, "label": "batch 32, lr 0.1", "train_acc": 0.99,
                       "val_acc": 0.95, "gap": 0.04, "gap_std": 0.01}],
        lr_exponent=SQRT_FIT, lr_rule=judge_exponent(SQRT_FIT, None, 8.0),
        critical_batch=CriticalBatchFit(s_min=100.0, e_min=6400.0, b_crit=64.0, rmse=0.02, n=4),
        runs=[SimpleNamespace(run_id="abc", status="completed", verdict=None, findings=[
            Finding("overfitting", "gap 12 points", 10, 1.0, {"gap": 0.12})])],
    )
    return SimpleNamespace(**{**base, **over})


def html(a: SimpleNamespace) -> str:
    return "".join(body for _, body in diagnosis.diagnosis_parts(a))


def test_within_noise_is_a_visible_warning_with_the_numbers():
    text = html(analysis())
    assert 'class="warn"' in text and "Within noise" in text and "0.005" in text and "0.01" in text
    assert "0.95 ± 0.01" in text and "runner-up" in text


def test_beyond_noise_has_no_warning():
    a = analysis()
    a.best = {**a.best, "difference": 0.05, "within_noise": False}
    assert 'class="warn"' not in html(a)


def test_alpha_is_compared_with_linear_and_sqrt_rules():
    text = html(analysis())  # 0.55 ± 4.303 x 0.02: only the square-root rule inside
    assert "α = 0.55" not in text and "0.55 ± 0.09" in text
    assert "the square-root rule (lr ∝ √B); the interval excludes the linear rule" in text
    assert "+0.05" in text and "-0.45" in text  # fitted minus sqrt, fitted minus linear
    assert "not fitted" in html(analysis(lr_exponent=None))


def test_alpha_whose_interval_holds_both_rules_names_neither():
    """The issue's case: alpha = 0.7 ± 0.83 cannot tell linear from square-root."""
    fit = PowerLawFit(0.7, 0.01, 0.8, 4, alpha_stderr=0.83 / 4.303)
    text = html(analysis(lr_exponent=fit, lr_rule=judge_exponent(fit, 3.16, 8.0)))
    assert "0.70 ± 0.83" in text and "cannot tell apart the linear rule" in text
    assert "closest" not in text and "must shrink below ±0.30" in text  # the distance to linear
    assert "a finer LR grid (steps of x3.16 limit α to ±0.55" in text
    assert "more batch sizes (the fit&#x27;s own 95% error is ±0.83 with 4)" in text


def test_critical_batch_and_time_to_target_tables():
    text = html(analysis())
    assert "B_crit" in text and ">64<" in text and "not reached" in text
    assert "No critical-batch fit" in html(analysis(critical_batch=None))


def test_nothing_best_and_per_run_findings():
    assert "No configuration qualifies" in html(analysis(best=None))
    verdict = diagnosis.run_verdicts(analysis())["abc"]
    assert verdict.label == "overfits" and verdict.evidence == ["overfitting: gap 12 points"]
    assert verdict.sentence == "It overfits at epoch 1: train acc ends 12 points above val acc."
