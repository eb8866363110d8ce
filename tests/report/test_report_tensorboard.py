"""TensorBoard export: hand-written event files read back by our reader (CRCs checked) and,
when tensorboard happens to be installed, by its own EventAccumulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from batchlab.errors import StoreError
from batchlab.report import ReportError, export_tensorboard
from batchlab.report.tensorboard import TAGS, read_events, read_scalars, run_dir_name
from batchlab.report.tfrecord import CorruptRecord, crc32c, crc32c_many, mask, read_records


def test_crc32c_matches_the_standard_check_values():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720)
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c_many([b"a", b"123456789", b"b"])[1] == 0xE3069283
    assert mask(0) == 0xA282EAD8


@pytest.fixture(scope="module")
def exported(sweep_store_path, tmp_path_factory):
    from batchlab.store import Store

    out = tmp_path_factory.mktemp("tb")
    with Store(sweep_store_path) as store:
        files = export_tensorboard(store, "tiny", out)
        runs = store.runs("tiny")
        metrics = {r.id: store.metrics(r.id) for r in runs}
    return out, files, runs, metrics


def test_every_metric_round_trips_through_the_event_files(exported):
    out, files, runs, metrics = exported
    assert len(files) == len(runs) + 1 and files[-1].parent == out
    for run in runs:
        (path,) = (out / run_dir_name(run)).glob("events.out.tfevents.*")
        scalars = read_scalars(path)
        assert set(scalars) == {TAGS[name] for name in metrics[run.id]}
        for name, series in metrics[run.id].items():
            got = scalars[TAGS[name]]
            assert [s for s, _, _ in got] == series.step.tolist()
            np.testing.assert_allclose([v for _, v, _ in got], series.value.astype(np.float32))
            walls = [w for _, _, w in got]
            assert walls == sorted(walls)
        steps = [ev["step"] for ev in read_events(path)]
        assert steps == sorted(steps)  # one stream in step order, as TensorBoard expects


def test_hyperparameters_and_config_are_in_the_files(exported):
    out, files, runs, _ = exported
    events = read_events(next((out / run_dir_name(runs[0])).glob("events.*")))
    assert events[0]["file_version"] == "brain.Event:2"
    plugins = {v["tag"]: v for ev in events for v in ev["values"] if v["plugin"]}
    start = plugins["_hparams_/session_start_info"]
    assert start["plugin"] == "hparams" and b"batch_size" in start["content"]
    assert plugins["_hparams_/session_end_info"]["plugin"] == "hparams"
    assert plugins["config/text_summary"]["plugin"] == "text"
    assert b'"batch_size": 16' in plugins["config/text_summary"]["tensor"]
    exp = read_events(files[-1])
    assert exp[1]["values"][0]["tag"] == "_hparams_/experiment"


def test_a_corrupted_file_is_detected(exported, tmp_path):
    out, files, _, _ = exported
    blob = bytearray(files[0].read_bytes())
    blob[40] ^= 0xFF
    bad = tmp_path / "events.out.tfevents.bad"
    bad.write_bytes(bytes(blob))
    with pytest.raises(CorruptRecord):
        read_records(bad)
    bad.write_bytes(files[0].read_bytes()[:-3])
    with pytest.raises(CorruptRecord):
        read_records(bad)


def test_export_errors_are_clear(store, tmp_path):
    with pytest.raises(StoreError):
        export_tensorboard(store, "nope", tmp_path)
    store.add_experiment("nothing", {}, [])
    with pytest.raises(ReportError, match="no runs"):
        export_tensorboard(store, "nothing", tmp_path)


def test_tensorboard_itself_reads_the_scalars_and_hparams(exported):
    ea_mod = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is not installed (optional: pip install tensorboard)")
    plugin_data_pb2 = pytest.importorskip("tensorboard.plugins.hparams.plugin_data_pb2")
    out, _, runs, metrics = exported
    for run in runs:
        acc = ea_mod.EventAccumulator(str(out / run_dir_name(run)),
                                      size_guidance={ea_mod.SCALARS: 0, ea_mod.TENSORS: 0})
        acc.Reload()
        assert set(acc.Tags()["scalars"]) == {TAGS[n] for n in metrics[run.id]}
        for name, series in metrics[run.id].items():
            events = acc.Scalars(TAGS[name])
            assert [e.step for e in events] == series.step.tolist()
            for e, v in zip(events, series.value, strict=True):
                assert e.value == pytest.approx(v, rel=1e-6) or (math.isnan(e.value) and math.isnan(v))
        content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
        assert start.hparams["batch_size"].number_value == run.config["train"]["batch_size"]
        assert start.hparams["lr"].number_value == run.config["train"]["lr"]
        assert start.group_name == run.id
