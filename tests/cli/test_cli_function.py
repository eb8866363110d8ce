"""A function sweep from a spec on the command line (``train.function = "mytrain:train"``
found from the current folder), and the commands that read its runs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import batchlab_cli, console_script, env

from batchlab.store import Store

FN_TRAIN = Path(__file__).parents[1] / "execute" / "fn_train.py"
SPEC = """
name = "fn"
[train]
function = "mytrain:train"
epochs = 3
lr = 0.05
threads = 1
schedule = {{ name = "step", step_size = 2 }}
[train.options]
n_train = 300
num_classes = 5
[sweep.grid]
"train.batch_size" = [50, 100]
"train.options.width" = {widths}
"""


def user_folder(folder: Path, widths: str = "[16, 32]") -> Path:
    shutil.copy(FN_TRAIN, folder / "mytrain.py")
    (folder / "fn.toml").write_text(SPEC.format(widths=widths))
    return folder


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The spec swept with two worker processes, from the folder holding the function."""
    folder = user_folder(tmp_path_factory.mktemp("fncli"))
    res = batchlab_cli("sweep", "fn.toml", "--store", "s.db", "--workers", "2", cwd=folder)
    assert res.returncode == 0, res.stderr
    return folder, res


def test_the_sweep_trains_every_point_in_worker_processes(swept):
    folder, res = swept
    assert res.stdout.count("completed") == 4
    with Store(folder / "s.db") as st:
        runs = st.runs("fn")
        assert sorted(r.config["train"]["options"]["width"] for r in runs) == [16, 16, 32, 32]
        for r in runs:
            assert r.status == "completed" and r.environment["function"] == "mytrain:train"
            spe = 300 // r.config["train"]["batch_size"]
            val = st.metrics(r.id)["val_acc"]
            assert val.examples.tolist() == [300, 600, 900] and val.step.tolist() == [spe, 2 * spe, 3 * spe]
            lr = st.metrics(r.id)["lr"]  # step decay after 2 epochs, batchlab's schedule
            assert lr.value[2 * spe - 1] == pytest.approx(0.05) and lr.value[2 * spe] == pytest.approx(0.005)
    again = batchlab_cli("sweep", "fn.toml", "--store", "s.db", cwd=folder)
    assert again.returncode == 0, again.stderr
    with Store(folder / "s.db") as st:
        assert [r.attempts for r in st.runs("fn")] == [1] * 4  # finished runs are not retrained


def test_ls_show_report_and_export_read_its_runs(swept):
    folder, _ = swept
    ls = batchlab_cli("ls", "fn", "--store", "s.db", cwd=folder)
    assert ls.returncode == 0 and ls.stdout.count("completed") == 4
    with Store(folder / "s.db") as st:
        run_id = st.runs("fn")[0].id
    show = batchlab_cli("show", run_id, "--store", "s.db", cwd=folder)
    assert show.returncode == 0, show.stderr
    assert '"function": "mytrain:train"' in show.stdout and '"width"' in show.stdout
    report = batchlab_cli("report", "fn", "--store", "s.db", "-o", "fn.html", cwd=folder)
    assert report.returncode == 0, report.stderr
    html = (folder / "fn.html").read_text()
    assert "best config" in html and "batch 50" in html
    assert list((folder / "fn_files").glob("*.png"))  # the figures were drawn
    export = batchlab_cli("export", "fn", "--format", "json", "-o", "fn.json", "--store", "s.db",
                          cwd=folder)
    assert export.returncode == 0, export.stderr
    exported = json.loads((folder / "fn.json").read_text())
    assert len(exported["runs"]) == 4
    from batchlab.web import payload  # what the dashboard serves

    with Store(folder / "s.db") as st:
        heatmap = payload.summary(st, "fn")["heatmaps"][0]
        assert heatmap["batch_sizes"] == [50, 100] and heatmap["metric"] == "best_val_acc"
        curves = payload.curves(st, st.runs("fn"))
        assert all(len(c["val_acc"]["value"]) == 3 for c in curves.values())


def test_an_installed_console_script_finds_the_function_in_the_current_folder(tmp_path):
    folder = user_folder(tmp_path, widths="[16]")
    script = console_script(tmp_path)
    res = subprocess.run([sys.executable, str(script), "sweep", "fn.toml", "--store", "s.db",
                          "--set", "train.epochs=1"], cwd=folder, capture_output=True, text=True,
                         env=env(), timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("completed") == 2


@pytest.mark.parametrize("edit, message", [
    (('"mytrain:train"', '"mytrian:train"'), "cannot import module 'mytrian' for train.function"),
    (('"mytrain:train"', '"mytrain:trian"'), "has no 'trian' for train.function = 'mytrain:trian'. "
                                             "Did you mean 'train'?"),
    (("[train]", '[model]\nname = "mlp"\n[train]'), "builds its own model, so the spec takes no [model]"),
    (("lr = 0.05", 'lr = "auto"'), "runs the LR range test on batchlab's own loop"),
])
def test_bad_specs_exit_2_with_the_fix_and_store_nothing(tmp_path, edit, message):
    folder = user_folder(tmp_path)
    spec = folder / "fn.toml"
    spec.write_text(spec.read_text().replace(*edit))
    res = batchlab_cli("sweep", "fn.toml", "--store", "s.db", cwd=folder)
    assert res.returncode == 2, res.stderr
    assert message in " ".join(res.stderr.split()) and "Traceback" not in res.stderr
    assert not (folder / "s.db").exists()


def test_the_ray_executor_runs_the_function(tmp_path):
    pytest.importorskip("ray")
    folder = user_folder(tmp_path, widths="[16]")
    res = batchlab_cli("sweep", "fn.toml", "--store", "s.db", "--executor", "ray",
                       "--set", "train.epochs=1", cwd=folder)
    assert res.returncode == 0, res.stderr
    with Store(folder / "s.db") as st:
        runs = st.runs("fn")
        assert [r.status for r in runs] == ["completed"] * 2
        assert all(len(st.metrics(r.id)["val_acc"].value) == 1 for r in runs)
