"""The next experiment as a spec file: batchlab next / result.next() (batchlab.nextspec)."""

from __future__ import annotations

import math
import shlex
import shutil
import tomllib

import pytest
from cli_helpers import batchlab_cli

from batchlab.analysis import analyze_experiment
from batchlab.api import SweepResult
from batchlab.events import MetricRows, RunEnded, RunStarted
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.nextspec import NextSpec, render
from batchlab.plan import plan_runs
from batchlab.spec import load_spec, spec_from_dict
from batchlab.specwrite import compact, spec_toml
from batchlab.store import Store
from batchlab.track import track

TINY = {"data": {"name": "digits", "limit": 400}, "model": {"name": "mlp", "hidden": [32]},
        "train": {"batch_size": 32, "epochs": 3, "threads": 1, "checkpoint": False}}


@pytest.fixture(scope="module")
def lr_store(tmp_path_factory):
    """A tiny LR sweep: 0.01 (learns slowly), 0.1 (the best), 10 (never learns: pruned)."""
    path = tmp_path_factory.mktemp("next") / "store.db"
    spec = spec_from_dict({"name": "lrs", **TINY, "sweep": {"grid": {"train.lr": [0.01, 0.1, 10.0]}}})
    with Store(path) as st:
        run_sweep(spec, st, InlineExecutor(threads=1))
    return path


def comments(text: str) -> str:
    """The comment lines of a TOML text joined into one line (the writer wraps them)."""
    return " ".join(line.strip().removeprefix("#").strip() for line in text.splitlines()
                    if line.strip().startswith("#"))


def test_next_writes_a_commented_spec_that_parses_differs_and_runs(lr_store, tmp_path):
    out = tmp_path / "follow.toml"
    res = batchlab_cli("next", "lrs", "--store", lr_store, "-o", out)
    assert res.returncode == 0, res.stderr
    assert f"wrote {out}" in res.stdout and f"batchlab sweep {out} --store {lr_store}" in res.stdout
    spec = load_spec(out)
    first = spec_from_dict({"name": "lrs", **TINY})
    # the same study but for the LR grid: half-steps around the best 0.1, without LR 10
    assert spec.name == "lrs" and spec.sweep.grid == {"train.lr": [0.0316, 0.1, 1.0]}
    assert (spec.data, spec.model, spec.train) == (first.data, first.model, first.train)
    text = out.read_text()
    assert "# batch 32: best LR 0.1 (val acc" in text
    assert ("lies between 0.01 and 10: half-steps on either side; LR 10 and above left out (1 of 1 "
            "runs never learned at 10)") in comments(text)
    with Store(lr_store, create=False) as st:
        before = {r.id: r.attempts for r in st.runs("lrs")}
    ran = batchlab_cli("sweep", out, "--store", lr_store)
    assert ran.returncode == 0, ran.stderr
    with Store(lr_store, create=False) as st:
        runs = st.runs("lrs")
        analysis = analyze_experiment(st, "lrs")
    # the two new LRs joined the experiment; LR 0.1, trained before, was not trained again
    assert len(runs) == 5 and sorted(r.config["train"]["lr"] for r in runs) == [0.01, 0.0316, 0.1, 1.0, 10.0]
    assert all(r.attempts == before[r.id] for r in runs if r.id in before)
    assert all(r.status in ("completed", "pruned", "diverged") for r in runs)
    assert len(analysis.runs) == 5  # one report over both sweeps


def test_the_command_to_run_the_follow_up_pastes_as_it_is_with_spaces_in_paths(lr_store, tmp_path):
    # it read 'batchlab sweep ... --store my runs/store.db': pasted, the shell split the path
    folder = tmp_path / "my runs"
    folder.mkdir()
    store = shutil.copy(lr_store, folder / "store.db")
    res = batchlab_cli("next", "lrs", "--store", store)
    assert res.returncode == 0, res.stderr
    command = shlex.split(res.stdout.split("run it: ")[1])
    assert command == ["batchlab", "sweep", str(folder / "lrs-next.toml"), "--store", str(store)]
    header = (folder / "lrs-next.toml").read_text().split("Run it with:\n#   ")[1].splitlines()[0]
    assert shlex.split(header) == command


def test_a_bad_experiment_name_exits_2_with_one_paragraph(lr_store, tmp_path):
    res = batchlab_cli("next", "nope", "--store", lr_store, "-o", tmp_path / "x.toml")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "no experiment named 'nope'" in res.stderr and "(experiments: lrs)" in res.stderr
    assert not (tmp_path / "x.toml").exists()


