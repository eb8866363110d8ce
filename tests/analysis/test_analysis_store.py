"""analyze_experiment against a real (tiny) store written through Store.record events."""

from __future__ import annotations

import json
import math

import pytest

from batchlab.analysis import ANALYSIS_METRICS, EVAL_METRICS, analyze_experiment
from batchlab.errors import StoreError
from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.plan import plan_runs
from batchlab.spec import spec_from_dict
from batchlab.store import Store

N_TRAIN, EPOCHS = 256, 6
FINAL_ACC = {16: 0.90, 32: 0.96, 64: 0.93}


def train(store: Store, run_id: str, batch: int, *, diverge_at: int | None = None) -> None:
    """Write the events a run of ``batch`` would emit: per-step loss/lr, per-epoch evaluations."""
    spe = math.ceil(N_TRAIN / batch)
    total = EPOCHS * spe
    store.record(RunStarted(run_id, total, 0, {}))
    rows = []

    def clocks(step: int) -> tuple[float, int, float]:
        return step / spe, min(step * batch, step // spe * N_TRAIN + (step % spe) * batch), step * 0.01

    for step in range(total + 1):
        if step:
            loss = math.nan if step == diverge_at else 2.3 * math.exp(-step / spe)
            rows += [("train_loss", step, loss, *clocks(step)), ("lr", step, 0.01, *clocks(step))]
            if step == diverge_at:
                break
        if step % spe == 0:
            rise = 1 - math.exp(-step / spe)
            values = {"val_acc": FINAL_ACC[batch] * rise, "train_acc": rise, "val_loss": 2.3 - 2 * rise,
                      "train_eval_loss": 2.3 - 2.2 * rise}
            rows += [(name, step, v, *clocks(step)) for name, v in values.items()]
    store.record(MetricRows(run_id, rows, step))
    status = "diverged" if diverge_at else "completed"
    summary = {"effective_lr": 0.01, "steps_per_epoch": spe, "total_steps": total, "n_train": N_TRAIN}
    if diverge_at:
        summary["diverged_at_step"] = diverge_at
    store.record(RunEnded(run_id, status, step, step * 0.01, summary))


@pytest.fixture
def store(tmp_path):
    spec = spec_from_dict({"name": "exp", "sweep": {"grid": {"train.batch_size": [16, 32, 64, 128]},
                                                     "repeats": 2}})
    runs = plan_runs(spec)
    with Store(tmp_path / "b.db") as st:
        st.add_experiment("exp", spec.model_dump(mode="json"), runs)
        for run in runs:
            batch = run.config.train.batch_size
            if batch in FINAL_ACC:  # batch 128 stays pending
                seed = run.config.train.seed
                train(st, run.run_id, batch, diverge_at=5 if (batch, seed) == (64, 1) else None)
        yield st


def test_analyze_experiment_reads_the_store(store):
    result = analyze_experiment(store, "exp")
    assert len(result.runs) == 8 and len(result.groups) == 4
    assert result.best["group"]["batch_size"] == 32 and result.best["group"]["n"] == 2
    assert result.target == pytest.approx(0.95 * FINAL_ACC[32] * (1 - math.exp(-EPOCHS)))
    by_id = {r.run_id: r for r in result.runs}
    diverged = [r for r in by_id.values() if r.status == "diverged"]
    assert len(diverged) == 1 and diverged[0].findings[0].message.startswith("diverged at step 5")
    pending = [r for r in by_id.values() if r.status == "pending"]
    assert len(pending) == 2 and all(r.findings == [] and r.hit is None for r in pending)
    assert [r["batch_size"] for r in result.to_target_by_batch] == [16, 32, 64, 128]
    assert [r["reached"] for r in result.to_target_by_batch] == [False, True, False, False]
    text = " ".join(result.conclusions)
    assert "8 runs in 'exp': 5 completed, 2 pending, 1 diverged." in text
    assert "best config: batch 32" in text
    assert "batch 16, 64 never reach the target with every seed of a config that did not diverge." in text
    assert "batch 128: no evaluated runs yet." in text
    json.dumps(result.to_dict(), allow_nan=False)


def test_per_step_loss_is_read_only_where_it_can_matter(store, monkeypatch):
    asked: dict[str, list[tuple[str, ...]]] = {}
    real = Store.metrics

    def spy(self, run_id, names=None):
        asked.setdefault(run_id, []).append(tuple(names))
        return real(self, run_id, names)

    monkeypatch.setattr(Store, "metrics", spy)
    result = analyze_experiment(store, "exp")
    for run in result.runs:
        # healthy completed runs: evaluations only; diverged and pending ones: the per-step loss too
        expected = [EVAL_METRICS] + ([("train_loss",)] if run.status != "completed" else [])
        assert asked[run.run_id] == expected
    assert set(EVAL_METRICS) | {"train_loss"} == set(ANALYSIS_METRICS)


def test_an_unknown_experiment_raises_the_store_error(store):
    with pytest.raises(StoreError, match="no experiment named 'nope'"):
        analyze_experiment(store, "nope")


def test_an_experiment_without_runs(store):
    store.add_experiment("empty", {}, [])
    result = analyze_experiment(store, "empty")
    assert result.conclusions == ["experiment 'empty' has no runs: nothing to analyse yet."]
    assert result.target is None and result.best is None and result.runs == []
