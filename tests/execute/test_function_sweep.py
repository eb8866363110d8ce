"""Function sweeps through the Python API: bl.sweep(name, train_fn, grid=...)."""

import math
import shutil
import sys
import textwrap
import warnings
from pathlib import Path

import fn_train
import pytest
import torch

import batchlab as bl
from batchlab.errors import BatchlabError, ExecutorError
from batchlab.spec import ScheduleSpec
from batchlab.store import Store
from batchlab.store.lifecycle import checkpoint_file
from batchlab.train.schedules import schedule_fn

HERE = Path(__file__).parent


def runs_of(db, name):
    with Store(db) as st:
        return {r.id: (r, st.metrics(r.id)) for r in st.runs(name)}


def test_runs_are_stored_like_built_in_runs_and_skipped_when_finished(tmp_path):
    db = tmp_path / "s.db"
    kw = dict(grid={"batch_size": [32, 64], "width": [16, 32]}, epochs=2, lr=0.05,
              schedule="cosine", n_train=200, num_classes=5, store=db)
    first = bl.sweep("fn", fn_train.train, **kw)
    assert (first.planned, first.skipped, first.trained) == (4, 0, 4)
    runs = runs_of(db, "fn")
    assert len(runs) == 4
    widths = set()
    for record, metrics in runs.values():
        t = record.config["train"]
        widths.add(t["options"]["width"])
        assert record.status == "completed"
        assert record.config["data"]["name"] == record.config["model"]["name"] == "custom"
        spe = math.ceil(200 / t["batch_size"])
        loss = metrics["train_loss"]
        assert loss.step.tolist() == list(range(1, 2 * spe + 1))  # every step once
        # epochs and examples seen as the built-in trainer counts them (last batch partial)
        assert metrics["val_acc"].epoch.tolist() == [1.0, 2.0]
        assert metrics["val_acc"].examples.tolist() == [200, 400]
        # the LR rows follow batchlab's cosine schedule over the run's 2 epochs
        lr_at = schedule_fn(ScheduleSpec(name="cosine"), 0.05, 2 * spe, spe)
        assert metrics["lr"].value.tolist() == pytest.approx([lr_at(s) for s in range(2 * spe)])
        s = record.summary
        assert s["total_steps"] == 2 * spe and s["n_train"] == 200 and s["num_classes"] == 5
        assert s["final_val_acc"] == metrics["val_acc"].value[-1]
        assert s["best_val_acc"] == max(metrics["val_acc"].value)
        assert s["final_train_loss"] == pytest.approx(loss.value[-1])
    assert widths == {16, 32}
    again = bl.sweep("fn", fn_train.train, **kw)
    assert (again.planned, again.skipped, again.trained) == (4, 4, 0)
    assert not checkpoint_file(db, "x").parent.exists()  # every run final: no checkpoint left


def test_an_interrupted_run_resumes_from_its_save_with_the_numbers_of_an_unbroken_one(
        tmp_path, monkeypatch):
    kw = dict(grid={"batch_size": [40]}, epochs=5, lr=0.05, schedule="onecycle", n_train=200)
    bl.sweep("ref", fn_train.train, store=tmp_path / "ref.db", **kw)
    (_, reference), = runs_of(tmp_path / "ref.db", "ref").values()
    db = tmp_path / "s.db"
    monkeypatch.setattr(fn_train, "INTERRUPT_AFTER_EPOCH", 3)
    with pytest.raises(KeyboardInterrupt):
        bl.sweep("cut", fn_train.train, store=db, **kw)
    (record, _), = runs_of(db, "cut").values()
    assert record.status == "interrupted" and checkpoint_file(db, record.id).is_file()
    again = bl.sweep("cut", fn_train.train, store=db, **kw)
    assert again.trained == 1
    (record, metrics), = runs_of(db, "cut").values()
    assert record.status == "completed" and record.attempts == 2
    for name in ("train_loss", "lr", "val_loss", "val_acc"):
        assert metrics[name].step.tolist() == reference[name].step.tolist(), name
        assert metrics[name].value.tolist() == reference[name].value.tolist(), name
    assert not checkpoint_file(db, record.id).exists()  # final: nothing left to resume