def test_an_experiment_without_a_spec_exits_2(tmp_path):
    path = tmp_path / "t.db"
    with track("mine", store=path, config={"lr": 0.1}) as run:
        run.log(1, train_loss=1.0)
    res = batchlab_cli("next", "mine", "--store", path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "experiment 'mine' has no stored spec" in res.stderr and "bl.sweep" in res.stderr


def fake_run(st: Store, run_id: str, epochs: int, *, acc: float, train_acc: float, falling: bool) -> None:
    """The events of a run evaluated once per epoch (10 steps each): val loss still falling in
    a straight line (``falling``), else flattening out; accuracies rising to ``acc`` and
    ``train_acc``."""
    spe, rows = 10, []
    st.record(RunStarted(run_id, epochs * spe, 0, {}))
    for e in range(epochs + 1):
        loss = 2.3 - 1.5 * e / epochs if falling else 1.0 + 1.3 * math.exp(-2 * e)
        rise = 1 - math.exp(-e)
        values = {"val_loss": loss, "train_eval_loss": loss - 0.05, "val_acc": acc * rise,
                  "train_acc": train_acc * rise}
        rows += [(k, e * spe, v, float(e), e * 320, float(e)) for k, v in values.items()]
        if e:
            rows.append(("train_loss", e * spe, loss - 0.05, float(e), e * 320, float(e)))
    st.record(MetricRows(run_id, rows, epochs * spe))
    st.record(RunEnded(run_id, "completed", epochs * spe, 1.0,
                       {"n_train": 320, "num_classes": 10, "steps_per_epoch": spe}))


def faked(tmp_path, name: str, raw: dict, **curve) -> SweepResult:
    """A stored experiment whose runs are written as events (no training): LR 0.1 the best."""
    spec = spec_from_dict({"name": name, **raw})
    runs = plan_runs(spec)
    path = tmp_path / f"{name}.db"
    with Store(path) as st:
        st.add_experiment(name, spec.model_dump(mode="json"), runs)
        for r in runs:
            best = r.config.train.lr == 0.1
            fake_run(st, r.run_id, spec.train.epochs, acc=0.8 if best else 0.6, **curve)
    return SweepResult(name, path, len(runs), 0, len(runs))


def test_a_best_run_still_converging_gets_a_longer_run_with_its_decay_moved(tmp_path):
    raw = {"model": {"name": "mlp"}, "train": {"epochs": 10, "schedule": {"name": "step", "step_size": 6}},
           "sweep": {"grid": {"train.lr": [0.01, 0.1]}}}
    result = faked(tmp_path, "long", raw, train_acc=0.85, falling=True).next()
    spec = load_spec(result.path)
    assert spec.train.epochs == 20 and spec.train.schedule.step_size == 12
    assert spec.sweep.grid["train.lr"] == [0.0316, 0.1, 0.316, 1.0]  # 0.1 was the highest tried
    assert "# was 10: the best configuration (batch 32, lr 0.1, step(6ep, x0.1)) had not" in result.text
    assert any(c.startswith("train.epochs 10 -> 20") for c in result.changes)


def test_a_best_run_that_cannot_fit_its_training_data_gets_a_larger_model_variant(tmp_path):
    raw = {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 10},
           "sweep": {"grid": {"train.lr": [0.1, 1.0]}}}
    result = faked(tmp_path, "small", raw, train_acc=0.7, falling=False).next(tmp_path / "n.toml")
    spec = load_spec(tmp_path / "n.toml")
    assert spec.sweep.grid["model.hidden"] == [[16], [32]] and spec.train.epochs == 10
    assert "model.hidden: the best run's training accuracy ends at 70% (< 90%)" in comments(result.text)


def test_runs_whose_lr_was_too_small_send_the_grid_up_not_down(tmp_path):
    """Two 5-step runs at LRs far too small end at chance with a loss that barely moved: the
    diagnosis says "LR too small" of both. The follow-up went below 1e-4 (the tie went to the
    lowest LR, and 1e-3's collapse to chance capped the grid there) and blamed the model's size."""
    path = tmp_path / "low.db"
    spec = spec_from_dict({"name": "low", "data": {"name": "synthetic", "shape": [8], "classes": 2,
                                                   "size": 300},
                           "model": {"name": "mlp", "hidden": [16]},
                           "train": {"batch_size": 16, "steps": 5, "threads": 1, "checkpoint": False},
                           "sweep": {"grid": {"train.lr": [1e-4, 1e-3]}}})
    with Store(path) as st:
        run_sweep(spec, st, InlineExecutor(threads=1))
        analysis = analyze_experiment(st, "low")
    assert all("lr_too_small" in {f.kind for f in r.findings} for r in analysis.runs)
    result = SweepResult("low", path, 2, 0, 2).next(tmp_path / "n.toml")
    lrs = load_spec(tmp_path / "n.toml").sweep.grid["train.lr"]
    assert min(lrs) >= 1e-4 and max(lrs) > 1e-3, lrs
    assert "left out" not in comments(result.text) and "model.hidden" not in result.text
    assert "its LR was too small to tell (its training loss barely fell)" in comments(result.text)


