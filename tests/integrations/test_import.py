"""batchlab import: logs written by a real SummaryWriter and a real Keras CSVLogger become runs
whose values match the logs one by one, and get the report and the diagnosis."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import cli_without_torch

pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

from batchlab.store import Store  # noqa: E402


def batchlab(*args):
    return subprocess.run([sys.executable, "-m", "batchlab", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def write_tensorboard(logdir):
    """Two runs the way a blog study logs them: batch size in the folder name, per-step loss
    and LR, per-epoch validation; one run also records its hparams with add_hparams."""
    written = {}
    for bs, lr in ((16, 0.05), (64, None)):
        name = f"LeNet-MNIST-2-BatchSize={bs}"
        rng = np.random.default_rng(bs)
        losses = (2.3 * np.exp(-np.arange(1, 13) / 6) + rng.uniform(0, 0.05, 12)).astype(np.float32)
        vals = np.array([0.42, 0.61, 0.7], dtype=np.float32)
        w = SummaryWriter(str(logdir / name))
        for step, loss in enumerate(losses, 1):
            w.add_scalar("Loss/train", loss, step)
            w.add_scalar("learning_rate", 0.05, step)
            w.add_scalar("grad_norm", 1.0 / step, step)
            if step % 4 == 0:
                w.add_scalar("Accuracy/val", vals[step // 4 - 1], step)
                w.add_scalar("Loss/val", 1.5 - vals[step // 4 - 1], step)
        if lr is not None:
            w.add_hparams({"lr": lr, "optimizer": "sgd"}, {"hparam/best_acc": 0.7})
        w.close()
        written[bs] = (losses, vals)
    return written


def test_tensorboard_folder_imports_value_by_value(tmp_path):
    written = write_tensorboard(tmp_path / "logs")
    db = tmp_path / "s.db"
    res = batchlab("import", "tensorboard", tmp_path / "logs", "--experiment", "blog", "--store", db,
                   "--set", "n_train=64", "--set", "num_classes=10", "--map", "grad_norm=")
    assert res.returncode == 0, res.stderr
    assert "LeNet-MNIST-2-BatchSize=16" in res.stdout
    said = " ".join(res.stdout.split())
    assert "LeNet-MNIST-2-BatchSize=64: lr 0.05, the first value of its logged lr (pass" in said
    assert "BatchSize=16: lr 0.05, the first" not in said  # its hparams gave it
    with Store(db) as st:
        runs = {r.config["train"]["batch_size"]: r for r in st.runs("blog")}
        assert sorted(runs) == [16, 64]
        # batch 64 has no lr hparam: its logged learning_rate gives it (float32 0.05 as 0.05)
        assert runs[16].config["train"]["lr"] == 0.05 and runs[64].config["train"]["lr"] == 0.05
        assert runs[16].config["train"]["optimizer"] == "sgd"
        for bs, (losses, vals) in written.items():
            m = st.metrics(runs[bs].id)
            assert set(m) == {"train_loss", "lr", "val_acc", "val_loss"}  # grad_norm dropped
            assert m["train_loss"].step.tolist() == list(range(1, 13))
            assert m["train_loss"].value.tolist() == losses.tolist()  # float32 as written
            assert m["val_acc"].value.tolist() == vals.tolist() and m["val_acc"].step.tolist() == [4, 8, 12]
            assert m["lr"].value == pytest.approx([0.05] * 12)
            spe = -(-64 // bs)
            assert m["val_acc"].epoch.tolist() == [4 / spe, 8 / spe, 12 / spe]
            assert runs[bs].summary["best_val_acc"] == pytest.approx(0.7)
            assert all(np.diff(m["train_loss"].wall_time) >= 0)  # the log's own times
    # imported again: replaced, not doubled
    assert batchlab("import", "tensorboard", tmp_path / "logs", "-e", "blog", "--store", db).returncode == 0
    with Store(db) as st:
        assert len(st.runs("blog")) == 2
    res = batchlab("report", "blog", "--store", db, "-o", tmp_path / "r.html")
    assert res.returncode == 0, res.stderr
    assert "batch sizes [16, 64]" in (tmp_path / "r.html").read_text()
    res = batchlab("export", "blog", "--store", db, "--format", "json", "-o", tmp_path / "e.json")
    assert res.returncode == 0, res.stderr
    assert len(json.loads((tmp_path / "e.json").read_text())["analysis"]["runs"]) == 2


def test_keras_style_split_folders_and_epoch_steps(tmp_path):
    """Keras's TensorBoard callback: run/train and run/validation, epoch_* tags at epoch index."""
    for split, values in (("train", [1.0, 0.5]), ("validation", [1.2, 0.8])):
        w = SummaryWriter(str(tmp_path / "logs" / "bs=32" / split))
        for epoch, v in enumerate(values):
            w.add_scalar("epoch_loss", v, epoch)
        w.close()
    db = tmp_path / "s.db"
    res = batchlab("import", "tensorboard", tmp_path / "logs", "-e", "k", "--store", db,
                   "--set", "n_train=320")
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        (rec,) = st.runs("k")
        m = st.metrics(rec.id)
    assert rec.config["train"]["batch_size"] == 32
    assert m["train_loss"].step.tolist() == [10, 20] and m["train_loss"].value.tolist() == [1.0, 0.5]
    assert m["val_loss"].epoch.tolist() == [1.0, 2.0]
    assert m["val_loss"].value.tolist() == np.float32([1.2, 0.8]).tolist()  # as TensorBoard stores it


