"""sweep.prune across a sweep: hopeless runs, successive halving, and the resume rules."""

import math

import fn_train
import numpy as np
import pytest
from torch import nn

import batchlab as bl
from batchlab.errors import DataError, SpecError
from batchlab.execute.halving import rung_budgets, survivors, train_sizes
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.local import LocalPoolExecutor
from batchlab.execute.ray import RayExecutor
from batchlab.execute.sweep import executor_data, prepare_sweep, run_sweep
from batchlab.objects import ObjectInputs
from batchlab.spec import spec_from_dict
from batchlab.store import Store

EXECUTORS = {"inline": lambda: InlineExecutor(threads=1), "pool": lambda: LocalPoolExecutor(2),
             "ray": lambda: RayExecutor(cpus_per_run=1)}


def hopeless_spec(prune="hopeless"):
    return spec_from_dict({
        "name": "hop", "data": {"name": "digits", "limit": 400},
        "model": {"name": "mlp", "hidden": [32]},
        "train": {"batch_size": 16, "epochs": 8, "threads": 1},
        "sweep": {"prune": prune, "grid": {"train.lr": [0.05, 1.0]}},
    })


def halving_spec(**sweep):
    # 240 training examples: 1 epoch = 240 examples at every batch size
    return spec_from_dict({
        "name": "halve", "data": {"name": "synthetic", "shape": [12], "classes": 3, "size": 300},
        "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 9, "lr": 0.05, "threads": 1},
        "sweep": {"prune": "halving", "grid": {"train.batch_size": [16, 32, 64],
                                               "train.lr": [0.01, 0.05, 0.2]}, **sweep},
    })


def by_lr(store, name):
    return {r.config["train"]["lr"]: r for r in store.runs(name)}


def test_hopeless_prunes_the_collapsed_run_and_a_rerun_skips_it(tmp_path):
    with Store(tmp_path / "s.db") as store:
        out = run_sweep(hopeless_spec(), store, InlineExecutor(threads=1))
        runs = by_lr(store, "hop")
        assert runs[0.05].status == "completed" and runs[1.0].status == "pruned"
        assert runs[1.0].error.startswith("collapsed to chance")
        rows = store.count_metric_rows(runs[1.0].id)
        assert rows > 0 and runs[1.0].steps < runs[1.0].total_steps
        assert out.all_failed() is None
        # a plain re-run (even with pruning off) treats pruned like completed
        again = run_sweep(hopeless_spec("off"), store, InlineExecutor(threads=1))
        assert again.trained == 0 and again.skipped == 2
        assert store.count_metric_rows(runs[1.0].id) == rows
        # --rerun trains it again: with pruning off it now runs to the end
        redo = run_sweep(hopeless_spec("off"), store, InlineExecutor(threads=1), rerun=True)
        assert redo.trained == 2
        rerun = store.run(runs[1.0].id)
        assert rerun.status == "completed" and rerun.steps == rerun.total_steps and rerun.error is None


def test_rung_budgets_are_in_examples_and_never_under_an_epoch():
    assert rung_budgets([2160] * 9, [240] * 9, 9, 3) == [240, 720]
    assert rung_budgets([2160] * 16, [240] * 16, 16, 3) == [240, 720]
    assert rung_budgets([2160] * 9, [500] * 9, 9, 3) == [720]  # 2160/9 is under an epoch
    assert rung_budgets([2160] * 2, [240] * 2, 2, 3) == []  # fewer configs than eta
    assert survivors({"a": 1.0, "b": 0.5, "c": math.inf, "d": 2.0}, 3, 4) == ["b", "a"]