def test_a_best_run_that_ended_at_chance_is_no_sign_of_too_small_a_model(tmp_path):
    """The best run rose to 50% val acc and collapsed back to chance (train acc 14% at the
    end, its loss flat): the follow-up read "with a converged loss: the model underfits" and
    doubled the MLP, a remedy for a model that cannot fit, not for a run that fell apart."""
    spec = spec_from_dict({"name": "fell", "model": {"name": "mlp", "hidden": [16]},
                           "train": {"epochs": 8}, "sweep": {"grid": {"train.lr": [0.1, 1.0]}}})
    runs = plan_runs(spec)
    path = tmp_path / "fell.db"
    with Store(path) as st:
        st.add_experiment("fell", spec.model_dump(mode="json"), runs)
        for r in runs:
            peak = 0.5 if r.config.train.lr == 0.1 else 0.12
            st.record(RunStarted(r.run_id, 80, 0, {}))
            rows = []
            for e in range(9):
                acc = 0.1 if e == 0 or e >= 6 else peak
                loss = 2.3 if acc == 0.1 or e == 1 else 1.5  # it learned, then fell back
                values = {"val_loss": loss, "train_eval_loss": loss, "val_acc": acc,
                          "train_acc": 0.14 if e >= 6 else acc}
                rows += [(k, e * 10, v, float(e), e * 320, float(e)) for k, v in values.items()]
                if e:
                    rows.append(("train_loss", e * 10, loss, float(e), e * 320, float(e)))
            st.record(MetricRows(r.run_id, rows, 80))
            st.record(RunEnded(r.run_id, "completed", 80, 1.0,
                               {"n_train": 320, "num_classes": 10, "steps_per_epoch": 10}))
        analysis = analyze_experiment(st, "fell")
    best = [r for r in analysis.runs if r.run_id in analysis.best["group"]["run_ids"]]
    assert {f.kind for f in best[0].findings} >= {"collapsed"}
    result = SweepResult("fell", path, 2, 0, 2).next(tmp_path / "n.toml")
    assert "model.hidden" not in result.text and "the model underfits" not in result.text
    assert ("the model: the best run's training accuracy ends at 14%, but it ended at chance "
            "(collapsed or never learned), which says nothing of the model's size") in comments(result.text)


@pytest.fixture(scope="module")
def overfit_store(tmp_path_factory):
    """60 digits, an MLP, 12 epochs: both LRs overfit (train acc 100%, val acc ~85%)."""
    path = tmp_path_factory.mktemp("overfit") / "store.db"
    spec = spec_from_dict({"name": "of", "data": {"name": "digits", "limit": 60},
                           "model": {"name": "mlp", "hidden": [64]},
                           "train": {"batch_size": 16, "epochs": 12, "threads": 1, "checkpoint": False},
                           "sweep": {"grid": {"train.lr": [0.03, 0.1]}}})
    with Store(path) as st:
        run_sweep(spec, st, InlineExecutor(threads=1))
    return path


def test_an_overfitting_best_gets_a_regularisation_sweep_one_remedy_per_point(overfit_store, tmp_path):
    result = SweepResult("of", overfit_store, 2, 0, 2).next(tmp_path / "reg.toml")
    spec = load_spec(result.path)
    with Store(overfit_store, create=False) as st:
        best = analyze_experiment(st, "of").best["group"]
    # the best LR is held; the grid is gone; each point tries one remedy beside the unchanged run
    assert spec.train.lr == best["lr"] and spec.sweep.grid == {}
    assert spec.sweep.points == [
        {}, {"data.augment": ["crop"], "data.crop_padding": 1},
        {"train.weight_decay": 0.0005}, {"train.weight_decay": 0.005},
        {"model.dropout": 0.2}, {"model.dropout": 0.5}, {"model.hidden": [32]}, {"data.limit": 30}]
    assert "overfits from epoch" in result.text and "early stopping would" in comments(result.text)
    assert "  # the best configuration unchanged (already trained: not trained again)" in result.text
    # the unchanged point is the best run itself: same config, same run id
    assert plan_runs(spec)[0].run_id in best["run_ids"]