@pytest.mark.parametrize("args, message", [
    (["tensorboard", "{tmp}/nowhere"], "does not exist"),
    (["tensorboard", "{tmp}/logs"], "no TensorBoard event files"),
    (["csv", "{tmp}/bad.csv"], "is not a CSVLogger file"),
    (["csv", "{tmp}/good.csv", "{tmp}/text.csv"], "column 'loss' = 'low' is not a number"),
    (["csv", "{tmp}/good.csv", "--map", "loss"], "--map 'loss' must look like KEY=VALUE"),
    (["tensorboard", "{tmp}", "--step-unit", "hour"], "--step-unit 'hour' is not known"),
    (["csv", "{tmp}/binary.csv"], "is not a CSV text file (its bytes are not UTF-8 text)"),
    (["csv", "{tmp}/metrics.csv"], "is batchlab's own CSV export (one row per run, metric and "
                                   "step), not a CSVLogger file; to move runs between stores"),
    (["csv", "{tmp}/logs"], "CSV log '{tmp}/logs' is a folder, not a file (it holds "
                            "{tmp}/logs/version_0/metrics.csv)"),
    (["tensorboard", "{tmp}/good.csv"], "is a CSV file, not a TensorBoard log folder; import it "
                                        "with 'batchlab import csv {tmp}/good.csv'"),
    (["tensorboard", "{tmp}/run/events.out.tfevents.1.host"],
     "is a file, not a TensorBoard log folder; pass the folder that holds the event files "
     "('{tmp}/run' holds this one)"),
])
def test_bad_input_exits_2_and_stores_nothing(tmp_path, args, message):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "good.csv").write_text("epoch,loss\n0,0.5\n")
    (tmp_path / "text.csv").write_text("epoch,loss\n0,low\n")
    (tmp_path / "binary.csv").write_bytes(b"\x00\xff\xfe\x89PNG")  # not text at all
    (tmp_path / "metrics.csv").write_text(  # what 'batchlab export --format csv' writes
        "run_id,name,step,value,epoch,examples,wall_time\n87339f6bf882,train_loss,1,0.5,1.0,32,0.1\n")
    (tmp_path / "logs" / "version_0").mkdir(parents=True)
    (tmp_path / "logs" / "version_0" / "metrics.csv").write_text("epoch,step,loss\n0,0,0.5\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "events.out.tfevents.1.host").write_bytes(b"")
    db = tmp_path / "s.db"
    last, res = cli_without_torch("import", *[a.format(tmp=tmp_path) for a in args], "--store", db)
    assert last.startswith("EXIT 2 ") and "Traceback" not in res.stderr
    assert message.format(tmp=tmp_path) in " ".join(res.stderr.split())
    assert not db.exists()  # a refused import creates no store file
    # a wrong path or option is refused before the seconds of importing torch; what is wrong
    # inside a file is found by reading it, which the importer does with torch loaded
    if any(w in message for w in ("exist", "no TensorBoard", "is a", "--step-unit")):
        assert last == "EXIT 2 NO-TORCH", message


def test_a_refused_python_import_creates_no_store_and_a_good_one_does(tmp_path):
    from batchlab.errors import DataError
    from batchlab.integrations.csvlog import import_csvlogs
    from batchlab.integrations.tensorboard import import_tensorboard

    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    (tmp_path / "good.csv").write_text("epoch,loss\n0,0.5\n1,0.25\n")
    db = tmp_path / "s.db"
    with pytest.raises(DataError, match="is not a CSVLogger file"):
        import_csvlogs(db, [tmp_path / "good.csv", tmp_path / "bad.csv"], "e", mapping={}, overrides={})
    with pytest.raises(DataError, match="no TensorBoard event files"):
        import_tensorboard(str(db), tmp_path, "e", mapping={}, overrides={})
    assert not db.exists()
    runs = import_csvlogs(db, [tmp_path / "good.csv"], "e", mapping={}, overrides={})
    with Store(db) as st:
        assert [r.id for r in st.runs("e")] == [runs[0].id]
        assert st.metrics(runs[0].id)["train_loss"].value.tolist() == [0.5, 0.25]


def test_batchlab_tensorboard_export_imports_back(tmp_path):
    """The store -> export --format tensorboard -> import tensorboard round trip keeps every value
    (to float32, TensorBoard's precision) and the run's batch size and LR (from its hparams)."""
    import batchlab as bl

    db = tmp_path / "s.db"
    with bl.track("orig", config={"batch_size": 4, "n_train": 8, "lr": 0.1}, store=db) as run:
        for s in range(1, 5):
            run.log(s, train_loss=1.0 / s, lr=0.1)
        # the per-layer signals run.watch records, and the train-set evaluation
        run.log(4, val_loss=0.3, val_acc=0.9, train_eval_loss=0.25, samples_per_s=1000.0,
                **{"layer/fc.lr_head/grad_norm": 0.5, "layer/model/update_ratio": 1e-3})
    res = batchlab("export", "orig", "--format", "tensorboard", "-o", tmp_path / "tb", "--store", db)
    assert res.returncode == 0, res.stderr
    res = batchlab("import", "tensorboard", tmp_path / "tb", "-e", "back", "--store", db,
                   "--set", "n_train=8")
    assert res.returncode == 0, res.stderr
    assert "note:" not in res.stdout  # every tag is one of batchlab's own names
    with Store(db) as st:
        (orig,), (back,) = st.runs("orig"), st.runs("back")
        assert back.config["train"]["batch_size"] == 4 and back.config["train"]["lr"] == 0.1
        # the export's effective_lr and status hparams are results, not config
        assert back.config["tracked"] == {} and back.config == orig.config
        a, b = st.metrics(orig.id), st.metrics(back.id)
    assert set(a) == set(b) == {"train_loss", "lr", "val_loss", "val_acc", "train_eval_loss",
                                "samples_per_s", "layer/fc.lr_head/grad_norm",
                                "layer/model/update_ratio"}
    for name in a:
        assert b[name].step.tolist() == a[name].step.tolist()
        assert b[name].value.tolist() == np.float32(a[name].value).tolist()
        assert b[name].epoch.tolist() == a[name].epoch.tolist()
        # timed from the export's session start, the run's own start (values logged at one
        # step share that step's latest time)
        assert b[name].wall_time == pytest.approx(a[name].wall_time, abs=0.05)


def test_an_export_imports_back_with_its_training_set_size_and_classes(tmp_path):
    """n_train and num_classes come back from the export's hparams: without them the imported
    run had no chance level (a run at chance read 'LR too small', not 'never learned') and its
    examples and samples/s were unknown, unless each was given again with --set."""
    import batchlab as bl
    from batchlab.integrations.tensorboard import import_tensorboard
    from batchlab.report.tensorboard import hparams_of

    db = tmp_path / "s.db"
    config = {"batch_size": 4, "n_train": 8, "lr": 0.1, "num_classes": 3}
    with bl.track("orig", config=config, store=db) as run:
        for s in range(1, 5):
            run.log(s, train_loss=1.1, lr=0.1)
        run.log(4, val_loss=1.1, val_acc=0.33)
    with Store(db) as st:
        (orig,) = st.runs("orig")
    assert {"n_train": 8, "num_classes": 3}.items() <= hparams_of(orig).items()
    res = batchlab("export", "orig", "--format", "tensorboard", "-o", tmp_path / "tb", "--store", db)
    assert res.returncode == 0, res.stderr
    (back,) = import_tensorboard(str(db), tmp_path / "tb", "back", mapping={}, overrides={})
    with Store(db) as st:
        (back,) = st.runs("back")
    assert back.config == orig.config and back.summary["num_classes"] == 3
    assert "unknown_clocks" not in back.summary


def test_the_import_reads_the_export_s_own_tags_and_file_suffix():
    from batchlab.integrations.names import EXPORT_SUFFIX, EXPORTED_TAGS
    from batchlab.report.tensorboard import FILE_SUFFIX, TAGS

    assert EXPORTED_TAGS == {tag: name for name, tag in TAGS.items()} and EXPORT_SUFFIX == FILE_SUFFIX


def test_epoch_and_examples_counters_place_the_values(tmp_path):
    """'progress/epoch' and 'progress/examples_seen' (as batchlab's export writes them) are not
    metrics: they give the epoch and examples seen of the values at their step."""
    w = SummaryWriter(str(tmp_path / "logs" / "run"))
    for step in (1, 2, 3):
        w.add_scalar("train/loss", 1.0 / step, step)
        w.add_scalar("progress/epoch", step / 2, step)
        w.add_scalar("progress/examples_seen", step * 30, step)
    w.close()
    db = tmp_path / "s.db"
    res = batchlab("import", "tensorboard", tmp_path / "logs", "-e", "c", "--store", db)
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        (rec,) = st.runs("c")
        m = st.metrics(rec.id)
    assert set(m) == {"train_loss"}
    assert m["train_loss"].epoch.tolist() == [0.5, 1.0, 1.5]
    assert m["train_loss"].examples.tolist() == [30, 60, 90]


def test_wall_time_counts_the_work_before_the_first_value(tmp_path):
    """Keras writes epoch 1's values when epoch 1 has ended: 5 epochs 10 s apart took ~50 s,
    not the 40 s between the first and the last event; a per-step log likewise."""
    t0 = 1.7e9
    for split, lag in (("train", 0.0), ("validation", 1.0)):  # validation after training
        w = SummaryWriter(str(tmp_path / "logs" / "bs=32" / split))
        for epoch in range(5):
            w.add_scalar("epoch_loss", 1.0 / (epoch + 1), epoch, walltime=t0 + 10 * (epoch + 1) + lag)
        w.close()
    w = SummaryWriter(str(tmp_path / "logs" / "steps"))
    for step in (2, 4, 6, 8):  # 2 updates per log, 1 s per update
        w.add_scalar("Loss/train", 1.0 / step, step, walltime=t0 + step)
    w.close()
    db = tmp_path / "s.db"
    res = batchlab("import", "tensorboard", tmp_path / "logs", "-e", "k", "--store", db,
                   "--set", "n_train=320", "--set", "batch_size=32")
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        keras, steps = sorted(st.runs("k"), key=lambda r: -r.steps)  # 5 x 10 updates, then 8
        assert keras.wall_time == pytest.approx(50.0) and steps.wall_time == pytest.approx(8.0)
        assert st.metrics(keras.id)["val_loss"].wall_time.tolist() == pytest.approx([10, 20, 30, 40, 50])
        assert st.metrics(steps.id)["train_loss"].wall_time.tolist() == pytest.approx([2, 4, 6, 8])
        assert keras.summary["samples_per_s"] == pytest.approx(5 * 320 / 50)
        assert "unknown_clocks" not in keras.summary and "unknown_clocks" not in steps.summary
