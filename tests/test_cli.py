"""The command line, run as a user runs it: exit codes, output, files, rows in the store."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from batchlab.store import Store

SPEC = """
name = "cli"
[data]
name = "synthetic"
shape = [10]
classes = 3
size = 200
[model]
name = "mlp"
hidden = [8]
[train]
epochs = 2
lr = 0.1
threads = 1
[sweep.grid]
"train.batch_size" = [16, 32]
"""


def batchlab(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "batchlab", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "cli.toml"
    p.write_text(SPEC)
    return p


def test_sweep_ls_show_export(tmp_path, spec_file):
    db = tmp_path / "s.db"
    res = batchlab("sweep", spec_file, "--store", db, "--set", "train.epochs=3")
    assert res.returncode == 0, res.stderr
    assert "experiment 'cli'" in res.stdout and res.stdout.count("completed") == 2
    with Store(db) as st:
        runs = st.runs("cli")
        assert [r.config["train"]["epochs"] for r in runs] == [3, 3]
        run_id = runs[0].id
    res = batchlab("ls", "--store", db)
    assert res.returncode == 0 and "cli" in res.stdout
    res = batchlab("ls", "cli", "--store", db)
    assert run_id in res.stdout
    res = batchlab("show", run_id[:7], "--store", db)
    assert res.returncode == 0 and run_id in res.stdout and "train_loss" in res.stdout
    assert '"torch"' in res.stdout  # the environment is shown

    out = tmp_path / "csv"
    res = batchlab("export", "cli", "--format", "csv", "-o", out, "--store", db)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert [int(r["batch_size"]) for r in rows] == [16, 32]
    assert {r["status"] for r in rows} == {"completed"}
    metrics = list(csv.DictReader(open(out / "metrics.csv")))
    with Store(db) as st:
        assert len(metrics) == sum(st.count_metric_rows(r.id) for r in st.runs("cli"))

    res = batchlab("export", "cli", "--format", "json", "-o", tmp_path / "e.json", "--store", db)
    doc = json.loads((tmp_path / "e.json").read_text())
    assert len(doc["runs"]) == 2
    loss = [m for m in doc["metrics"] if m["name"] == "train_loss" and m["run_id"] == run_id][0]
    assert loss["step"] == list(range(1, len(loss["step"]) + 1))
    assert np.isfinite(loss["value"]).all()


def test_run_trains_the_base_config_once(tmp_path, spec_file):
    db = tmp_path / "s.db"
    res = batchlab("run", spec_file, "--store", db)
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        (run,) = st.runs("cli")
        assert run.status == "completed" and run.config["train"]["batch_size"] == 32


def test_demo_runs_the_classic_grid(tmp_path):
    res = batchlab("demo", "--epochs", "1", "--workers", "2", "--store", tmp_path / "d.db")
    assert res.returncode == 0, res.stderr
    with Store(tmp_path / "d.db") as st:
        runs = st.runs("demo")
    assert len(runs) == 24 and {r.status for r in runs} <= {"completed", "diverged"}
    grid = {(r.config["train"]["batch_size"], r.config["train"]["lr"],
             r.config["train"]["schedule"]["name"]) for r in runs}
    assert grid == {(b, lr, s) for b in (16, 32, 64, 128) for lr in (0.1, 0.01, 0.001)
                    for s in ("constant", "step")}
    assert "best val acc" in res.stdout


@pytest.fixture(scope="module")
def swept_store(tmp_path_factory):
    """A store holding one swept experiment, made once for the bad-input tests (each copies it)."""
    folder = tmp_path_factory.mktemp("swept")
    (folder / "cli.toml").write_text(SPEC)
    res = batchlab("sweep", folder / "cli.toml", "--store", folder / "s.db")
    assert res.returncode == 0, res.stderr
    return folder / "s.db"


def bad(tmp_path, text):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[train]\nbach_size = 3\n', "unknown field 'train.bach_size'"),
        ('[train]\nbatch_size = -1\n', "'train.batch_size'"),
        ('[train]\nlr = "fast"\n', "'train.lr'"),
        ('[model]\nname = "resnet9000"\n', "unknown model 'resnet9000'"),
        ('[model]\nname = "no_such_pkg.mod:make"\n', "no_such_pkg"),
        ('[train]\noptimizer = "lbfgs"\n', "'train.optimizer' = 'lbfgs'"),
        ('[data]\nname = "mnist_idx"\npath = "/nonexistent/mnist"\n', "/nonexistent/mnist"),
        ('[train\n', "not valid TOML"),
        ('[model]\nname = "cnn1d"\nwidth = 0.5\n', "model 'cnn1d' never reads it"),
        ('[model]\nname = "lenet5"\n[sweep.grid]\n"model.hidden" = [[16], [32]]\n',
         "model.hidden is set, but no run of the sweep reads it"),
    ],
)
def test_bad_input_exits_2_with_one_paragraph_and_no_store_change(tmp_path, swept_store, text, needle):
    db = tmp_path / "s.db"
    for made in swept_store.parent.glob("s.db*"):  # the store and whatever lies beside it
        (shutil.copytree if made.is_dir() else shutil.copy)(made, tmp_path / made.name)
    before = db.read_bytes()
    res = batchlab("sweep", bad(tmp_path, text), "--store", db)
    assert res.returncode == 2, res.stdout + res.stderr
    assert needle.lower() in res.stderr.lower()
    assert "Traceback" not in res.stderr + res.stdout
    with Store(db) as st:
        assert [e.name for e in st.experiments()] == ["cli"]
    assert db.read_bytes() == before


def test_corrupt_data_file_and_unknown_names(tmp_path):
    npz = tmp_path / "d.npz"
    npz.write_bytes(b"PK\x03\x04 not really a zip")
    res = batchlab("sweep", bad(tmp_path, f'[data]\nname = "npz"\npath = "{npz}"\n'),
                   "--store", tmp_path / "s.db")
    assert res.returncode == 2 and "d.npz" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "s.db").exists()
    res = batchlab("show", "abc", "--store", tmp_path / "none.db")
    assert res.returncode == 2 and "does not exist" in res.stderr
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite")
    res = batchlab("ls", "--store", junk)
    assert res.returncode == 2 and "not a batchlab store" in res.stderr
    assert junk.read_text() == "not sqlite"
    res = batchlab("sweep", tmp_path / "missing.toml")
    assert res.returncode == 2 and "does not exist" in res.stderr