def test_the_toml_writer_reads_back_to_the_same_spec():
    raw = {"name": "x y", "data": {"name": "digits", "augment": ["crop", "flip"]},
           "model": {"name": "mlp", "hidden": [8], "kwargs": {"a.b": 1}},
           "train": {"lr": 1e-05, "schedule": {"name": "multistep", "milestones": [2, 4]},
                     "options": {"s": "q\"uote"}},
           "sweep": {"grid": {"train.batch_size": [8, 16]}, "points": [{}, {"train.momentum": 0.5}],
                     "random": {"count": 2, "params": {"train.weight_decay": {"log_uniform": [1e-5, 1e-3]}}}}}
    text = spec_toml(compact(raw), "a header", {"train.lr": "why"}, ["base", "lower momentum"])
    assert spec_from_dict(tomllib.loads(text)) == spec_from_dict(raw)
    assert "# why\nlr = 1e-05" in text and "  # lower momentum\n  { \"train.momentum\" = 0.5 }," in text


def test_a_batch_size_whose_grid_is_already_fine_is_left_out_the_other_keeps_its_batch(tmp_path):
    points = [{"train.batch_size": 16, "train.lr": 0.01}, {"train.batch_size": 16, "train.lr": 0.1},
              *({"train.batch_size": 32, "train.lr": lr} for lr in (0.09, 0.1, 0.11))]
    raw = {"model": {"name": "lenet5"}, "train": {"epochs": 10}, "sweep": {"points": points}}
    result = faked(tmp_path, "pts", raw, train_acc=0.9, falling=False).next()
    spec = load_spec(result.path)
    assert spec.sweep.points == [{"train.batch_size": 16, "train.lr": lr} for lr in (0.0316, 0.1, 0.316, 1.0)]
    assert spec.sweep.grid == {} and spec.train.batch_size == 32  # the default: batch 16 is in the points


def test_nothing_to_change_writes_nothing_and_says_why(tmp_path):
    raw = {"model": {"name": "lenet5"}, "train": {"epochs": 10},
           "sweep": {"grid": {"train.lr": [0.09, 0.1, 0.11]}}}
    faked(tmp_path, "done", raw, train_acc=0.9, falling=False)
    res = batchlab_cli("next", "done", "--store", tmp_path / "done.db")
    assert res.returncode == 0 and "nothing to follow up in 'done'" in res.stdout
    assert "not changed: the model:" in res.stdout and "lenet5 has no size knob" in res.stdout
    assert not (tmp_path / "done-next.toml").exists()



def test_after_batchlab_run_the_regularisation_sweep_is_still_at_the_best(overfit_store, tmp_path):
    """`batchlab run` of another config stores a spec without the sweep; the follow-up must
    still hold the best run's batch and LR (the runs differ there), not the last spec's."""
    store = tmp_path / "store.db"
    shutil.copy(overfit_store, store)
    spec_file = tmp_path / "of.toml"
    spec_file.write_text(spec_toml(compact(spec_from_dict({
        "name": "of", "data": {"name": "digits", "limit": 60}, "model": {"name": "mlp", "hidden": [64]},
        "train": {"batch_size": 32, "lr": 0.001, "epochs": 12, "threads": 1, "checkpoint": False}}
    ).model_dump(mode="json"))))
    assert batchlab_cli("run", spec_file, "--store", store).returncode == 0
    result = SweepResult("of", store, 3, 0, 3).next(tmp_path / "reg.toml")
    spec = load_spec(result.path)
    with Store(store, create=False) as st:
        best = analyze_experiment(st, "of").best["group"]
    assert best["batch_size"] == 16 and best["lr"] in (0.03, 0.1)
    assert (spec.train.batch_size, spec.train.lr) == (16, best["lr"])
    assert {"train.weight_decay": 0.0005} in spec.sweep.points
    assert plan_runs(spec)[0].run_id in best["run_ids"]  # the unchanged point is the best run


def test_the_toml_writer_leaves_out_a_field_set_to_none():
    """None (a field at its default, e.g. data.limit of a run on all the data) has no TOML
    form: the writer leaves it out, so the spec reads back with the default."""
    raw = {"name": "n", "data": {"name": "digits", "limit": None},
           "sweep": {"points": [{"train.lr": 0.1, "data.limit": None}]}}
    text = spec_toml(raw)
    assert "limit" not in text
    spec = spec_from_dict(tomllib.loads(text))
    assert spec.data.limit is None and spec.sweep.points == [{"train.lr": 0.1}]


