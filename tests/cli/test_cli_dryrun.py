"""``batchlab sweep --dry-run`` / ``run --dry-run``: the planned runs and what the sweep would
do with each (train, skip, resume, train again, wait), with nothing trained or written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cli_helpers import batchlab_cli

from batchlab.events import MetricRows
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.fingerprint import HashCaches
from batchlab.plan import plan_runs
from batchlab.probes.auto_lr import auto_lr_key
from batchlab.spec import RunConfig, load_spec
from batchlab.store import Store
from batchlab.store.claims import claim, new_owner
from batchlab.store.lifecycle import checkpoint_file
from batchlab.train import checkpoint_timing

SPEC = """
name = "dry"
[data]
name = "npz"
path = "d.npz"
[model]
name = "mlp"
hidden = [8]
[train]
epochs = 3
lr = 0.1
threads = 1
[sweep.grid]
"train.batch_size" = [8, 16, 32]
"""


def npz(path, seed=0):
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.normal(size=(120, 6)).astype("float32"), y=np.arange(120) % 3)


def project(tmp_path, spec=SPEC):
    """A user's folder with the data and the spec (data.path is read from the current folder:
    in-process tests change to it)."""
    npz(tmp_path / "d.npz")
    (tmp_path / "dry.toml").write_text(spec)
    return tmp_path


def one_batch(folder, batch):
    """The spec of ``folder`` with the grid narrowed to one batch size (same run ids)."""
    return load_spec(folder / "dry.toml", [f'sweep.grid."train.batch_size"=[{batch}]'])


def would(stdout):
    """What the dry run says per batch size: {batch: the 'would' cell}."""
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in stdout.splitlines()
            if line.startswith("│")]
    return {int(r[1]): r[-1] for r in rows}


def snapshot(folder):
    """Every file under ``folder`` with its bytes (the store, its checkpoints, anything new)."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def dry(folder, *args):
    res = batchlab_cli("sweep", "dry.toml", "--store", "s.db", "--dry-run", *args, cwd=folder)
    assert res.returncode == 0, res.stderr
    return res


def test_a_dry_run_says_skip_resume_train_and_leaves_the_store_byte_identical(tmp_path, monkeypatch):
    folder = project(tmp_path)
    monkeypatch.chdir(folder)
    with Store(folder / "s.db") as st:
        run_sweep(one_batch(folder, 16), st, InlineExecutor(threads=1))  # finished

        def stop_in_epoch_three(event):  # 96 training examples / 8: 12 steps an epoch
            if isinstance(event, MetricRows) and event.step > 2 * 12 + 1:
                raise KeyboardInterrupt

        # no write cost measured in this process: the first epoch end writes a checkpoint
        monkeypatch.setattr(checkpoint_timing, "_MEASURED", {})
        with pytest.raises(KeyboardInterrupt):
            run_sweep(one_batch(folder, 8), st, InlineExecutor(threads=1), on_event=stop_in_epoch_three)
        (interrupted,) = [r for r in st.runs("dry") if r.status == "interrupted"]
    step = torch.load(checkpoint_file(folder / "s.db", interrupted.id), weights_only=False)["step"]
    assert step > 0
    before = snapshot(folder)

    res = dry(folder)
    assert would(res.stdout) == {8: f"resume from step {step}", 16: "skip (finished)", 32: "train"}
    assert "3 runs: 1 to train, 1 to resume, 1 finished" in res.stdout
    assert interrupted.id[:8] in res.stdout

    res = dry(folder, "--rerun")
    assert would(res.stdout) == {8: "train again (--rerun)", 16: "train again (--rerun)", 32: "train"}
    assert "3 runs: 1 to train, 2 to train again" in res.stdout

    npz(folder / "d.npz", seed=1)  # other data in the same file
    before[folder.joinpath("d.npz").relative_to(folder)] = (folder / "d.npz").read_bytes()
    res = dry(folder)
    assert would(res.stdout) == {8: "train again (data changed)", 16: "train again (data changed)",
                                 32: "train"}
    assert "retraining 2 runs" in res.stdout and "the data at 'd.npz' changed" in res.stdout
    assert snapshot(folder) == before  # no row, no -wal, no checkpoint removed


