"""TensorBoard export (written with torch.utils.tensorboard's SummaryWriter): read
back event by event with TensorBoard's own loader (CRCs checked) and its EventAccumulator and
EventMultiplexer, as the TensorBoard app reads a log folder."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from batchlab.errors import StoreError
from batchlab.report import ReportError, export_tensorboard
from batchlab.report.tensorboard import PROGRESS_POINTS, TAGS, progress, run_dir_names, scalar_tag
from batchlab.store import RunRecord, Series

pytest.importorskip("tensorboard", reason="the export needs the tensorboard extra")
from tensorboard.backend.event_processing import event_accumulator as ea_mod  # noqa: E402
from tensorboard.backend.event_processing import plugin_event_multiplexer as pem  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

PROGRESS = {"progress/epoch", "progress/examples_seen"}


def read_events(path) -> list:
    """Every Event of one file, as written (TensorBoard's own loader, which checks the CRCs)."""
    return list(LegacyEventFileLoader(str(path)).Load())


def read_scalars(path) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, value, wall_time)] of every simple scalar of one event file."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for ev in read_events(path):
        for v in ev.summary.value:
            if v.WhichOneof("value") == "simple_value":
                out.setdefault(v.tag, []).append((ev.step, v.simple_value, ev.wall_time))
    return out


@pytest.fixture(scope="module")
def exported(sweep_store_path, tmp_path_factory):
    from batchlab.store import Store

    out = tmp_path_factory.mktemp("tb")
    with Store(sweep_store_path) as store:
        files = export_tensorboard(store, "tiny", out)
        runs = store.runs("tiny")
        metrics = {r.id: store.metrics(r.id) for r in runs}
    return out, files, runs, metrics


def run_dir(out, runs, run):
    return out / run_dir_names(runs)[run.id]


def test_every_metric_round_trips_through_the_event_files(exported):
    out, files, runs, metrics = exported
    assert len(files) == len(runs)
    for run in runs:
        (path,) = run_dir(out, runs, run).glob("events.out.tfevents.*")
        scalars = read_scalars(path)
        assert set(scalars) == {scalar_tag(name) for name in metrics[run.id]} | PROGRESS
        for name, series in metrics[run.id].items():
            got = scalars[scalar_tag(name)]
            assert [s for s, _, _ in got] == series.step.tolist()
            np.testing.assert_allclose([v for _, v, _ in got], series.value.astype(np.float32))
            walls = [w for _, _, w in got]
            assert walls == sorted(walls)
        steps = [ev.step for ev in read_events(path)]
        assert steps == sorted(steps)  # one stream in step order, as TensorBoard expects


def test_epoch_and_examples_seen_are_exported(exported):
    out, _, runs, metrics = exported
    for run in runs:
        scalars = read_scalars(next(run_dir(out, runs, run).glob("events.*")))
        train = metrics[run.id]["train_loss"]
        epochs = {s: v for s, v, _ in scalars["progress/epoch"]}
        seen = {s: v for s, v, _ in scalars["progress/examples_seen"]}
        recorded = set().union(*(m.step.tolist() for m in metrics[run.id].values()))
        assert set(epochs) == set(seen) == recorded  # a short run: every recorded step
        for step, epoch, examples in zip(train.step, train.epoch, train.examples, strict=True):
            assert epochs[int(step)] == pytest.approx(epoch, rel=1e-6)
            assert seen[int(step)] == examples  # exact: below 2**24 in float32
        assert seen[max(seen)] == max(train.examples)


def test_progress_of_a_long_run_keeps_every_evaluation_and_the_ends():
    n = 5000
    step = np.arange(1, n + 1)
    per_step = Series(step, np.ones(n), step / 100, step * 32, step * 0.01)
    ev = np.arange(0, n + 1, 250)
    evals = Series(ev, np.ones(ev.size), ev / 100, ev * 32, ev * 0.01)
    steps, epoch, examples, _ = progress({"train_loss": per_step, "val_acc": evals})
    assert set(ev) <= set(steps.tolist()) and steps[-1] == n and steps[0] == 0
    assert steps.size <= PROGRESS_POINTS + ev.size
    np.testing.assert_array_equal(examples, steps * 32)
    np.testing.assert_allclose(epoch, steps / 100)