@pytest.mark.parametrize("kind", sorted(EXECUTORS))
def test_halving_keeps_the_best_third_at_rungs_of_equal_examples(tmp_path, kind, request):
    if kind == "ray":
        request.getfixturevalue("ray_local")
    with Store(tmp_path / "s.db") as store:
        out = run_sweep(halving_spec(), store, EXECUTORS[kind]())
        runs = store.runs("halve")
        seen = {r.id: int(store.metrics(r.id, ["val_loss"])["val_loss"].examples[-1]) for r in runs}
        status = {r.id: r.status for r in runs}
        # 9 configurations -> 3 after rung 1 (240 examples) -> 1 after rung 2 (720) -> the end
        rung1 = [r for r in runs if seen[r.id] == 240]
        rung2 = [r for r in runs if seen[r.id] == 720]
        done = [r for r in runs if status[r.id] == "completed"]
        assert len(rung1) == 6 and len(rung2) == 2 and len(done) == 1
        assert all(status[r.id] == "pruned" for r in rung1 + rung2)
        assert seen[done[0].id] == 2160
        # equal examples seen whatever the batch size: 240 examples = 15, 8 and 4 steps
        assert len({r.config["train"]["batch_size"] for r in rung1}) >= 2
        for r in rung1:
            assert r.steps == math.ceil(240 / r.config["train"]["batch_size"])
            assert "at 240 examples seen ranks" in r.error and "rung 1 of 2" in r.error
        for r in rung2:
            assert r.steps == 3 * math.ceil(240 / r.config["train"]["batch_size"])
            assert "at 720 examples seen ranks" in r.error and "(the best 1 continue)" in r.error
        # those kept had the lowest validation loss at the rung
        def loss_at(r, examples):
            s = store.metrics(r.id, ["val_loss"])["val_loss"]
            return float(s.value[list(s.examples).index(examples)])
        assert max(loss_at(r, 240) for r in rung2 + done) < min(loss_at(r, 240) for r in rung1)
        assert loss_at(done[0], 720) < min(loss_at(r, 720) for r in rung2)
        assert out.trained == 9
        # a plain re-run has nothing left to do; pruned runs keep no checkpoint
        assert run_sweep(halving_spec(), store, EXECUTORS[kind]()).trained == 0
        assert not (tmp_path / "s.db.ckpt").exists()


def test_halving_needs_checkpoints():
    spec = spec_from_dict({**halving_spec().model_dump(), "train": {"checkpoint": False}})
    with pytest.raises(SpecError, match="train.checkpoint = false"):
        prepare_sweep(spec)


def test_halving_picks_up_from_the_store_after_an_interruption(tmp_path):
    """The ranking at each rung is read back from the store: a run of the sweep left
    unfinished (here: the survivor reset to pending) is trained again, nothing else is, and
    every other run keeps its status."""
    from batchlab.store.lifecycle import reset_runs

    with Store(tmp_path / "s.db") as store:
        run_sweep(halving_spec(), store, InlineExecutor(threads=1))
        before = {r.id: r.status for r in store.runs("halve")}
        survivor = next(rid for rid, s in before.items() if s == "completed")
        reset_runs(store, [survivor])
        again = run_sweep(halving_spec(), store, InlineExecutor(threads=1))
        assert again.trained == 1
        assert {r.id: r.status for r in store.runs("halve")} == before
        seen = store.metrics(survivor, ["val_loss"])["val_loss"].examples.tolist()
        assert seen[-1] == 2160 and 240 in seen and 720 in seen


def arrays(n=300):
    """Three classes from the signs of two of 12 features: 240 training examples after the
    default validation split, as ``halving_spec``'s data."""
    x = np.random.default_rng(0).normal(size=(n, 12)).astype("float32")
    return x, ((x[:, 0] > 0).astype("int64") + (x[:, 1] > 0))


def net():
    return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))


def test_halving_over_arrays_passed_to_the_python_api(tmp_path):
    """The arrays exist only in the call's RunInputs (data.name = 'memory'): the driver reads
    their size from them, as the runs read the data, and halves as a spec's sweep does."""
    db = tmp_path / "api.db"
    grid = {"batch_size": [16, 32, 64], "lr": [0.01, 0.05, 0.2]}
    result = bl.sweep("arrays", model=net(), train=arrays(), grid=grid, prune="halving", epochs=9,
                      threads=1, store=db, verbose=False)
    assert (result.planned, result.trained) == (9, 9)
    with Store(db) as store:
        runs = store.runs("arrays")
        curve = {r.id: store.metrics(r.id, ["val_loss"])["val_loss"] for r in runs}
    seen = {r.id: int(curve[r.id].examples[-1]) for r in runs}
    rung1 = [r for r in runs if seen[r.id] == 240]
    rung2 = [r for r in runs if seen[r.id] == 720]
    done = [r for r in runs if r.status == "completed"]
    assert len(rung1) == 6 and len(rung2) == 2 and len(done) == 1 and seen[done[0].id] == 2160
    assert all(r.status == "pruned" for r in rung1 + rung2)
    assert all("at 240 examples seen ranks" in r.error for r in rung1)
    assert all("at 720 examples seen ranks" in r.error for r in rung2)

    def loss_at(r, examples):
        return float(curve[r.id].value[list(curve[r.id].examples).index(examples)])
    assert max(loss_at(r, 240) for r in rung2 + done) < min(loss_at(r, 240) for r in rung1)
    assert loss_at(done[0], 720) < min(loss_at(r, 720) for r in rung2)
    again = bl.sweep("arrays", model=net(), train=arrays(), grid=grid, prune="halving", epochs=9,
                     threads=1, store=db, verbose=False)
    assert again.trained == 0 and again.skipped == 9