def test_the_function_sees_the_resolved_point(tmp_path):
    seen = []

    def record(run):
        seen.append((dict(run.config), run.lr, run.lr_at(0)))
        run.log(1, train_loss=1.0)

    bl.sweep("cfg", record, grid={"batch_size": [64, 128], "augment": ["flip", "none"]},
             lr=0.1, scale_lr="linear", base_batch_size=64, steps=5, seed=3,
             schedule={"name": "step", "unit": "step", "step_size": 2}, store=tmp_path / "s.db")
    assert len(seen) == 4
    for config, lr, first in seen:
        assert config["seed"] == 3 and config["steps"] == 5 and config["schedule"]["name"] == "step"
        assert config["augment"] in ("flip", "none")
        assert lr == first == pytest.approx(0.1 * config["batch_size"] / 64)  # the linear rule


def test_two_lambdas_swept_on_the_same_grid_are_runs_of_their_own(tmp_path):
    db, kw = tmp_path / "s.db", dict(grid={"batch_size": [8]}, lr=0.1, epochs=1, verbose=False)
    first = bl.sweep("a", lambda run: run.log(1, train_loss=1.0, val_acc=0.1), store=db, **kw)
    second = bl.sweep("b", lambda run: run.log(1, train_loss=2.0, val_acc=0.9), store=db, **kw)
    # both lambdas are '<lambda>': the second took the first's run as its own, skipped
    assert (second.skipped, second.trained) == (0, 1)
    assert [r["final_val_acc"] for r in first.rows + second.rows] == [0.1, 0.9]
    line = sys._getframe().f_lineno - 4  # the second lambda's line
    (record, _), = runs_of(db, "b").values()
    assert record.config["train"]["function"].endswith(f".<locals>.<lambda>@{line}")


def test_a_failing_function_fails_its_run_with_the_cause_and_where(tmp_path):
    def broken(run):
        run.log(1, train_loss=2.0)
        raise RuntimeError("CUDA out of memory (pretend)")

    with pytest.raises(ExecutorError, match="RuntimeError: CUDA out of memory"):  # its only run
        bl.sweep("bad", broken, grid={"lr": [0.1]}, store=tmp_path / "s.db")
    (record, metrics), = runs_of(tmp_path / "s.db", "bad").values()
    assert record.status == "failed"
    assert "RuntimeError: CUDA out of memory (pretend)" in record.error
    assert "test_function_sweep.py" in record.error and "in broken" in record.error
    assert metrics["train_loss"].value.tolist() == [2.0]  # the rows before the failure are kept


def test_a_call_whose_runs_all_failed_raises_though_earlier_runs_completed(tmp_path):
    # the experiment's width-8 run completed in the first call, so the second call, whose only
    # run failed, returned as a success
    def wide_fails(run):
        if run.config["width"] > 8:
            raise ValueError("too wide")
        run.log(1, train_loss=1.0)

    bl.sweep("w", wide_fails, grid={"width": [8]}, store=tmp_path / "s.db", verbose=False)
    with pytest.raises(ExecutorError, match=r"the only run this call trained \(\w+\) failed: "
                                            "ValueError: too wide"):
        bl.sweep("w", wide_fails, grid={"width": [16]}, store=tmp_path / "s.db", verbose=False)


def test_a_schedule_not_what_its_name_promises_is_said_when_the_run_length_is_known(tmp_path):
    # a model sweep (and the CLI) says these; a function sweep trained them without a word
    def logs(run):
        run.log(1, train_loss=1.0)

    with pytest.warns(UserWarning, match=r"warmup = 1000 steps is as long as the run \(10 steps\)"):
        bl.sweep("wu", logs, schedule={"name": "cosine", "warmup": 1000}, steps=10, lr=0.1,
                 store=tmp_path / "s.db", verbose=False)
    with pytest.warns(UserWarning, match="first decay comes after 10 epochs, at or past the end"):
        bl.sweep("st", logs, schedule="step", epochs=2, n_train=100, lr=0.1,
                 store=tmp_path / "s.db", verbose=False)
    with warnings.catch_warnings():  # run length unknown (epochs, no n_train): nothing said
        warnings.simplefilter("error")
        bl.sweep("unknown", logs, schedule={"name": "constant", "warmup": 3}, epochs=2, lr=0.1,
                 store=tmp_path / "s.db", verbose=False)


def test_a_negative_step_is_said_as_bl_track_says_it(tmp_path):
    # it was called "at or before the run's last save (step -1)" of a run that never saved
    def negative(run):
        run.log(-1, train_loss=1.0)

    with pytest.raises(ExecutorError, match=r"step = -1 must be an integer >= 0"):
        bl.sweep("neg", negative, lr=0.1, store=tmp_path / "s.db", verbose=False)


