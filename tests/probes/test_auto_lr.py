"""train.lr = "auto": resolved once per probe key, with stable run ids."""

from lr_problem import DATA, QUICK, config

from batchlab.events import RunEnded
from batchlab.plan import plan_runs
from batchlab.probes.auto_lr import resolve_auto_lr
from batchlab.spec import spec_from_dict
from batchlab.train.loop import train_run


def test_auto_lr_is_resolved_once_per_batch_size_and_ids_are_stable():
    spec = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                           "train": {"lr": "auto", "threads": 1, "scale_lr": "linear"},
                           "sweep": {"grid": {"train.batch_size": [16, 32]}, "repeats": 2}})
    runs = plan_runs(spec)
    calls = []
    resolved = resolve_auto_lr(runs, repeats=1, on_result=lambda c, r: calls.append(c), **QUICK)
    assert len(calls) == 2  # two batch sizes; the two seeds of each share one test
    assert [r.run_id for r in resolved] == [r.config.run_id() for r in resolved]
    assert all(isinstance(r.config.train.lr, float) for r in resolved)
    by_batch = {}
    for r in resolved:
        t = r.config.train
        by_batch.setdefault(t.batch_size, set()).add(t.lr * t.batch_size / t.base_batch_size)
    assert all(len(v) == 1 for v in by_batch.values())  # effective LR shared by the seeds
    again = resolve_auto_lr(runs, repeats=1, **QUICK)
    assert [r.run_id for r in again] == [r.run_id for r in resolved]
    fixed = plan_runs(spec_from_dict({"data": DATA, "train": {"lr": 0.1}}))
    assert resolve_auto_lr(fixed) == fixed


def test_an_unresolved_auto_lr_fails_the_run_with_a_clear_message():
    events = []
    end = train_run(config(lr="auto", epochs=1), events.append)
    assert isinstance(end, RunEnded) and end.status == "failed"
    assert "must be resolved by the LR range test first" in end.error


def test_each_lr_found_is_said_with_how_sure_and_its_cost_beside_the_run():
    import re

    from batchlab.execute.sweep import prepare_sweep

    spec = spec_from_dict({"data": DATA, "model": {"name": "mlp", "hidden": [16]},
                           "train": {"lr": "auto", "threads": 1, "epochs": 2, "batch_size": 32,
                                     "scale_lr": "linear", "base_batch_size": 16}})
    prepared = prepare_sweep(spec)
    (note,) = [n for n in prepared.notes if n.startswith("lr = 'auto'")]
    said = re.fullmatch(r"lr = 'auto' at batch 32: (\S+), the effective LR under scale_lr = 'linear' "
                        r"\(confidence (?:high|medium|low)\); finding it took (\S+) epochs of training, "
                        r"(\S+)x the run's 2 epochs \(`batchlab lr-find` shows how it was found\)\.", note)
    assert said is not None, note
    ((_, _, found),), (run,) = prepared.probes, prepared.runs
    assert float(said[1]) == float(f"{found['suggested_lr']:.3g}")
    assert float(said[1]) == float(f"{run.config.train.lr * 2:.3g}")  # linear: 2x train.lr at 32
    cost = found["per_batch"][0]["cost_epochs"]
    assert float(said[2]) == float(f"{cost:.2g}") and float(said[3]) == float(f"{cost / 2:.2g}")


def test_a_probe_that_takes_every_step_of_the_run_costs_the_run_s_epochs_not_more():
    """480 training examples at batch 64: 8 steps an epoch, the last of 32 examples. The probe
    fits two 8-step miniatures in the 16-step run: 2 epochs, 1x the run (it said 2.1 epochs,
    1.1x: its steps counted as full batches)."""
    from batchlab.execute.sweep import prepare_sweep

    spec = spec_from_dict({"data": {**DATA, "size": 600}, "model": {"name": "mlp", "hidden": [16]},
                           "train": {"lr": "auto", "threads": 1, "epochs": 2, "batch_size": 64}})
    prepared = prepare_sweep(spec)
    (note,) = [n for n in prepared.notes if n.startswith("lr = 'auto'")]
    ((_, _, found),) = prepared.probes
    (b,) = found["per_batch"]
    assert b["cost_steps"] == 16 and b["cost_epochs"] == 2.0
    assert "finding it took 2 epochs of training, 1x the run's 2 epochs" in note, note