def test_the_driver_reads_data_sizes_as_the_executor_reads_its_data():
    """Sizes prepare_sweep did not give are read with the executor's RunInputs (the API's
    arrays), not the spec's loader, which cannot reach data.name = 'memory'."""
    objects = ObjectInputs.create(net(), arrays(), None, None, None)
    runs = plan_arrays_runs(objects)
    load = executor_data(InlineExecutor(inputs=objects.run_inputs()))
    assert train_sizes(runs, {}, load) == {r.run_id: 240 for r in runs}
    assert train_sizes(runs, {runs[0].run_id: 7}, load)[runs[0].run_id] == 7
    with pytest.raises(DataError, match="names arrays passed to the Python API"):
        train_sizes(runs, {}, executor_data(InlineExecutor()))  # what the driver did


def plan_arrays_runs(objects):
    from batchlab.apispec import api_spec
    from batchlab.plan import plan_runs

    spec = api_spec("a", data=objects.data_spec(), model=objects.model_spec(),
                    grid={"lr": [0.01, 0.1]}, fields={}, repeats=1, prune="halving", call="sweep")
    return plan_runs(spec)


def test_halving_over_arrays_needs_checkpoints_and_says_so_before_the_store(tmp_path):
    with pytest.raises(SpecError, match="train.checkpoint = false"):
        bl.sweep("nock", model=net(), train=arrays(), grid={"lr": [0.01, 0.05, 0.2]},
                 prune="halving", checkpoint=False, store=tmp_path / "s.db", verbose=False)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(("grid", "epochs", "says"), [
    ({"train.lr": [0.01, 0.2]}, 9, "the sweep has 2 configurations, fewer than "
     "sweep.halving_eta = 3, and each rung keeps the best 1/3 of them, so every run trains to "
     "its end (runs that collapse to chance are still pruned, as with 'hopeless'). To compare "
     "them at rungs, sweep 3 or more configurations (seeds of one count as one), or set "
     "sweep.halving_eta = 2"),
    ({"train.seed": [0, 1]}, 9, "the sweep has 1 configuration, fewer than sweep.halving_eta = 3"),
    ({"train.lr": [0.01, 0.05, 0.2]}, 2, "the shortest run sees 480 examples, so the first rung "
     "(480/3) would come before the end of the first epoch (240 examples), where no run can "
     "pause, so every run trains to its end"),
])
def test_halving_that_halves_nothing_says_so_at_the_start(tmp_path, grid, epochs, says):
    spec = spec_from_dict({**halving_spec().model_dump(), "train": {"epochs": epochs, "threads": 1},
                           "sweep": {"prune": "halving", "grid": grid}})
    notices = []
    with Store(tmp_path / "s.db") as store:
        run_sweep(spec, store, InlineExecutor(threads=1), on_notice=notices.append)
        runs = store.runs("halve")
    note, = [n for n in notices if "halving" in n]
    assert note.startswith("sweep.prune = 'halving' halves nothing here: ") and says in note
    assert "sweep.halving_eta = 1" not in note  # eta is 2 at least: only for 2 configurations
    assert all(r.status == "completed" and r.steps == r.total_steps for r in runs)
    assert note in prepare_sweep(spec).notes
    # a sweep that halves says nothing of it
    assert not [n for n in prepare_sweep(halving_spec()).notes if "halving" in n]


def test_halving_that_halves_nothing_warns_in_the_python_api(tmp_path):
    with pytest.warns(UserWarning, match="the sweep has 2 configurations, fewer than sweep.halving_eta = 3"):
        bl.sweep("two", model=net(), train=arrays(), grid={"lr": [0.01, 0.2]}, prune="halving",
                 epochs=2, threads=1, store=tmp_path / "s.db", verbose=False)
    with pytest.warns(UserWarning, match="the sweep has 1 configuration, fewer than sweep.halving_eta = 3"):
        bl.sweep("one", fn_train.scripted, grid={"quality": [1.0]}, epochs=2, n_train=100,
                 prune="halving", store=tmp_path / "s.db", verbose=False)