def test_values_still_in_their_graph_are_read_without_a_torch_warning(tmp_path):
    # a returned dict's val_loss with requires_grad made torch warn, from batchlab's line,
    # "Converting a tensor with requires_grad=True to a scalar"
    def graph(run):
        w = torch.tensor(0.5, requires_grad=True)
        run.log(1, train_loss=w * 2)
        return {"val_loss": w * 0.6, "val_acc": 0.7}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = bl.sweep("graph", graph, lr=0.1, store=tmp_path / "s.db", verbose=False)
    (row,) = res.rows
    assert row["final_val_loss"] == pytest.approx(0.3) and row["final_train_loss"] == 1.0


def test_an_error_raised_inside_torch_names_the_users_line_that_called_it(tmp_path):
    def wrong_scheduler(run):
        run.scheduler(torch.nn.Linear(2, 2))  # a module, not its optimizer: torch raises

    with pytest.raises(ExecutorError):
        bl.sweep("torch-raised", wrong_scheduler, grid={"lr": [0.1]}, store=tmp_path / "s.db")
    (record, _), = runs_of(tmp_path / "s.db", "torch-raised").values()
    line = wrong_scheduler.__code__.co_firstlineno + 1
    # not torch's lr_scheduler.py nor batchlab's handle.py, through which it was raised
    assert record.error == ("TypeError: Linear is not an Optimizer "
                            f"(at test_function_sweep.py:{line} in wrong_scheduler)")


def test_a_non_finite_loss_ends_the_run_diverged_and_should_stop_says_so(tmp_path):
    stopped_at = []

    def blows_up(run):
        for step in range(1, 50):
            run.log(step, train_loss=float("nan") if step == 7 else 1.0)
            if run.should_stop():
                stopped_at.append(step)
                return

    bl.sweep("nan", blows_up, grid={"lr": [0.1]}, store=tmp_path / "s.db")
    (record, metrics), = runs_of(tmp_path / "s.db", "nan").values()
    assert stopped_at == [7]
    assert record.status == "diverged" and record.steps == 7
    assert metrics["train_loss"].step.tolist() == list(range(1, 8))


def test_a_diverged_runs_summary_holds_only_the_values_its_stored_rows_hold(tmp_path):
    def blows_up(run):
        for step in range(1, 5):
            run.log(step, train_loss=float("nan") if step == 4 else 1.0)
        run.log(3, val_loss=0.5, val_acc=0.4)
        # logged before the rows are flushed: the divergence at step 4 is not known yet
        run.log(5, train_loss=0.2)
        run.log(5, val_loss=0.1, val_acc=0.9)

    bl.sweep("nan", blows_up, grid={"lr": [0.1]}, epochs=1, store=tmp_path / "s.db", verbose=False)
    (record, metrics), = runs_of(tmp_path / "s.db", "nan").values()
    assert record.status == "diverged" and record.steps == 4
    assert metrics["val_acc"].step.tolist() == [3]  # step 5's rows are dropped
    s = record.summary
    # they read the step-5 values: best and final val acc 0.9, a row the store does not hold
    assert (s["best_val_acc"], s["final_val_acc"], s["best_val_loss"]) == (0.4, 0.4, 0.5)
    assert "final_train_loss" not in s  # step 4's loss is not finite; step 5's is not the run's


def test_a_step_logged_twice_is_summarised_as_stored_its_last_value(tmp_path):
    def twice(run):
        run.log(1, train_loss=1.0)
        run.log(1, val_loss=0.3, val_acc=0.9)
        run.log(1, val_loss=0.4, val_acc=0.6)

    bl.sweep("twice", twice, grid={"lr": [0.1]}, epochs=1, store=tmp_path / "s.db", verbose=False)
    (record, metrics), = runs_of(tmp_path / "s.db", "twice").values()
    assert metrics["val_loss"].value.tolist() == [0.4] and metrics["val_acc"].value.tolist() == [0.6]
    s = record.summary
    assert (s["best_val_loss"], s["best_val_acc"], s["final_val_acc"]) == (0.4, 0.6, 0.6)