def test_no_empty_run_and_the_lr_is_a_parameter_not_a_metric(exported):
    """The HParams experiment lives in the first run's file, not in a file of its own in the
    log folder (which TensorBoard lists as an empty run named '.')."""
    out, files, runs, _ = exported
    assert not list(out.glob("events.*"))
    assert {f.parent.parent for f in files} == {out}
    assert sorted(p.name for p in out.iterdir()) == sorted(run_dir_names(runs).values())
    experiment = [v for f in files for ev in read_events(f) for v in ev.summary.value
                  if v.tag == "_hparams_/experiment"]
    assert len(experiment) == 1
    content = experiment[0].metadata.plugin_data.content
    assert b"val/acc" in content and b"train/loss" in content  # results are metrics
    assert b"train/lr" not in content and b"progress/" not in content  # the LR is not
    assert TAGS["lr"] == "train/lr"


def record(run_id: str, point: dict, **train) -> RunRecord:
    return RunRecord(run_id, "completed", {"train": {"batch_size": 16, "lr": 0.1, "seed": 0, **train}},
                     {}, 0.0, None, None, None, None, None, 0, 1, None, {}, point)


def test_run_names_hold_every_swept_field_and_sort_numerically():
    runs = [record(f"id{b}-{lr}-{m}", {"train.batch_size": b, "train.lr": lr, "train.momentum": m},
                   batch_size=b, lr=lr, momentum=m)
            for b in (256, 16, 64) for lr in (0.1, 0.003) for m in (0.9, 0.0)]
    names = run_dir_names(runs)
    assert len(set(names.values())) == len(runs)  # four 'b16_lr0.1' runs no longer collide
    assert names[runs[0].id] == "b256_lr0.100_momentum0.9_s0"
    assert names[runs[-1].id] == "b064_lr0.003_momentum0.0_s0"
    by_value = sorted(runs, key=lambda r: (r.config["train"]["batch_size"], r.config["train"]["lr"],
                                           r.config["train"]["momentum"]))
    assert sorted(names.values()) == [names[r.id] for r in by_value]  # text order = numeric order
    twins = run_dir_names([record("aaaaaaaa1", {}), record("bbbbbbbb2", {})])
    assert sorted(twins.values()) == ["b16_lr0.1_s0_aaaaaaaa", "b16_lr0.1_s0_bbbbbbbb"]


def test_a_re_export_removes_the_stale_files_of_an_earlier_one(store, tmp_path):
    runs = store.runs("tiny")
    (tmp_path / "events.out.tfevents.1.batchlab").write_bytes(b"")  # the old '.' run
    old = tmp_path / f"b16_lr0.1_constant_s0_{runs[0].id[:8]}"  # an old name of a run
    old.mkdir()
    (old / "events.out.tfevents.1.batchlab").write_bytes(b"session " + runs[0].id.encode())
    other = tmp_path / "b16_lr0.1_s0"  # another experiment's run, exported here before
    other.mkdir()
    (other / "events.out.tfevents.1.batchlab").write_bytes(b"session someone-else")
    export_tensorboard(store, "tiny", tmp_path)
    assert not (tmp_path / "events.out.tfevents.1.batchlab").exists() and not old.exists()
    assert (other / "events.out.tfevents.1.batchlab").read_bytes() == b"session someone-else"


