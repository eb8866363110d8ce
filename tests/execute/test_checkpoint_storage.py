"""Checkpoints that travel (``--checkpoint-storage``): the URL is checked up front, a run's
checkpoint goes to that folder (not beside the store), and a later attempt resumes from it."""

import subprocess
import sys
from pathlib import Path

import pytest

from batchlab.errors import BatchlabError
from batchlab.events import RunStarted
from batchlab.execute.base import RunTask
from batchlab.execute.checkpoints import (
    DriverCheckpoint,
    DriverFiles,
    UriCheckpoint,
    check_storage,
    travelling,
)
from batchlab.execute.sweep import run_sweep
from batchlab.fserrors import DiskError
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.store import Store
from batchlab.train.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from batchlab.train.checkpoint_timing import CheckpointTimer
from batchlab.train.loop import checkpoint_or_why, train_run


@pytest.mark.parametrize("uri, says", [
    ("", "names no folder"),
    ("s3://", "names no folder"),
    ("nosuch://bucket/ckpt", "the protocol 'nosuch://' is not known to fsspec"),
    ("memory://ckpt", "inside one process"),
])
def test_a_bad_storage_is_refused_with_what_to_do(uri, says):
    with pytest.raises(BatchlabError, match=says) as err:
        check_storage(uri)
    assert "--checkpoint-storage" in str(err.value)


def test_a_storage_whose_package_is_missing_names_it():
    try:
        import s3fs  # noqa: F401
        pytest.skip("s3fs is installed")
    except ImportError:
        pass
    with pytest.raises(BatchlabError, match="needs a package that is not installed.*s3fs"):
        check_storage("s3://bucket/ckpt")


def test_a_local_storage_is_made_absolute_and_must_be_a_writable_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_storage("ckpt") == str(tmp_path / "ckpt")  # the driver's folder, for every node
    assert check_storage(f"file://{tmp_path}/other/") == str(tmp_path / "other")
    assert (tmp_path / "ckpt").is_dir()
    (tmp_path / "afile").write_text("")
    with pytest.raises(DiskError, match="is a file"):
        check_storage(str(tmp_path / "afile"))


def test_tasks_get_a_checkpoint_at_the_storage_by_run_id(tmp_path):
    task = RunTask("abc", None, tmp_path / "s.db.ckpt" / "abc.pt", 0)
    sent = travelling(task, str(tmp_path / "far"), files=None)
    assert sent.checkpoint_path == UriCheckpoint(f"{tmp_path}/far/abc.pt")
    assert travelling(RunTask("abc", None, None, 0), "s3://b/p", None).checkpoint_path is None


def test_a_uri_checkpoint_round_trips_and_is_written_atomically(tmp_path):
    where = UriCheckpoint(f"file://{tmp_path}/far/r1.pt")
    assert load_checkpoint(where, "r1") is None
    save_checkpoint(where, {"run_id": "r1", "step": 7})
    save_checkpoint(where, {"run_id": "r1", "step": 9})  # replaces the previous one
    assert load_checkpoint(where, "r1")["step"] == 9
    assert [p.name for p in (tmp_path / "far").iterdir()] == ["r1.pt"]  # no temporary file left
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_checkpoint(where, "another run") is None
    remove_checkpoint(where)
    remove_checkpoint(where)  # none: nothing to do
    assert not (tmp_path / "far" / "r1.pt").exists()


def test_the_loop_resumes_from_a_uri_checkpoint(tmp_path):
    s = spec_from_dict({"data": {"name": "synthetic", "shape": [8], "classes": 3, "size": 400},
                        "model": {"name": "mlp", "hidden": [8]},
                        "train": {"epochs": 4, "batch_size": 32, "threads": 1}})
    config = RunConfig(data=s.data, model=s.model, train=s.train)
    where = UriCheckpoint(f"{tmp_path}/far/{config.run_id()}.pt")

    def dies_in_epoch_three(event):
        if getattr(event, "step", 0) > 20:
            raise KeyboardInterrupt  # as a killed node: its checkpoints stay in the storage

    with pytest.raises(KeyboardInterrupt):
        train_run(config, dies_in_epoch_three, checkpoint_path=where, checkpoint_timer=CheckpointTimer())
    saved = load_checkpoint(where, config.run_id())["step"]
    events = []
    end = train_run(config, events.append, checkpoint_path=where, max_resume_step=saved)
    assert end.status == "completed"
    assert isinstance(events[0], RunStarted) and events[0].resumed_from == saved > 0
    assert not (tmp_path / "far" / f"{config.run_id()}.pt").exists()  # removed once completed


