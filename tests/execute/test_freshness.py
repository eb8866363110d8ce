"""Stale results (issue 9 item 2): a stored run is skipped only while its data is the same;
a change retrains it from scratch and says why; ``rerun`` retrains everything."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from batchlab.errors import ModelError
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.local import LocalPoolExecutor
from batchlab.execute.sweep import known_auto_lrs, prepare_sweep, run_sweep
from batchlab.spec import spec_from_dict
from batchlab.store import Store
from batchlab.store.lifecycle import checkpoint_file, fingerprints


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BATCHLAB_CACHE", str(tmp_path / "cache"))


def write_data(path, seed):
    rng = np.random.default_rng(seed)
    np.savez(path, x=rng.normal(size=(120, 6)), y=rng.integers(0, 3, 120))


def npz_spec(path, **model):
    return spec_from_dict({
        "name": "fresh",
        "data": {"name": "npz", "path": str(path)},
        "model": {"name": "mlp", "hidden": [8], **model},
        "train": {"epochs": 2, "lr": 0.05, "threads": 1},
        "sweep": {"grid": {"train.batch_size": [16, 32]}},
    })


def sweep(spec, store, executor=None):
    notes: list[str] = []
    out = run_sweep(spec, store, executor or InlineExecutor(threads=1), on_notice=notes.append)
    return out, notes


def test_overwritten_data_retrains_and_says_why(tmp_path):
    data = tmp_path / "d.npz"
    write_data(data, 0)
    spec = npz_spec(data)
    with Store(tmp_path / "s.db") as store:
        first, notes = sweep(spec, store)
        assert first.trained == 2 and notes == []
        before = {r.id: r.summary["final_val_loss"] for r in first.records}
        again, notes = sweep(spec, store)
        assert again.trained == 0 and again.skipped == 2 and notes == []

        write_data(data, 1)  # same name, same config, other examples
        ckpt = checkpoint_file(store.path, first.records[0].id)
        ckpt.parent.mkdir(exist_ok=True)
        ckpt.write_bytes(b"a checkpoint of the old data")
        third, notes = sweep(spec, store)
        assert third.trained == 2 and third.skipped == 0
        assert len(notes) == 1 and "retraining 2 runs" in notes[0]
        assert f"the data at '{data}' changed" in notes[0]
        assert not ckpt.exists()
        for r in third.records:
            assert r.attempts == 1  # trained from scratch, not resumed
            assert r.summary["final_val_loss"] != before[r.id]
            steps = store.metrics(r.id, ["train_loss"])["train_loss"].step.tolist()
            assert steps == list(range(1, len(steps) + 1))  # no rows left from the old training
        fourth, notes = sweep(spec, store)
        assert fourth.trained == 0 and notes == []


def test_rerun_trains_finished_runs_again(tmp_path):
    data = tmp_path / "d.npz"
    write_data(data, 0)
    spec = npz_spec(data)
    with Store(tmp_path / "s.db") as store:
        sweep(spec, store)
        rows = {r.id: store.count_metric_rows(r.id) for r in store.runs("fresh")}
        out = run_sweep(spec, store, InlineExecutor(threads=1), rerun=True)
        assert out.trained == 2 and out.skipped == 0
        assert {r.id: store.count_metric_rows(r.id) for r in out.records} == rows
        assert all(r.status == "completed" and r.attempts == 1 for r in out.records)


def test_runs_stored_before_fingerprints_are_not_all_retrained(tmp_path):
    data = tmp_path / "d.npz"
    write_data(data, 0)
    spec = npz_spec(data)
    with Store(tmp_path / "s.db") as store:
        sweep(spec, store)
        store.conn.execute("UPDATE runs SET fingerprint_json=NULL")  # an older batchlab's rows
        out, notes = sweep(spec, store)
        assert out.trained == 0 and notes == []
        stored = fingerprints(store, [r.id for r in out.records])
        assert all(fp is not None and fp["data"] for fp in stored.values())


def make_net(input_shape, num_classes):
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(input_shape[0], num_classes))


def test_a_main_module_factory_with_workers_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules["__main__"], "fresh_make_net", make_net, raising=False)
    data = tmp_path / "d.npz"
    write_data(data, 0)
    spec = spec_from_dict({**npz_spec(data).model_dump(mode="json"),
                           "model": {"name": "__main__:fresh_make_net"}})
    with Store(tmp_path / "s.db") as store:
        with pytest.raises(ModelError) as err:
            run_sweep(spec, store, LocalPoolExecutor(2))
        text = str(err.value)
        assert "worker processes cannot import" in text and "--workers 1" in text
        assert "mymodels:fresh_make_net" in text
        assert store.experiments() == [] and store.runs() == []
        out, _ = sweep(spec, store)  # in this process the factory is visible: it trains
        assert [r.status for r in out.records] == ["completed", "completed"]


def test_auto_lr_is_measured_again_when_the_data_changed(tmp_path):
    data = tmp_path / "d.npz"
    write_data(data, 0)
    raw = npz_spec(data).model_dump(mode="json")
    raw["train"]["lr"] = "auto"
    raw["sweep"] = {"grid": {"train.batch_size": [16]}}
    spec = spec_from_dict(raw)

    def sweep_auto(store):
        out = run_sweep(spec, store, InlineExecutor(threads=1),
                        prepared=prepare_sweep(spec, known_lrs=known_auto_lrs(store, "fresh")))
        return out, len(store.probes("fresh", "lr_range"))

    with Store(tmp_path / "s.db") as store:
        assert sweep_auto(store)[1] == 1
        out, probes = sweep_auto(store)
        assert out.trained == 0 and probes == 1  # the stored suggestion is reused
        write_data(data, 1)
        _, probes = sweep_auto(store)
        assert probes == 2  # measured again on the new data, not reused from the old
        latest = store.probes("fresh", "lr_range")[-1].config["data_fingerprint"]
        assert latest and latest != store.probes("fresh", "lr_range")[0].config["data_fingerprint"]
