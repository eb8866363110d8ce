"""Commands that train, run as a user runs them (issue 9 items 2 and 3, CLI section)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_helpers import batchlab_cli, cli_without_torch, console_script, env

from batchlab.store import Store

SPEC = """
name = "mine"
[data]
name = "synthetic"
shape = [6]
classes = 3
size = 120
[model]
name = "mymodels_fh:make"
[train]
epochs = 1
lr = 0.1
threads = 1
batch_size = 64
[sweep.grid]
"train.batch_size" = [16, 32]
"""

RELU = """import torch

def make(input_shape, num_classes):
    return torch.nn.Sequential(torch.nn.Linear(input_shape[0], 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, num_classes))
"""


def project(tmp_path):
    """A user's folder: their model module and their spec, side by side."""
    (tmp_path / "mymodels_fh.py").write_text(RELU)
    (tmp_path / "mine.toml").write_text(SPEC)
    return tmp_path


def installed_batchlab(script, *args, cwd):
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env={**env(), "BATCHLAB_CACHE": str(cwd / "cache")},
                          timeout=300)


def test_console_script_imports_factories_from_the_current_folder_and_retrains_on_edit(tmp_path):
    folder = project(tmp_path)
    script = console_script(tmp_path / "venv")
    # two worker processes: they import the factory from the current folder too
    res = installed_batchlab(script, "sweep", "mine.toml", "--workers", "2", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("completed") == 2
    res = installed_batchlab(script, "sweep", "mine.toml", cwd=folder)
    assert "retraining" not in res.stdout and "2 already in the store" in res.stdout
    with Store(folder / "batchlab.db") as st:
        before = {r.id: r.summary["final_train_loss"] for r in st.runs("mine")}

    (folder / "mymodels_fh.py").write_text(RELU.replace("ReLU", "Tanh"))
    res = installed_batchlab(script, "sweep", "mine.toml", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert "retraining 2 runs" in res.stdout
    assert "the source of model factory 'mymodels_fh:make'" in res.stdout
    with Store(folder / "batchlab.db") as st:
        after = {r.id: r.summary["final_train_loss"] for r in st.runs("mine")}
        assert after.keys() == before.keys() and all(after[k] != before[k] for k in after)
        assert all(r.attempts == 1 for r in st.runs("mine"))


def test_sweep_rerun_and_run_shows_only_its_run(tmp_path):
    folder = project(tmp_path)
    assert batchlab_cli("sweep", "mine.toml", cwd=folder).returncode == 0
    res = batchlab_cli("sweep", "mine.toml", "--rerun", cwd=folder)
    assert res.returncode == 0 and "--rerun: training 2 runs again" in res.stdout
    res = batchlab_cli("run", "mine.toml", cwd=folder)  # the base config: batch 64
    assert res.returncode == 0, res.stderr
    table = [line for line in res.stdout.splitlines() if "completed" in line]
    assert len(table) == 1 and "64" in table[0]
    assert "has 2 other runs" in res.stdout and "batchlab ls mine" in res.stdout


def test_set_addresses_grid_keys(tmp_path):
    folder = project(tmp_path)
    res = batchlab_cli("sweep", "mine.toml", "--set", 'sweep.grid."train.batch_size"=[8]', cwd=folder)
    assert res.returncode == 0, res.stderr
    with Store(folder / "batchlab.db") as st:
        assert [r.config["train"]["batch_size"] for r in st.runs("mine")] == [8]


def test_seed_column_when_repeats_exist(tmp_path):
    folder = project(tmp_path)
    res = batchlab_cli("sweep", "mine.toml", "--set", "sweep.repeats=2", "--set",
                       'sweep.grid."train.batch_size"=[32]', cwd=folder)
    assert res.returncode == 0, res.stderr
    header = next(line for line in res.stdout.splitlines() if "batch" in line and "status" in line)
    assert "seed" in header
    rows = [line.split("│") for line in res.stdout.splitlines() if "completed" in line]
    seed_col = [c.strip() for c in header.split("┃")].index("seed")
    assert sorted(r[seed_col].strip() for r in rows) == ["0", "1"]


def test_the_wait_before_the_first_bar_is_explained():
    from batchlab.cli.runs import _checking
    from batchlab.spec import spec_from_dict

    plain = _checking(spec_from_dict({}))
    assert plain.startswith("loading data") and "range test" not in plain
    auto = _checking(spec_from_dict({"sweep": {"grid": {"train.lr": ["auto", 0.1]}}}))
    assert auto.startswith("finding an LR for lr = 'auto'")


def test_hidden_set_for_a_factory_without_it_is_refused_before_anything_is_stored(tmp_path):
    # docs/spec.md's --set example, on the README's kind of factory: it never receives hidden,
    # so the run id would change and the identical run train again
    folder = project(tmp_path)
    res = batchlab_cli("run", "mine.toml", "--set", "model.hidden=[64,64]", cwd=folder)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert "model.hidden = [64, 64] is set, but model 'mymodels_fh:make' is your factory" in text
    assert not (folder / "batchlab.db").exists()


def test_a_store_in_a_missing_folder_is_refused_not_made(tmp_path):
    # a mistyped --store would otherwise make the folders and train everything again there
    folder = project(tmp_path)
    (folder / "log.csv").write_text("epoch,loss\n0,1.0\n")
    missing = folder / "nonexistent" / "dir"
    for args in (["sweep", "mine.toml"], ["run", "mine.toml"], ["demo", "--epochs", "1"],
                 ["lr-find", "mine.toml"], ["import", "csv", "log.csv"]):
        res = batchlab_cli(*args, "--store", missing / "x.db", cwd=folder)
        assert res.returncode == 2, (args, res.stderr)
        text = " ".join(res.stderr.split())
        assert f"its folder '{missing}' does not exist, and batchlab does not make it" in text
        assert "mkdir -p" in text and "Traceback" not in text
        assert not (folder / "nonexistent").exists()
    # a new store file in an existing folder is still made
    res = batchlab_cli("run", "mine.toml", "--store", folder / "new.db", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert (folder / "new.db").is_file()


def test_a_store_path_that_cannot_be_a_file_is_refused_before_torch_is_imported(tmp_path):
    # lr-find --store . trained every miniature, then said the store was a folder
    folder = project(tmp_path)
    (folder / "data.txt").write_text("a file, not a folder")
    for store, says in ((folder, f"--store '{folder}' is a folder; give a file name inside it"),
                        (folder / "data.txt" / "s.db", f"'{folder / 'data.txt'}' is a file, not a "
                         "folder")):
        for args in (["lr-find", folder / "mine.toml"], ["sweep", folder / "mine.toml", "--dry-run"]):
            last, res = cli_without_torch(*args, "--store", store)
            assert last == "EXIT 2 NO-TORCH", (args, res.stdout, res.stderr)
            assert says in " ".join(res.stderr.split()) and "Traceback" not in res.stderr


@pytest.mark.parametrize("args, says", [
    (["--address", "head:6379"], "--address head:6379 is for --executor ray"),
    (["--cpus-per-run", "2", "--gpus-per-run", "0.5"],
     "--cpus-per-run 2, --gpus-per-run 0.5 are for --executor ray"),
    (["--executor", "ray", "--workers", "2"], "--workers 2 is for --executor local"),
])
def test_an_option_of_the_other_executor_is_refused_not_ignored(tmp_path, args, says):
    # --address without --executor ray used to train every run here, on this machine alone
    folder = project(tmp_path)
    res = batchlab_cli("sweep", "mine.toml", "--store", "s.db", *args, cwd=folder)
    assert res.returncode == 2, res.stderr
    assert says in " ".join(res.stderr.split()) and "Traceback" not in res.stderr
    assert not (folder / "s.db").exists()


def test_npz_labels_minus_one_one_train_and_a_single_class_is_refused(tmp_path):
    import numpy as np

    folder = project(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 6)).astype(np.float32)
    np.savez(folder / "pm.npz", x=x, y=np.where(x[:, 0] > 0, 1, -1))
    np.savez(folder / "one.npz", x=x, y=np.zeros(80, np.int64))
    npz = ["--set", "data.name=npz", "--set", "data.path=pm.npz"]
    res = batchlab_cli("run", "mine.toml", *npz, cwd=folder)
    assert res.returncode == 0, res.stderr
    said = " ".join((res.stdout + res.stderr).split())
    assert "remapped to 0..1 in sorted order (-1->0, 1->1)" in said and "completed" in res.stdout
    res = batchlab_cli("run", "mine.toml", *npz[:2], "--set", "data.path=one.npz", "--store",
                       folder / "one.db", cwd=folder)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert "'one.npz' has a single class (every label is 0)" in text and "at least 2 classes" in text
    assert not (folder / "one.db").exists()


def test_an_image_folder_of_a_single_class_exits_2_before_anything_trains(tmp_path):
    import numpy as np
    from PIL import Image

    folder = project(tmp_path)
    (folder / "pics" / "cat").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(folder / "pics" / "cat" / f"{i}.png")
    res = batchlab_cli("sweep", "mine.toml", "--set", "data.name=image_folder", "--set",
                       "data.path=pics", "--set", "data.image_size=8", "--store", folder / "one.db",
                       cwd=folder)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert "folder 'pics' has a single class (every image is in class folder 'cat')" in text
    assert "at least 2 classes" in text and not (folder / "one.db").exists()