def test_a_driver_checkpoint_goes_through_the_actor_and_its_disk_errors_come_back(tmp_path, ray_local):
    files = ray_local.remote(num_cpus=0)(DriverFiles).remote()
    where = DriverCheckpoint(files, str(tmp_path / "s.db.ckpt" / "r1.pt"))
    assert load_checkpoint(where, "r1") is None
    save_checkpoint(where, {"run_id": "r1", "step": 5})
    assert load_checkpoint(tmp_path / "s.db.ckpt" / "r1.pt", "r1")["step"] == 5  # the driver's file
    assert load_checkpoint(where, "r1")["step"] == 5
    remove_checkpoint(where)
    assert not (tmp_path / "s.db.ckpt" / "r1.pt").exists()
    # the driver's file system refuses: the task sees the OSError, the loop says why
    refused = DriverCheckpoint(files, str(tmp_path / ("r" * 300 + ".pt")))
    why = checkpoint_or_why(refused, {"run_id": "r1", "step": 5}, "writing the checkpoint of run r1")
    assert "is too long for the file system while writing the checkpoint of run r1" in why


def function_spec():
    return spec_from_dict({"name": "travel", "train": {
        "function": "fn_train:save_then_fail", "epochs": 1, "lr": 0.1, "batch_size": 8,
        "threads": 1, "options": {"n_train": 24}}})


def test_a_ray_run_s_checkpoint_goes_to_the_storage_and_a_later_attempt_resumes(tmp_path, ray_local):
    from batchlab.execute.ray import RayExecutor

    far = tmp_path / "far"
    (tmp_path / "store").mkdir()
    with Store(tmp_path / "store" / "s.db") as store:
        first = run_sweep(function_spec(), store, RayExecutor(checkpoint_storage=f"file://{far}"))
        [run] = first.records
        assert run.status == "failed" and "cut off after its save" in run.error
        # the checkpoint is in the storage, none beside the store
        assert load_checkpoint(far / f"{run.id}.pt", run.id)["user"] == {"step": 3}
        assert not (tmp_path / "store" / "s.db.ckpt").exists()

        again = run_sweep(function_spec(), store, RayExecutor(checkpoint_storage=f"file://{far}"))
        [run] = again.records
        assert run.status == "completed" and run.attempts == 2
        assert store.metrics(run.id)["resumed_at"].value.tolist() == [3]
        assert store.metrics(run.id)["train_loss"].step.tolist() == [1, 2, 3, 4]
        assert not (far / f"{run.id}.pt").exists()  # removed once completed


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "batchlab", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("args, says", [
    (["--executor", "ray", "--checkpoint-storage", "nosuch://x"], "not known to fsspec"),
    (["--checkpoint-storage", "far"], "--checkpoint-storage is for --executor ray"),
    # mkdir there fails with ENOENT, which had no words: a traceback
    pytest.param(["--executor", "ray", "--checkpoint-storage", "/proc/batchlab-nope"],
                 "cannot write in '/proc/batchlab-nope' while writing the runs' checkpoints",
                 marks=pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux's /proc")),
])
def test_the_cli_refuses_a_bad_storage_with_exit_2(tmp_path, args, says):
    (tmp_path / "s.toml").write_text('name = "x"\n[data]\nname = "synthetic"\n')
    res = cli("sweep", "s.toml", "--store", "s.db", *args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert says in " ".join(res.stderr.split()) and "Traceback" not in res.stderr
    assert not (tmp_path / "s.db").exists()