def test_a_run_another_live_sweep_holds_is_waited_for(tmp_path, monkeypatch):
    folder = project(tmp_path)
    monkeypatch.chdir(folder)
    spec = load_spec(folder / "dry.toml")
    runs = plan_runs(spec)
    with Store(folder / "s.db") as st:
        st.add_experiment(spec.name, spec.model_dump(mode="json"), runs)
        assert claim(st, runs[1].run_id, new_owner()) == "claimed"  # this live process holds it
    res = dry(folder)
    assert would(res.stdout) == {8: "train", 16: "wait (another sweep is training it)", 32: "train"}
    assert "3 runs: 2 to train, 1 held by another sweep" in res.stdout


def test_no_store_file_and_no_checkpoint_folder_are_made(tmp_path):
    folder = project(tmp_path)
    res = dry(folder)
    assert would(res.stdout) == {8: "train", 16: "train", 32: "train"}
    assert "3 runs: 3 to train" in res.stdout and "not created yet" in res.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["d.npz", "dry.toml"]

    res = batchlab_cli("run", "dry.toml", "--store", "s.db", "--dry-run", cwd=folder)
    assert res.returncode == 0, res.stderr
    assert "1 run: 1 to train" in res.stdout and would(res.stdout) == {32: "train"}  # the base config
    assert sorted(p.name for p in folder.iterdir()) == ["d.npz", "dry.toml"]


def test_ignored_swept_values_are_merged_and_said(tmp_path):
    folder = project(tmp_path, SPEC + '"train.optimizer" = ["sgd", "adam"]\n"train.momentum" = [0.0, 0.9]\n')
    res = dry(folder)
    assert "9 runs: 9 to train" in res.stdout  # 3 batches x (sgd x 2 momenta + adam once)
    assert "train.momentum does not apply where train.optimizer = 'adam'" in res.stdout


def test_lr_auto_measures_nothing_and_shows_an_lr_found_before(tmp_path, monkeypatch):
    folder = project(tmp_path, SPEC.replace("lr = 0.1", 'lr = "auto"'))
    monkeypatch.chdir(folder)
    res = dry(folder)
    assert res.stdout.count("auto (found when the sweep starts)") == 3
    assert "3 of the runs have lr = 'auto' with no LR found yet" in res.stdout
    assert sorted(p.name for p in folder.iterdir()) == ["d.npz", "dry.toml"]  # no probe, no store

    # an LR an earlier sweep found (its probe row) is the LR the sweep would use
    spec = load_spec(folder / "dry.toml")
    config = plan_runs(spec)[1].config  # batch 16
    with Store(folder / "s.db") as st:
        st.add_probe("dry", "lr_range", {**config.model_dump(mode="json"),
                                         "auto_lr_key": auto_lr_key(config),
                                         "data_fingerprint": HashCaches().data(config.data)},
                     {"suggested_lr": 0.0421})
    res = dry(folder)
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in res.stdout.splitlines()
            if "0.0421" in line]
    resolved = RunConfig.model_validate({**config.model_dump(), "train": {
        **config.train.model_dump(), "lr": 0.0421}})
    assert rows == [[resolved.run_id()[:8], "16", "0.0421", "0.0421", "constant", "train"]]
    assert res.stdout.count("auto (found when the sweep starts)") == 2


def test_lr_auto_in_process_never_calls_the_range_test(tmp_path, monkeypatch):
    import batchlab.probes.auto_lr as auto_lr
    from batchlab.execute.dryrun import TRAIN, dry_run

    def no_training(*args, **kwargs):
        raise AssertionError("a dry run ran the LR range test")

    monkeypatch.setattr(auto_lr, "lr_find", no_training)
    folder = project(tmp_path, SPEC.replace("lr = 0.1", 'lr = "auto"'))
    monkeypatch.chdir(folder)
    plan = dry_run(load_spec(folder / "dry.toml"), None)
    assert [p.kind for p in plan.runs] == [TRAIN] * 3 and all(p.unmeasured for p in plan.runs)


def test_bad_data_path_exits_2_with_the_sweeps_paragraph(tmp_path):
    folder = project(tmp_path, SPEC.replace('path = "d.npz"', 'path = "missing.npz"'))
    res = batchlab_cli("sweep", "dry.toml", "--store", "s.db", "--dry-run", cwd=folder)
    assert res.returncode == 2 and "missing.npz" in res.stderr and "Traceback" not in res.stderr
    real = batchlab_cli("sweep", "dry.toml", "--store", "s.db", cwd=folder)
    assert real.returncode == 2 and real.stderr == res.stderr  # the sweep's own check and words
    assert not (folder / "s.db").exists()
