"""The fault tests of the built-in loop (``test_faults.py``), on a function sweep from a spec:
``train.function = "mytrain:train"`` found in the current folder, its driver and workers
killed with SIGKILL at random moments, then resumed. Every run must end completed with each
metric row once and the numbers of an uninterrupted sweep (``run.save``/``run.restore``)."""

import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from test_faults import kill_both_workers, kill_driver_repeatedly_then_resume

from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import spec_from_dict
from batchlab.store import Store

HERE = Path(__file__).parent
SPEC = """
name = "faults"
[train]
function = "mytrain:train"
epochs = 25
lr = 0.02
threads = 1
[train.options]
n_train = 2000
width = 96
[sweep.grid]
"train.batch_size" = [16, 24, 32, 48]
"""


def folder_with_function(folder: Path) -> Path:
    """``folder`` holding the spec and the training function's module, as a user's would."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "fn_train.py", folder / "mytrain.py")
    (folder / "fn.toml").write_text(SPEC)
    return folder / "fn.toml"


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory):
    """The same sweep run once, uninterrupted, in this process."""
    folder = tmp_path_factory.mktemp("fnref")
    folder_with_function(folder)
    sys.path.insert(0, str(folder))
    try:
        db = folder / "reference.db"
        with Store(db) as ref:
            run_sweep(spec_from_dict(tomllib.loads(SPEC)), ref, InlineExecutor(threads=1))
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("mytrain", None)
    return db


@pytest.fixture(scope="module")
def reference(reference_db):
    with Store(reference_db) as ref:
        runs = ref.runs("faults")
        assert [r.status for r in runs] == ["completed"] * 4
        return {r.id: ref.metrics(r.id) for r in runs}


@pytest.fixture(scope="module")
def shortest_run_s(reference_db):
    with Store(reference_db) as ref:
        return min(r.wall_time for r in ref.runs("faults"))


@pytest.mark.parametrize("workers", [1, 2])
def test_driver_killed_repeatedly_then_resumed(tmp_path, workers, reference, shortest_run_s,
                                               monkeypatch):
    spec_file = folder_with_function(tmp_path)
    monkeypatch.chdir(tmp_path)  # the function is found from the current folder
    kill_driver_repeatedly_then_resume(spec_file, tmp_path / "s.db", workers, reference,
                                       shortest_run_s)


def test_killed_worker_is_replaced_and_its_run_retried(tmp_path, reference, monkeypatch):
    spec_file = folder_with_function(tmp_path)
    monkeypatch.chdir(tmp_path)
    kill_both_workers(spec_file, tmp_path / "s.db", reference)