def test_a_collapsed_run_is_pruned_as_hopeless(tmp_path):
    db = tmp_path / "s.db"
    accs = [0.9, 0.95, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]  # learned, then at chance (1/10)
    bl.sweep("hope", fn_train.scripted, grid={"quality": [1.0]}, accs=accs, epochs=10,
             n_train=100, batch_size=50, num_classes=10, store=db)
    (record, metrics), = runs_of(db, "hope").values()
    assert record.status == "pruned"
    assert record.error.startswith("collapsed to chance: val acc 0.1")
    assert metrics["val_acc"].value.tolist() == accs[:5]  # stopped at the 3rd evaluation at chance
    # with prune="off" the same run trains to the end
    off = tmp_path / "off.db"
    bl.sweep("off", fn_train.scripted, grid={"quality": [1.0]}, accs=accs, epochs=10,
             n_train=100, batch_size=50, num_classes=10, prune="off", store=off)
    (record, metrics), = runs_of(off, "off").values()
    assert record.status == "completed" and len(metrics["val_acc"].value) == 10


def test_halving_pauses_at_equal_examples_and_continues_the_best_from_their_saves(tmp_path):
    db = tmp_path / "s.db"
    bl.sweep("halve", fn_train.scripted, grid={"batch_size": [20, 50], "quality": [1.0, 2.0, 4.0]},
             epochs=6, n_train=100, prune="halving", store=db)
    runs = runs_of(db, "halve")
    status = sorted((r.config["train"]["options"]["quality"], r.config["train"]["batch_size"],
                     r.status) for r, _ in runs.values())
    # 6 configurations, eta 3: the rung is at 600 / 3 = 200 examples (epoch 2); the best 2 go on
    assert [s[2] for s in status] == ["pruned"] * 4 + ["completed"] * 2
    assert {s[0] for s in status if s[2] == "completed"} == {4.0}
    for record, metrics in runs.values():
        spe = 100 // record.config["train"]["batch_size"]
        if record.status == "pruned":
            assert "successive halving" in record.error and "200 examples seen" in record.error
            assert metrics["val_loss"].examples.tolist() == [100, 200]
        else:
            assert record.attempts == 2  # paused at the rung, then continued from its save
            assert metrics["train_loss"].step.tolist() == list(range(1, 6 * spe + 1))
            assert metrics["val_loss"].examples.tolist() == [100 * e for e in range(1, 7)]


def test_workers_train_an_importable_function_in_worker_processes(tmp_path):
    db = tmp_path / "s.db"
    result = bl.sweep("pool", fn_train.train, grid={"batch_size": [50, 100]}, epochs=2, lr=0.05,
                      n_train=200, workers=2, threads=1, store=db)
    assert result.trained == 2
    runs = runs_of(db, "pool")
    assert [r.status for r, _ in runs.values()] == ["completed"] * 2
    # the same numbers as in this process
    bl.sweep("inline", fn_train.train, grid={"batch_size": [50, 100]}, epochs=2, lr=0.05,
             n_train=200, threads=1, store=db)
    inline = {r.config["train"]["batch_size"]: m for r, m in runs_of(db, "inline").values()}
    for record, metrics in runs.values():
        same = inline[record.config["train"]["batch_size"]]
        assert metrics["val_loss"].value.tolist() == same["val_loss"].value.tolist()


def test_workers_refuse_a_function_they_cannot_import(tmp_path):
    with pytest.raises(BatchlabError, match="is a lambda or is defined inside another function") as err:
        bl.sweep("w", lambda run: None, grid={"lr": [0.1]}, workers=2, store=tmp_path / "s.db")
    assert "workers=1" in str(err.value)
    assert not (tmp_path / "s.db").exists()


def test_a_main_program_function_is_refused_for_workers(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(f"""
        import batchlab as bl
        def train(run):
            run.log(1, train_loss=1.0)
        try:
            bl.sweep("m", train, grid={{"lr": [0.1]}}, workers=2, store={str(tmp_path / 's.db')!r})
        except bl.BatchlabError as err:
            print("refused:", err)
    """))
    import subprocess

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "refused: train function '__main__:train' is defined in the main program" in out.stdout


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": "auto"}, "runs the LR range test on batchlab's own loop"),
    ({"n_train": 0}, "'n_train' = 0 must be a positive integer"),
    ({"prune": "halving", "epochs": 6}, "needs the training set's size: give n_train"),
    ({"model": "x"}, "leave out model=, train="),
    ({"**data.limit": 5}, "a function sweep has train fields and keys of its own only"),
    ({"schedule": {"name": "multistep"}, "n_train": 100}, "milestones must list at least one"),
    ({"schedule": "cosine"}, "schedule 'cosine' counts the run in epochs, whose length in steps"),
    ({"schedule": "step", "steps": 50}, "schedule 'step' counts epochs, whose length in steps"),
])
def test_bad_input_is_refused_before_anything_is_stored(tmp_path, kwargs, message):
    kwargs = {k.removeprefix("**"): v for k, v in kwargs.items()}
    with pytest.raises(BatchlabError, match=message):
        bl.sweep("bad", fn_train.scripted, grid={"batch_size": [10, 20]}, store=tmp_path / "s.db",
                 **kwargs)
    assert not (tmp_path / "s.db").exists()