def test_the_files_carry_valid_record_checksums(exported, tmp_path):
    """TensorBoard stops reading a file at a record whose CRC is wrong: every record written
    is read back, and flipping one byte cuts the file short there."""
    out, files, _, _ = exported
    events = read_events(files[0])
    assert events[0].file_version == "brain.Event:2" and len(events) > 10
    # written by tensorboard's own event-file writer (behind SummaryWriter), not a copy of it
    assert events[0].source_metadata.writer == "tensorboard.summary.writer.event_file_writer"
    blob = bytearray(files[0].read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    bad = tmp_path / "events.out.tfevents.bad"
    bad.write_bytes(bytes(blob))
    assert 0 < len(read_events(bad)) < len(events)


def test_export_errors_are_clear(store, tmp_path):
    with pytest.raises(StoreError):
        export_tensorboard(store, "nope", tmp_path)
    store.add_experiment("nothing", {}, [])
    with pytest.raises(ReportError, match="no runs"):
        export_tensorboard(store, "nothing", tmp_path)


def test_tensorboard_itself_reads_the_scalars_and_hparams(exported):
    out, _, runs, metrics = exported
    for run in runs:
        acc = ea_mod.EventAccumulator(str(run_dir(out, runs, run)),
                                      size_guidance={ea_mod.SCALARS: 0, ea_mod.TENSORS: 0})
        acc.Reload()
        assert set(acc.Tags()["scalars"]) == {scalar_tag(n) for n in metrics[run.id]} | PROGRESS
        for name, series in metrics[run.id].items():
            events = acc.Scalars(scalar_tag(name))
            assert [e.step for e in events] == series.step.tolist()
            for e, v in zip(events, series.value, strict=True):
                assert e.value == pytest.approx(v, rel=1e-6) or (math.isnan(e.value) and math.isnan(v))
        content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        assert start.hparams["batch_size"].number_value == run.config["train"]["batch_size"]
        assert start.hparams["lr"].number_value == run.config["train"]["lr"]
        assert start.group_name == run.id


def test_tensorboard_lists_only_the_runs_and_finds_the_experiment(exported):
    out, _, runs, _ = exported
    mux = pem.EventMultiplexer()
    mux.AddRunsFromDirectory(str(out))
    mux.Reload()
    assert sorted(mux.Runs()) == sorted(run_dir_names(runs).values())  # no run "."
    content = mux.PluginRunToTagToContent("hparams")
    (blob,) = [t["_hparams_/experiment"] for t in content.values() if "_hparams_/experiment" in t]
    exp = plugin_data_pb2.HParamsPluginData.FromString(blob).experiment
    assert "lr" in {h.name for h in exp.hparam_infos}
    metrics = {m.name.tag for m in exp.metric_infos}
    assert "val/acc" in metrics and not metrics & {"lr", "train/lr", *PROGRESS}


def test_without_the_tensorboard_package_the_export_says_what_to_install(store, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    for name in [m for m in sys.modules if m.startswith(("tensorboard.", "torch.utils.tensorboard"))]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ReportError, match=r"pip install 'batchlab\[tensorboard\]'"):
        export_tensorboard(store, "tiny", tmp_path / "tb")
    assert not (tmp_path / "tb").exists()


def test_a_run_without_rows_gets_no_folder(tmp_path):
    """Before, a pending run got an empty run folder (docs: 'no empty run'). Runs written as
    events: batch 16 trained 2 steps, batch 64 is pending."""
    from batchlab.events import MetricRows, RunEnded, RunStarted
    from batchlab.plan import plan_runs
    from batchlab.spec import spec_from_dict
    from batchlab.store import Store

    spec = spec_from_dict({"name": "half", "model": {"name": "mlp"},
                           "sweep": {"grid": {"train.batch_size": [16, 64]}}})
    runs = plan_runs(spec)
    with Store(tmp_path / "s.db") as store:
        store.add_experiment("half", spec.model_dump(mode="json"), runs)
        done = runs[0].run_id
        store.record(RunStarted(done, 2, 0))
        rows = [("train_loss", s, 1.0 / s, s / 2, 16 * s, 0.1 * s) for s in (1, 2)]
        store.record(MetricRows(done, rows, 2))
        store.record(RunEnded(done, "completed", 2, 0.2, {}))
        out = tmp_path / "tb"
        files = export_tensorboard(store, "half", out)
        names = run_dir_names(store.runs("half"))
        assert [p.name for p in out.iterdir()] == [names[done]]
        assert [f.parent.name for f in files] == [names[done]]
        assert [v for _, v, _ in read_scalars(files[0])["train/loss"]] == [1.0, 0.5]
        idle = spec_from_dict({"name": "idle", "model": {"name": "mlp"}, "train": {"batch_size": 32}})
        store.add_experiment("idle", idle.model_dump(mode="json"), plan_runs(idle))
        with pytest.raises(ReportError, match="no run with a recorded metric"):
            export_tensorboard(store, "idle", tmp_path / "tb2")
    assert not (tmp_path / "tb2").exists()