def test_the_follow_up_of_a_function_in_a_script_says_how_to_run_it(tmp_path):
    """A function defined in the script that called bl.sweep is "__main__:train": `batchlab
    sweep` cannot import it, so the file says to call bl.sweep again instead of `Run it with`."""
    raw = {"name": "f", "data": {"name": "custom"}, "train": {"function": "__main__:train"},
           "sweep": {"grid": {"train.lr": [0.1, 0.3]}}}
    text = render(NextSpec("f", raw, ["LR grid"]), tmp_path / "s.db", tmp_path / "f-next.toml")
    header = comments(text.split("\n\n")[0])
    assert "Run it with" not in header and "batchlab sweep" not in header.split("cannot import")[1]
    assert "defined in the script that called bl.sweep (`__main__`)" in header
    assert "set train.function = \"module:function\"" in header
    module = {**raw, "train": {"function": "mytrain:train"}}
    assert "Run it with" in render(NextSpec("f", module, ["LR grid"]), tmp_path / "s.db", tmp_path / "n.toml")


def test_a_regression_gets_an_lr_grid_below_its_lowest_loss_lr(tmp_path):
    """A regression (val loss, no accuracy) whose best LR is the grid's lowest: the follow-up
    goes on below it at each batch size, ranked by val loss (before: 'no LR grid to refine',
    nothing written, since the LR grid was ranked by an accuracy the runs never had)."""
    final = {(16, 0.1): 0.44, (16, 0.01): 0.017, (64, 0.1): 0.56, (64, 0.01): 0.0446}
    spec = spec_from_dict({"name": "reg", "model": {"name": "mlp"}, "train": {"epochs": 4},
                           "sweep": {"grid": {"train.batch_size": [16, 64], "train.lr": [0.1, 0.01]}}})
    runs = plan_runs(spec)
    with Store(tmp_path / "reg.db") as st:
        st.add_experiment("reg", spec.model_dump(mode="json"), runs)
        for r in runs:
            low, rows = final[r.config.train.batch_size, r.config.train.lr], []
            st.record(RunStarted(r.run_id, 40, 0, {}))
            for e in range(5):  # falling to `low` and flattening out: converged, no accuracy
                loss = low + math.exp(-2 * e) - math.exp(-8)
                rows += [(k, 10 * e, v, float(e), 320 * e, float(e))
                         for k, v in (("val_loss", loss), ("train_eval_loss", 0.8 * loss))]
            st.record(MetricRows(r.run_id, rows, 40))
            st.record(RunEnded(r.run_id, "completed", 40, 1.0, {"n_train": 320, "steps_per_epoch": 10}))
    result = SweepResult("reg", tmp_path / "reg.db", len(runs), 0, len(runs)).next(tmp_path / "n.toml")
    follow = load_spec(tmp_path / "n.toml")
    lrs = {(p["train.batch_size"], p["train.lr"]) for p in follow.sweep.points}
    assert lrs == {(b, lr) for b in (16, 64) for lr in (0.001, 0.00316, 0.01, 0.0316)}
    assert result.changes == [
        f"LR grid: batch {b}: best LR 0.01 (val loss {v}) is the lowest tried: the grid goes on "
        "below it (/3.16, /10) -> 0.001, 0.00316, 0.01, 0.0316" for b, v in ((16, "0.017"), (64, "0.0446"))]


def test_a_follow_up_of_unfinished_runs_says_so(lr_store, tmp_path):
    import sqlite3

    done = batchlab_cli("next", "lrs", "--store", lr_store, "-o", tmp_path / "done.toml")
    assert done.returncode == 0 and "not finished" not in done.stdout + (tmp_path / "done.toml").read_text()
    store = tmp_path / "store.db"
    shutil.copy(lr_store, store)
    with sqlite3.connect(store) as conn:  # as a sweep stopped by Ctrl-C leaves the best run
        conn.execute("UPDATE runs SET status = 'interrupted' "
                     "WHERE json_extract(config_json, '$.train.lr') = 0.1")
        (n,) = conn.execute("SELECT count(*) FROM runs").fetchone()  # 3, or 5 after the test above
    res = batchlab_cli("next", "lrs", "--store", store, "-o", tmp_path / "f.toml")
    assert res.returncode == 0, res.stderr
    said = " ".join(res.stdout.split())
    assert (f"note: 1 of {n} runs has not finished (1 interrupted): what follows reads only what they "
            "reached so far; `batchlab sweep` on the same spec finishes them") in said
    header = comments((tmp_path / "f.toml").read_text())
    assert f"Note: 1 of {n} runs has not finished (1 interrupted)" in header