def test_logging_a_saved_step_again_is_refused(tmp_path):
    def relog(run):
        run.log(5, val_loss=1.0)
        run.save({"step": 5})
        run.log(5, val_acc=0.5)

    with pytest.raises(ExecutorError, match="at or before the run's last save"):
        bl.sweep("relog", relog, grid={"lr": [0.1]}, store=tmp_path / "s.db")
    (record, _), = runs_of(tmp_path / "s.db", "relog").values()
    assert record.status == "failed"
    assert "step 5 is at or before the run's last save" in record.error


def test_an_edited_function_retrains_its_runs(tmp_path, monkeypatch):
    shutil.copy(HERE / "fn_train.py", tmp_path / "editable_train.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    import editable_train

    db = tmp_path / "s.db"
    kw = dict(grid={"batch_size": [100]}, epochs=1, n_train=100, quality=1.0, store=db)
    bl.sweep("edit", editable_train.scripted, **kw)
    (before, _), = runs_of(db, "edit").values()
    assert bl.sweep("edit", editable_train.scripted, **kw).skipped == 1
    source = (tmp_path / "editable_train.py").read_text()
    (tmp_path / "editable_train.py").write_text(source.replace("1.0 / (1 + s *", "2.0 / (1 + s *"))
    with pytest.warns(UserWarning, match="the source of training function") as notice:
        again = bl.sweep("edit", editable_train.scripted, **kw)
    assert (again.skipped, again.trained) == (0, 1)  # same id, retrained: the source changed
    assert notice[0].filename == __file__  # the warning names the caller's line, not batchlab's
    (after, metrics), = runs_of(db, "edit").values()
    assert after.id == before.id
    assert metrics["train_loss"].value[0] == pytest.approx(2.0 / 2)  # the edited code ran
    sys.modules.pop("editable_train", None)


def test_a_function_sweep_prints_progress_lines_unless_verbose_is_false(tmp_path, capsys):
    """The merge of function sweeps with bl.sweep's progress lines: verbose= works for both."""
    db = tmp_path / "s.db"
    kw = dict(grid={"batch_size": [50, 100]}, epochs=1, lr=0.05, n_train=100, num_classes=5,
              threads=1, store=db)
    res = bl.sweep("pl", fn_train.train, **kw)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "sweep 'pl': 2 runs; training 2"
    assert [line.split()[0] for line in lines[1:]] == ["[1/2]", "[2/2]"]
    for line, row in zip(lines[1:], res.rows, strict=True):
        assert f"{row['run_id'][:8]} B={row['batch_size']} lr=0.05 constant: completed" in line
    bl.sweep("pl2", fn_train.train, **kw, verbose=False)
    assert capsys.readouterr().out == ""


def test_a_function_that_logged_nothing_fails_its_run_saying_to_call_run_log(tmp_path):
    """A function that logs nothing (a typo'd name, a forgotten call) has no run to show:
    it fails with the API to call, not 'completed' with 0 steps."""
    def silent_at_small_lr(run):
        if run.lr > 0.15:
            run.log(1, train_loss=1.0)

    result = bl.sweep("quiet", silent_at_small_lr, grid={"lr": [0.1, 0.2]}, store=tmp_path / "s.db",
                      verbose=False)
    by_lr = {row["lr"]: row for row in result.rows}
    assert by_lr[0.2]["status"] == "completed"
    assert by_lr[0.1]["status"] == "failed"
    (record,) = (r for r, _ in runs_of(tmp_path / "s.db", "quiet").values() if r.status == "failed")
    assert "returned without logging a metric" in record.error
    assert "run.log(step, train_loss=loss, lr=lr)" in record.error


def test_a_returned_dict_is_recorded_as_the_final_values(tmp_path):
    """As a Ray Tune function's returned dict: the run's final result, logged at its last
    step (names logged at that step already are not logged twice)."""
    def ray_style(run):
        if run.lr > 0.15:  # logs its curve, then returns its last evaluation again and more
            for step in (1, 2, 3):
                run.log(step, train_loss=1.0 / step)
            run.log(3, val_acc=0.5)
            run.save({"step": 3})
            return {"val_acc": 0.5, "val_loss": torch.tensor(0.7)}
        return {"val_acc": 0.9, "val_loss": 0.3}  # nothing logged: the dict is the result

    bl.sweep("ray", ray_style, grid={"lr": [0.1, 0.2]}, store=tmp_path / "s.db", verbose=False)
    runs = {r.config["train"]["lr"]: (r, m) for r, m in runs_of(tmp_path / "s.db", "ray").values()}
    record, metrics = runs[0.1]
    assert record.status == "completed" and record.summary["best_val_acc"] == 0.9
    assert metrics["val_acc"].step.tolist() == [0] and metrics["val_loss"].value.tolist() == [0.3]
    record, metrics = runs[0.2]
    assert record.status == "completed" and record.steps == 3
    assert metrics["val_acc"].step.tolist() == [3] and metrics["val_acc"].value.tolist() == [0.5]
    assert metrics["val_loss"].step.tolist() == [3]
    assert record.summary["final_val_loss"] == pytest.approx(0.7)


def test_a_return_value_that_names_no_metric_never_fails_a_run_that_logged(tmp_path):
    """An Optuna-style bare objective, the model, a dict's non-numbers: left alone (the return
    value is not needed); the logged rows and a dict's numbers are the run's record."""
    def objective(run):
        run.log(1, train_loss=1.0)
        return 0.93 if run.config["lr"] == 0.1 else {"val_acc": 0.9, "model": object()}

    bl.sweep("ret", objective, grid={"lr": [0.1, 0.2]}, store=tmp_path / "s.db", verbose=False)
    runs = {r.config["train"]["lr"]: (r, m) for r, m in runs_of(tmp_path / "s.db", "ret").values()}
    for record, metrics in runs.values():
        assert record.status == "completed" and metrics["train_loss"].value.tolist() == [1.0]
    assert runs[0.2][1]["val_acc"].value.tolist() == [0.9] and "val_acc" not in runs[0.1][1]


def test_a_function_that_only_returns_a_bare_score_fails_saying_how_to_report_it(tmp_path):
    with pytest.raises(ExecutorError, match="the only run of 'bare' failed: "):
        bl.sweep("bare", lambda run: 0.93, grid={"lr": [0.1]}, store=tmp_path / "s.db", verbose=False)
    (record, _), = runs_of(tmp_path / "s.db", "bare").values()
    assert record.status == "failed" and "returned without logging a metric" in record.error
    assert "(it returned 0.93 (float), which names no metric)" in record.error
    assert "run.log(step, " in record.error


def test_a_sweep_whose_every_run_failed_raises_as_a_model_sweep_does(tmp_path):
    """Not a SweepResult of failed rows: ExecutorError naming the cause, the runs stored."""
    def broken(run):
        run.log(1, train_loss=1.0)
        raise ValueError(f"no data for width {run.config['width']}")

    db = tmp_path / "s.db"
    with pytest.raises(ExecutorError) as caught:
        bl.sweep("allbad", broken, grid={"width": [16, 64]}, store=db, verbose=False)
    text = str(caught.value)
    assert text.startswith("all 2 runs of 'allbad' failed (1 of them with this error): ValueError: no data")
    assert "call bl.sweep again" in text
    assert {r.status for r, _ in runs_of(db, "allbad").values()} == {"failed"}


def test_the_report_overview_does_not_name_the_spec_default_optimizer(tmp_path):
    """The stored train.optimizer of a function sweep is the spec default, not the optimizer
    the function built: the overview says the function chose it."""
    from batchlab.report import sections
    from batchlab.report.plotdata import load_runs

    def train(run):
        run.log(1, train_loss=1.0)

    bl.sweep("opt", train, grid={"lr": [0.1]}, store=tmp_path / "s.db", verbose=False)
    with Store(tmp_path / "s.db") as st:
        text = sections.overview("opt", load_runs(st, "opt"), None)
    assert "optimizer chosen by the training function" in text and "optimizer sgd" not in text
