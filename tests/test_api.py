"""The top-level Python API (``import batchlab as bl``) on the user's own objects."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

import batchlab as bl
from batchlab.errors import BatchlabError, DataError, ModelError, SpecError, StoreError
from batchlab.store import Store


class Net(nn.Module):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def arrays(n=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)


def small_sweep(store, name="t", model=None, data=None, **kw):
    kw = {"grid": {"batch_size": [16, 64]}, "epochs": 1, **kw}
    return bl.sweep(name, model=model or Net(), train=data or arrays(), store=store,
                    lr=0.05, threads=1, **kw)


def test_import_is_cheap():
    out = subprocess.run([sys.executable, "-c",
                          "import sys, batchlab as bl; bl.__version__; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sweep_trains_reports_and_skips_on_rerun(tmp_path):
    store = tmp_path / "s.db"
    model = Net()
    before = [p.detach().clone() for p in model.parameters()]
    threads = torch.get_num_threads()
    res = small_sweep(store, model=model)
    assert torch.get_num_threads() == threads  # threads=1 applied to the runs only
    assert (res.planned, res.skipped, res.trained) == (2, 0, 2)
    rows = res.rows
    assert [r["batch_size"] for r in rows] == [16, 64]
    assert all(r["status"] == "completed" and r["best_val_acc"] is not None for r in rows)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert res.analysis.conclusions[0].startswith("2 runs in 't'")
    written = res.report(tmp_path / "r.html")
    assert written.html.is_file() and written.figures
    again = small_sweep(store)
    assert (again.planned, again.skipped, again.trained) == (2, 2, 0)


def test_changed_objects_get_new_run_ids(tmp_path):
    store = tmp_path / "s.db"
    first = {r["run_id"] for r in small_sweep(store).rows}
    changes = {
        "architecture": dict(model=Net(hidden=9)),
        "data": dict(data=arrays(seed=1)),
        "loss": dict(loss=lambda out, y: nn.functional.cross_entropy(out, y, label_smoothing=0.1)),
        "optimizer": dict(optimizer=lambda params, lr: torch.optim.Adam(params, lr=lr)),
    }
    for what, kw in changes.items():
        res = small_sweep(store, name=what, **kw)
        assert res.trained == 2, what
        assert not {r["run_id"] for r in res.rows} & first, what


def test_runs_start_from_the_seed_not_from_the_passed_weights(tmp_path):
    """Re-initialised per run: the same seed gives the same run whatever weights the module
    held; another seed gives another start."""
    trained = Net()
    with torch.no_grad():
        for p in trained.parameters():
            p.fill_(0.5)
    a = small_sweep(tmp_path / "a.db", grid={"seed": [0, 1]}).rows
    b = small_sweep(tmp_path / "b.db", model=trained, grid={"seed": [0, 1]}).rows
    assert [r["final_val_loss"] for r in a] == [r["final_val_loss"] for r in b]
    assert a[0]["final_val_loss"] != a[1]["final_val_loss"]


def test_model_factory_dataset_and_short_names(tmp_path):
    x, y = arrays()
    res = bl.sweep("f", model=lambda: Net(hidden=4),
                   train=TensorDataset(torch.tensor(x), torch.tensor(y)), val=(x[:40], y[:40]),
                   grid={"schedule": ["constant", "cosine"], "optimizer": ["sgd", "adam"]},
                   store=tmp_path / "s.db", epochs=1, lr=0.01, batch_size=32, threads=1,
                   **{"data.limit": 100})
    rows = res.rows
    assert len(rows) == 4 and all(r["status"] == "completed" for r in rows)
    assert {r["schedule"] for r in rows} == {"constant", "cosine"}
    with Store(tmp_path / "s.db") as st:
        run = st.runs("f")[0]
    assert run.config["data"]["limit"] == 100 and run.config["data"]["name"] == "memory"
    assert run.config["model"]["name"].startswith("python:test_model_factory_dataset")
    assert run.summary["n_val"] == 40


def test_regression_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(160, 4)).astype(np.float32)
    y = x @ np.array([[1.0], [-1.0], [0.5], [2.0]], dtype=np.float32)
    res = bl.sweep("reg", model=nn.Linear(4, 1), train=(x, y), loss=nn.MSELoss(),
                   grid={"lr": [0.05, 0.0001]}, store=tmp_path / "s.db", epochs=2, batch_size=16,
                   momentum=0.0, threads=1)
    rows = res.rows
    assert all(r["status"] == "completed" and r["final_val_acc"] is None for r in rows)
    with bl.open(tmp_path / "s.db") as db:
        names = db.store.metric_names(rows[0]["run_id"])
    assert "val_loss" in names and "val_acc" not in names
    conclusions = " ".join(res.analysis.conclusions)
    assert "compared by validation loss; best config: batch 16, lr 0.05" in conclusions
    kinds = {f.kind for r in res.analysis.runs for f in r.findings}
    assert "lr_too_small" in kinds or "not_converged" in kinds  # lr 1e-4 barely moves
    report = res.report(tmp_path / "r.html")
    assert "compared by validation loss" in report.html.read_text()


def test_labels_are_read_as_a_file_s_are_remapped_one_hot_and_said(tmp_path):
    x, y = arrays()  # labels 0, 1, 2
    with pytest.warns(UserWarning, match=r"remapped to 0..2 in sorted order \(-1->0, 0->1, 1->2\)"):
        shifted = small_sweep(tmp_path / "s.db", "shifted", data=(x, y - 1), grid={"batch_size": [16]})
    with pytest.warns(UserWarning, match=r"one-hot \(160 x 3.*y.argmax\(1\)"):
        onehot = small_sweep(tmp_path / "s.db", "onehot", data=(x, np.eye(3, dtype=np.int64)[y]),
                             grid={"batch_size": [16]})
    plain = small_sweep(tmp_path / "s.db", "plain", grid={"batch_size": [16]})
    # the same classes under another encoding are the same data: the same run, same numbers
    rows = [r.rows[0] for r in (shifted, onehot, plain)]
    assert all(r["status"] == "completed" for r in rows)
    assert len({r["run_id"] for r in rows}) == 1 and len({r["final_val_loss"] for r in rows}) == 1


def test_a_single_class_is_refused_before_anything_is_stored(tmp_path):
    x, _ = arrays()
    with pytest.raises(DataError, match=r"single class \(every label is 0\).*at least 2 classes"):
        small_sweep(tmp_path / "s.db", data=(x, np.zeros(len(x), np.int64)))
    assert not (tmp_path / "s.db").exists()


def test_a_wrong_loss_for_float_targets_says_how_to_fix(tmp_path):
    x = np.zeros((40, 4), np.float32)
    with pytest.raises(SpecError, match="MSELoss"):
        bl.sweep("r", model=nn.Linear(4, 1), train=(x, x[:, :1]), store=tmp_path / "s.db")
    assert not (tmp_path / "s.db").exists()  # nothing stored before the objects are checked


@pytest.mark.parametrize("kw, error, words", [
    (dict(workers=0), SpecError, "workers=0 must be a whole number >= 1"),
    (dict(workers=2, loss=lambda out, y: nn.functional.cross_entropy(out, y)), SpecError,
     "cannot be sent to worker processes (PicklingError"),
    (dict(grid={"bach_size": [16]}), SpecError, "'bach_size' is not a spec field"),
    (dict(grid={"batch_size": 16}), SpecError, "must be a list"),
    (dict(model=nn.Linear(5, 3)), ModelError, "fails on a batch of inputs of shape (2, 6)"),
    (dict(model="mlp"), ModelError, "pass a torch.nn.Module"),
    (dict(data=(np.zeros((4, 6)), np.zeros(3))), DataError, "same first dimension"),
    (dict(optimizer=lambda params, lr: None), SpecError, "torch.optim.Optimizer"),
    (dict(grid=[16, 32]), SpecError, "grid=[16, 32] is a list; pass a dict"),
    (dict(model=nn.Linear), ModelError, "model=Linear is a class, not a module instance"),
    (dict(model=nn.LSTM(6, 3)), ModelError, "model=LSTM returns a tuple, not a tensor"),
    (dict(loss=nn.CrossEntropyLoss), SpecError, "pass an instance, loss=nn.CrossEntropyLoss()"),
    (dict(data={"x": arrays()[0], "y": arrays()[1]}), DataError, "train is a dict (keys 'x', 'y')"),
    # two names of one field: one value used to be dropped without a word
    (dict(grid={"batch_size": [16], "train.batch_size": [32]}), SpecError,
     "grid keys 'batch_size' and 'train.batch_size' both set train.batch_size; give it once"),
    ({"train.epochs": 2}, SpecError, "keywords 'epochs' and 'train.epochs' both set train.epochs"),
])
def test_bad_input_is_a_clear_error_and_stores_nothing(tmp_path, kw, error, words):
    with pytest.raises(error) as err:
        bl.sweep("bad", model=kw.pop("model", Net()), train=kw.pop("data", arrays()),
                 store=tmp_path / "s.db", epochs=1, lr=0.05, threads=1, **kw)
    assert words in str(err.value) and isinstance(err.value, BatchlabError)
    with Store(tmp_path / "s.db") as st:
        assert not st.runs()


def test_probes_on_objects_return_the_cli_result_types(tmp_path):
    from batchlab.probes.lr_search import LrFindResult
    from batchlab.probes.max_batch import MaxBatchResult
    from batchlab.probes.noise_scale import NoiseScaleResult
    from batchlab.probes.throughput import ThroughputResult

    model, data = Net(), arrays()
    before = [p.detach().clone() for p in model.parameters()]
    common = dict(model=model, train=data, threads=1)
    found = bl.lr_find(**common, batch_size=16, epochs=1, strategy="valley", repeats=1,
                       store=tmp_path / "s.db", experiment="p")
    assert isinstance(found, LrFindResult) and found.suggested_lr > 0
    fits = bl.max_batch(**common, memory_limit="2MiB", max_batch=64)
    assert isinstance(fits, MaxBatchResult) and 1 <= fits.largest <= 64
    speed = bl.throughput(**common, batch_sizes=[8, 32])
    assert isinstance(speed, ThroughputResult) and speed.batch_sizes == [8, 32]
    noise = bl.noise_scale(**common, steps=10, batch_size=16, lr=0.05)
    assert isinstance(noise, NoiseScaleResult) and noise.steps == list(range(1, 11))
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    with Store(tmp_path / "s.db") as st:
        assert [p.kind for p in st.probes("p")] == ["lr_range"]
    # .plot(): the probe's figure, drawn from this result (issue 21, part 2, item 13)
    titles = {"LR suggestion": found, "Largest batch that fits": fits, "Throughput": speed,
              "Gradient noise scale": noise}
    for title, result in titles.items():
        fig = result.plot()
        assert isinstance(fig, Figure) and fig.get_suptitle() == title
    drawn = [list(line.get_ydata()) for ax in speed.plot().axes for line in ax.get_lines()]
    assert list(speed.samples_per_s) in drawn


def test_lr_find_on_a_regression_uses_the_loss(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    found = bl.lr_find(model=nn.Linear(4, 1), train=(x, x @ np.ones((4, 1), np.float32)),
                       loss=nn.MSELoss(), batch_size=16, epochs=1, threads=1)
    assert found.suggested_lr is not None and "nan" not in found.reason


CALLS = {"n": 0, "stop_at": None}


def counting_loss(out, y):
    """Cross-entropy that raises Ctrl-C at the ``stop_at``-th training call (module state, so
    the function's source, and with it the run id, stays the same)."""
    if torch.is_grad_enabled():
        CALLS["n"] += 1
        if CALLS["n"] == CALLS["stop_at"]:
            raise KeyboardInterrupt
    return nn.functional.cross_entropy(out, y)


def test_an_interrupted_sweep_resumes_from_its_checkpoint(tmp_path):
    store = tmp_path / "s.db"
    kw = dict(grid={"batch_size": [16]}, epochs=3, loss=counting_loss)
    CALLS.update(n=0, stop_at=12)  # 8 steps per epoch: stopped in epoch 2, checkpoint at step 8
    with pytest.raises(KeyboardInterrupt):
        small_sweep(store, **kw)
    with Store(store) as st:
        (run,) = st.runs("t")
    assert run.status == "interrupted"
    CALLS.update(n=0, stop_at=None)
    res = small_sweep(store, **kw)
    assert (res.skipped, res.trained) == (0, 1)
    with Store(store) as st:
        (run,) = st.runs("t")
        steps = st.metrics(run.id, ["train_loss"])["train_loss"].step
    assert run.status == "completed" and run.attempts == 2
    assert CALLS["n"] == 16  # resumed at step 8: only epochs 2 and 3 trained again
    assert list(steps) == list(range(1, 25))


def test_lr_auto_is_measured_on_the_objects_and_reused(tmp_path):
    store = tmp_path / "s.db"
    kw = dict(grid={"batch_size": [32]}, steps=40, lr="auto")  # room for the ladder's miniatures
    with pytest.warns(UserWarning, match=r"lr = 'auto' at batch 32: \S+ \(confidence \w+\); finding it took"):
        res = bl.sweep("auto", model=Net(), train=arrays(), store=store, threads=1, **kw)
    (row,) = res.rows
    assert row["status"] == "completed" and row["lr"] > 0
    with Store(store) as st:
        (probe,) = st.probes("auto", "lr_range")
    assert probe.config["data"]["name"] == "memory"
    again = bl.sweep("auto", model=Net(), train=arrays(), store=store, threads=1, **kw)
    assert (again.skipped, again.trained) == (1, 0)  # the stored suggestion keeps the run id


def test_ctrl_c_while_finding_lrs_for_auto_keeps_those_found(tmp_path, second_auto_lr_cut):
    calls = second_auto_lr_cut  # Ctrl-C while batch 32's LR is measured
    store = tmp_path / "s.db"
    kw = dict(grid={"batch_size": [16, 32]}, steps=40, lr="auto", store=store, threads=1)
    with pytest.raises(KeyboardInterrupt), pytest.warns(
            UserWarning, match=r"interrupted: the LR found for lr = 'auto' so far \(1 probe\) is stored"):
        bl.sweep("auto", model=Net(), train=arrays(), **kw)
    with Store(store) as st:
        (probe,) = st.probes("auto", "lr_range")
        assert probe.config["train"]["batch_size"] == 16 and st.runs("auto") == []
    calls.clear()
    res = bl.sweep("auto", model=Net(), train=arrays(), verbose=False, **kw)
    assert calls == [32] and res.trained == 2  # batch 16's LR was reused


def test_prune_is_a_sweep_keyword(tmp_path):
    """A collapsing LR is stopped early as pruned by default; prune="off" trains it to the end."""
    kw = dict(grid={"lr": [5.0]}, epochs=8)  # learns in epoch 1, then collapses
    small_sweep(tmp_path / "a.db", **kw)
    small_sweep(tmp_path / "b.db", prune="off", **kw)
    with Store(tmp_path / "a.db") as st:
        (pruned,) = st.runs("t")
    with Store(tmp_path / "b.db") as st:
        (full,) = st.runs("t")
    assert full.status == "completed" and full.steps == 32
    assert pruned.status == "pruned" and pruned.steps < 32 and "collapsed to chance" in pruned.error
    with pytest.raises(SpecError, match="prune"):
        small_sweep(tmp_path / "c.db", prune="sometimes")


@pytest.mark.parametrize("probe", ["lr_find", "throughput", "noise_scale", "max_batch", "recommend"])
def test_a_probe_s_bad_keyword_names_the_probe(probe):
    """Not batchlab.sweep('probes'): the user called a probe (issue 21, part 2, item 12)."""
    with pytest.raises(SpecError) as err:
        getattr(bl, probe)(model=Net(), train=arrays(), weight_decay=-1)
    assert f"batchlab.{probe}(...)" in str(err.value) and "sweep" not in str(err.value)
    assert "'train.weight_decay': Input should be greater than or equal to 0" in str(err.value)


@pytest.mark.parametrize("probe, given, words", [
    ("throughput", {"batch_size": 16}, "batchlab.throughput: batch_size= is not read by this "
     "probe; it measures every size in batch_sizes= (default powers of two from 8 to 2048); "
     "pass batch_sizes=[16] to measure that one."),
    ("lr_find", {"lr": 0.1}, "batchlab.lr_find: lr= is not read by this probe; it is the LR this "
     "probe looks for"),
    ("lr_find", {"train.lr": 0.1}, "batchlab.lr_find: train.lr= is not read"),
])
def test_a_keyword_the_probe_never_reads_is_refused(probe, given, words):
    """Accepted and ignored: throughput measured 8 to 2048 whatever batch_size said."""
    with pytest.raises(SpecError) as err:
        getattr(bl, probe)(model=Net(), train=arrays(), **given)
    assert words in str(err.value)


def test_a_sweep_s_bad_keyword_names_the_sweep(tmp_path):
    with pytest.raises(SpecError, match=r"batchlab.sweep\('t'\)"):
        bl.sweep("t", model=Net(), train=arrays(), store=tmp_path / "s.db", lr=-0.1)


def test_a_sweep_result_plots_its_curves_and_heatmaps(tmp_path):
    res = small_sweep(tmp_path / "s.db", verbose=False)
    curves = res.plot()
    assert isinstance(curves, Figure) and "schedule: constant" in curves.get_suptitle()
    drawn = sum(len(ax.get_lines()) for ax in curves.axes)
    assert drawn >= 2 * 3  # each run's train, validation loss and accuracy lines
    heat = res.plot("heatmaps")
    assert [ax.get_title() for ax in heat.axes[:2]] == [
        "best validation accuracy — schedule: constant", "final validation accuracy — schedule: constant"]
    with pytest.raises(BatchlabError, match="'curves' or 'heatmaps'"):
        res.plot("bars")


WORKER_SCRIPT = """
import sys
import numpy as np
import batchlab as bl
from mymodels import Net

if __name__ == "__main__":  # spawned workers run this file again: guard the sweep
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4)).astype(np.float32)
    res = bl.sweep("w", model=Net(), train=(x, (x[:, 0] > 0).astype(np.int64)), store=sys.argv[1],
                   grid={"batch_size": [16, 32]}, epochs=1, lr=0.1, workers=int(sys.argv[2]),
                   verbose=False)
    print([(r["batch_size"], r["status"], r["best_val_acc"], r["final_val_loss"]) for r in res.rows])
"""
MODELS = """
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)
"""


def test_workers_train_module_level_objects_in_processes_with_the_same_numbers(tmp_path):
    """Issue 21, part 2, item 13: workers > 1 is accepted for objects worker processes can
    receive (a module's class, tensors), and trains the same runs as workers=1."""
    (tmp_path / "mymodels.py").write_text(MODELS)
    (tmp_path / "study.py").write_text(WORKER_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = {}
    for workers in (2, 1):
        run = subprocess.run([sys.executable, "study.py", f"s{workers}.db", str(workers)],
                             cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        out[workers] = run.stdout.strip().splitlines()[-1]
    assert out[2] == out[1] and out[2].count("'completed'") == 2


def test_workers_refuse_a_notebook_class_with_the_reason(tmp_path):
    code = ("import numpy as np, batchlab as bl\nfrom torch import nn\n"
            "class Mine(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
            "        self.fc = nn.Linear(4, 2)\n    def forward(self, x):\n        return self.fc(x)\n"
            "x = np.zeros((40, 4), np.float32)\n"
            "try:\n    bl.sweep('c', model=Mine(), train=(x, np.arange(40) % 2), store='u.db', workers=2)\n"
            "except bl.BatchlabError as err:\n    print(err)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "workers=2: Mine is defined in this notebook (or 'python -c')" in run.stdout
    assert "module file" in run.stdout and not (tmp_path / "u.db").exists()


def make_net(input_shape, num_classes, width=8):
    """The README's factory for a spec's ``model.name``: the same function works here."""
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), width), nn.ReLU(),
                         nn.Linear(width, num_classes))


def test_the_readme_factory_trains_a_grid_of_numpy_values(tmp_path):
    res = bl.sweep("np", model=make_net, train=arrays(), grid={"batch_size": np.array([16, 64])},
                   lr=np.float64(0.05), epochs=np.int64(1), store=tmp_path / "s.db", threads=1,
                   verbose=False)
    rows = res.rows
    assert [r["batch_size"] for r in rows] == [16, 64] and all(type(r["batch_size"]) is int
                                                               for r in rows)
    assert all(r["status"] == "completed" and r["lr"] == 0.05 for r in rows)


def test_a_store_that_is_not_a_path_is_a_clear_error():
    with pytest.raises(SpecError, match=r"batchlab.sweep\('t'\): store=5 must be the path"):
        bl.sweep("t", model=Net(), train=arrays(), store=5)
    with pytest.raises(SpecError, match=r"batchlab.lr_find\(...\): store=3.5 must be the path"):
        bl.lr_find(model=Net(), train=arrays(), store=3.5)


def test_a_probe_checks_its_store_before_it_trains(tmp_path, monkeypatch):
    """A store that will be refused is refused before the probe spends its time, in the
    API's words (store=, not the CLI's --store)."""
    from batchlab.probes import lr_search

    monkeypatch.setattr(lr_search, "lr_find", lambda *a, **k: pytest.fail("the probe trained"))
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a store")
    for store, words in [(foreign, "is not a batchlab store"), (tmp_path, "is a folder")]:
        with pytest.raises(StoreError) as err:
            bl.lr_find(model=Net(), train=arrays(), store=store)
        assert words in str(err.value) and "--store" not in str(err.value)
        assert "store=" in str(err.value)


def test_a_sweep_s_store_errors_speak_of_store(tmp_path):
    with pytest.raises(StoreError) as err:
        small_sweep(tmp_path)
    assert str(err.value).startswith(f"store='{tmp_path}' is a folder; give a file name inside "
                                     f"it, e.g. store='{tmp_path / 'batchlab.db'}'.")


def test_probe_batch_sizes_may_be_one_number_or_numpy(monkeypatch):
    from batchlab.probes import throughput

    seen = []
    monkeypatch.setattr(throughput, "throughput_curve",
                        lambda config, batch_sizes, inputs: seen.append(batch_sizes))
    for given in (16, np.int64(16), np.array([16, 32]), range(16, 33, 16)):
        bl.throughput(model=Net(), train=arrays(), batch_sizes=given)
    assert seen == [[16], [16], [16, 32], [16, 32]]
    assert all(type(b) is int for sizes in seen for b in sizes)


@pytest.mark.parametrize("probe, given, words", [
    ("recommend", "16,32", "batchlab.recommend: batch_sizes='16,32' is a string; pass a list of "
                           "whole numbers, e.g. batch_sizes=[16, 32, 64]."),
    ("lr_find", [16, 0], "batchlab.lr_find: batch_sizes=[16, 0] must be whole numbers >= 1"),
    ("throughput", 2.5, "batchlab.throughput: batch_sizes=2.5 must be whole numbers >= 1"),
])
def test_bad_probe_batch_sizes_are_a_spec_error(probe, given, words):
    with pytest.raises(SpecError) as err:
        getattr(bl, probe)(model=Net(), train=arrays(), batch_sizes=given)
    assert words in str(err.value)


@pytest.mark.parametrize("sizes", [dict(batch_sizes=[1, 16]), dict(batch_size=1)])
def test_lr_find_at_batch_1_of_a_batchnorm_model_is_refused_as_a_sweep_refuses_it(sizes):
    # torch's raw ValueError ("Expected more than 1 value per channel when training") came out
    bn = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(SpecError) as err:
        bl.lr_find(model=bn, train=arrays(), epochs=1, **sizes)
    assert "train.batch_size = 1 forwards 1 example at a time, but model 'Sequential' has " \
           "BatchNorm layers" in str(err.value)


def test_a_sweep_s_notice_is_a_warning_at_the_caller_s_line(tmp_path):
    """The store= handling wraps the sweep's body, not a helper call: the notice's warning
    still points at the user's bl.sweep line (a notebook shows that line)."""
    small_sweep(tmp_path / "s.db", grid={"batch_size": [16]}, verbose=False)
    with pytest.warns(UserWarning, match="another model") as caught:
        small_sweep(tmp_path / "s.db", model=Net(hidden=9), grid={"batch_size": [16]},
                    verbose=False)
    assert {w.filename for w in caught if "another model" in str(w.message)} == {__file__}
