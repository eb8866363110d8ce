"""batchlab import csv: Keras CSVLogger files written by a real model.fit become runs whose
values match the files one by one (no tensorboard package needed)."""

import csv
import os
import re
import subprocess
import sys

import pytest

from batchlab.store import Store


def batchlab(*args):
    return subprocess.run([sys.executable, "-m", "batchlab", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def keras_csv(tmp_path, batch_size):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = (d.data / 16).astype("float32"), d.target
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    path = tmp_path / f"digits-bs={batch_size}.csv"
    model.fit(x[:1000], y[:1000], batch_size=batch_size, epochs=3, validation_data=(x[1000:], y[1000:]),
              callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.5 ** epoch),
                         keras.callbacks.CSVLogger(str(path))], verbose=0)
    return path


def test_keras_csvlogger_files_import_value_by_value(tmp_path):
    paths = [keras_csv(tmp_path, bs) for bs in (16, 64)]
    db = tmp_path / "s.db"
    res = batchlab("import", "csv", *paths, "-e", "csvs", "--store", db, "--set", "n_train=1000",
                   "--set", "train.lr=0.001")
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        runs = st.runs("csvs")
        assert [r.config["train"]["batch_size"] for r in runs] == [16, 64]
        for path, rec in zip(paths, runs, strict=True):
            rows = list(csv.DictReader(open(path)))
            m = st.metrics(rec.id)
            spe = -(-1000 // rec.config["train"]["batch_size"])
            assert m["train_loss"].step.tolist() == [spe, 2 * spe, 3 * spe]
            assert m["train_loss"].examples.tolist() == [1000, 2000, 3000]
            for column, name in (("loss", "train_loss"), ("accuracy", "train_acc"),
                                 ("val_loss", "val_loss"), ("val_accuracy", "val_acc")):
                assert m[name].value.tolist() == [float(r[column]) for r in rows]
            lr_col = "learning_rate" if "learning_rate" in rows[0] else "lr"
            assert m["lr"].value.tolist() == [float(r[lr_col]) for r in rows]
            assert m["lr"].value == pytest.approx([1e-3, 5e-4, 2.5e-4])
            assert rec.config["train"]["lr"] == 0.001 and rec.config["data"]["n_train"] == 1000
            assert rec.status == "completed" and rec.summary["best_val_acc"] == max(
                float(r["val_accuracy"]) for r in rows)
    res = batchlab("report", "csvs", "--store", db, "-o", tmp_path / "r.html")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("setting, words", [
    ("batch_size=big", "--set batch_size=big must be a whole number >= 1"),
    ("n_train=abc", "--set n_train=abc must be a whole number >= 1"),
    ("lr=-1", "--set lr=-1 must be a finite number >= 0"),
    ("lr=inf", "--set lr=inf must be a finite number >= 0"),
])
def test_a_bad_set_value_exits_2_in_the_command_line_s_words(tmp_path, setting, words):
    (tmp_path / "good.csv").write_text("epoch,loss\n0,0.5\n")
    (tmp_path / "also.csv").write_text("epoch,loss\n0,0.4\n")
    db = tmp_path / "s.db"
    res = batchlab("import", "csv", tmp_path / "good.csv", tmp_path / "also.csv", "--set", setting,
                   "--store", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    text = " ".join(res.stderr.split())
    assert words in text and "Nothing was imported" in text and "bl.track" not in text
    assert not db.exists()  # not even an empty store file


def test_a_bad_value_in_a_file_name_is_refused_before_any_file_is_stored(tmp_path):
    (tmp_path / "good.csv").write_text("epoch,loss\n0,0.5\n")
    (tmp_path / "n_train=abc.csv").write_text("epoch,loss\n0,0.5\n")
    db = tmp_path / "s.db"
    res = batchlab("import", "csv", tmp_path / "good.csv", tmp_path / "n_train=abc.csv", "--store", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "n_train = 'abc', read from its name or log, must be a whole number >= 1" in \
        " ".join(res.stderr.split())
    assert not db.exists()  # not even the good file's run, nor an empty store file


def test_a_logged_lr_column_gives_the_run_its_lr_and_says_so(tmp_path):
    # a Keras CSVLogger file with a LearningRateScheduler: lr is a column, not in the name
    path = tmp_path / "bs=16.csv"
    path.write_text("epoch,accuracy,loss,lr,val_accuracy,val_loss\n0,0.5,1.0,0.05,0.4,1.1\n"
                    "1,0.6,0.9,0.05,0.5,1.0\n2,0.7,0.8,0.005,0.55,0.95\n")
    db = tmp_path / "s.db"
    res = batchlab("import", "csv", path, "-e", "k", "--store", db)
    assert res.returncode == 0, res.stderr
    text = " ".join(res.stdout.split())
    assert "bs=16.csv: lr 0.05, the first value of its logged lr; it ends at 0.005" in text
    assert "no lr in its name" not in text and "no batch_size" not in text
    with Store(db) as st:
        (run,) = st.runs("k")
        assert run.config["train"]["lr"] == 0.05 and run.config["train"]["batch_size"] == 16
        assert st.metrics(run.id)["lr"].value.tolist() == [0.05, 0.05, 0.005]
    listed = batchlab("ls", "k", "--store", db)
    assert re.search(r"│ 16\s+│ 0\.05\s+│", listed.stdout)
    # a name, hparams or --set still wins over the log
    res = batchlab("import", "csv", path, "-e", "k", "--set", "lr=0.3", "--store", db)
    assert res.returncode == 0 and "first value of its logged lr" not in res.stdout
    with Store(db) as st:
        assert st.runs("k")[0].config["train"]["lr"] == 0.3


# metrics.csv and hparams.yaml as Lightning 2's CSVLogger wrote them for a 2-epoch fit (96
# examples, batch 16: 6 updates per epoch; log_every_n_steps=2, LearningRateMonitor)
LIGHTNING_METRICS = """\
epoch,lr-SGD,step,train_acc,train_loss,val_acc,val_loss
,0.1,0,,,,
,0.1,1,,,,
0,,1,0.5,0.7402362823486328,,
,0.1,3,,,,
0,,3,0.625,0.6992635130882263,,
,0.1,5,,,,
0,,5,0.5,0.8890550136566162,,
0,,5,,,0.71875,0.5983431339263916
,0.1,6,,,,
,0.1,7,,,,
1,,7,0.8125,0.567151665687561,,
,0.1,9,,,,
1,,9,0.6875,0.568301260471344,,
,0.1,11,,,,
1,,11,0.625,0.7004871368408203,,
1,,11,,,0.84375,0.49226754903793335
"""


def lightning_log(tmp_path, folder="digits", hparams="batch_size: 16\nlr: 0.1\n"):
    version = tmp_path / "logs" / folder / "version_0"
    version.mkdir(parents=True)
    (version / "metrics.csv").write_text(LIGHTNING_METRICS)
    if hparams:
        (version / "hparams.yaml").write_text(hparams)
    return version / "metrics.csv"


def test_lightning_csvlogger_metrics_import_with_their_sparse_rows(tmp_path):
    path = lightning_log(tmp_path)
    out = batchlab("import", "csv", path, "-e", "lt", "--store", tmp_path / "s.db")
    assert out.returncode == 0, out.stderr
    assert "note:" not in out.stdout  # every column mapped, batch size and LR from hparams.yaml
    with Store(tmp_path / "s.db") as st:
        (run,) = st.runs("lt")
        assert run.status == "completed" and run.steps == 12
        assert run.config["train"]["batch_size"] == 16 and run.config["train"]["lr"] == 0.1
        m = st.metrics(run.id)
    # Lightning's step k is the (k+1)-th update; epochs from 6 updates per epoch
    assert m["val_acc"].step.tolist() == [6, 12] and m["val_acc"].epoch.tolist() == [1.0, 2.0]
    assert m["val_loss"].value.tolist() == [0.5983431339263916, 0.49226754903793335]
    assert m["train_loss"].step.tolist() == [2, 4, 6, 8, 10, 12]
    assert m["train_acc"].value.tolist() == [0.5, 0.625, 0.5, 0.8125, 0.6875, 0.625]
    assert m["lr"].step.tolist() == [1, 2, 4, 6, 7, 8, 10, 12] and set(m["lr"].value) == {0.1}


def test_a_top_k_accuracy_column_keeps_its_own_name_beside_the_accuracy(tmp_path):
    from batchlab.integrations.csvlog import import_csvlogs

    path = tmp_path / "bs=16_lr=0.1.csv"  # a CSVLogger's columns with a SparseTopKCategoricalAccuracy
    path.write_text("epoch,accuracy,loss,sparse_top_k_categorical_accuracy,val_accuracy,val_loss,"
                    "val_sparse_top_k_categorical_accuracy\n0,0.3,1.2,0.7,0.25,1.3,0.65\n"
                    "1,0.4,1.1,0.8,0.35,1.2,0.75\n")
    notes: list[str] = []
    (run,) = import_csvlogs(tmp_path / "s.db", [path], "topk", mapping={},
                            overrides={"n_train": 64}, notes=notes)
    with Store(tmp_path / "s.db") as st:
        m = st.metrics(run.id)
    # both columns of each pair went into one series: the top-k values stored as the accuracy
    assert m["val_acc"].value.tolist() == [0.25, 0.35] and m["train_acc"].value.tolist() == [0.3, 0.4]
    assert m["val_sparse_top_k_categorical_accuracy"].value.tolist() == [0.65, 0.75]
    assert m["sparse_top_k_categorical_accuracy"].value.tolist() == [0.7, 0.8]
    assert any("kept under their own names" in n and "val_sparse_top_k" in n for n in notes)


def test_a_lightning_step_value_is_the_train_loss_and_its_epoch_mean_keeps_its_name(tmp_path):
    from batchlab.integrations.csvlog import import_csvlogs

    folder = tmp_path / "version_0"  # self.log("train_loss", loss, on_step=True, on_epoch=True)
    folder.mkdir()
    (folder / "metrics.csv").write_text(
        "epoch,step,train_loss_epoch,train_loss_step,val_loss\n0,0,,1.0,\n0,1,,0.8,\n0,1,,,0.7\n"
        "0,1,0.9,,\n1,2,,0.6,\n1,3,,0.5,\n1,3,,,0.55\n1,3,0.55,,\n")
    (run,) = import_csvlogs(tmp_path / "s.db", [folder / "metrics.csv"], "lt", mapping={},
                            overrides={"batch_size": 16, "lr": 0.1})
    with Store(tmp_path / "s.db") as st:
        m = st.metrics(run.id)
    # both columns were one train_loss series: the epoch means replaced steps 2 and 4's losses
    assert m["train_loss"].value.tolist() == [1.0, 0.8, 0.6, 0.5]
    assert m["train_loss_epoch"].step.tolist() == [2, 4] and m["val_loss"].step.tolist() == [2, 4]


def test_imports_say_what_they_dropped_left_unmapped_or_lack(tmp_path):
    path = tmp_path / "run-a.csv"  # a Keras file with a column batchlab has no name for
    path.write_text("epoch,loss,f1,val_loss,grad_norm\n0,1.0,0.5,1.1,3\n1,0.8,0.6,0.9,2\n")
    out = batchlab("import", "csv", path, "--map", "grad_norm=", "--store", tmp_path / "s.db")
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "dropped grad_norm" in text
    assert "kept under their own names, which the report and the diagnosis do not read: f1" in text
    assert "no batch_size or lr in its name" in text and "--set batch_size=32 --set lr=0.1" in text


@pytest.mark.parametrize("name, config", [
    ("bs=16_lr=0.1", {"batch_size": 16, "lr": 0.1}),
    ("run,lr=1e-3,opt=adam", {"lr": 0.001, "optimizer": "adam"}),
    ("opt=adam_lr=0.1", {"optimizer": "adam", "lr": 0.1}),
    ("lenet_bs=16-lr=0.01", {"batch_size": 16, "lr": 0.01}),
    ("LeNet-MNIST-2-BatchSize=16", {"batch_size": 16}),
])
def test_key_value_parts_of_names_whatever_separates_them(name, config):
    from batchlab.integrations.importing import config_from_name

    assert config_from_name(name) == config


def keras_pair(tmp_path):
    """Two Keras CSVLogger files (no time column: Keras logs none); val acc 0.5, 0.7, 0.92 at
    batch 16 and 0.6, 0.8, 0.95 at batch 64, so both reach the default target 0.95 x 0.95."""
    paths = []
    for bs, accs in ((16, (0.5, 0.7, 0.92)), (64, (0.6, 0.8, 0.95))):
        rows = "".join(f"{e},{a},{1 - a},{a},{1.1 - a},0.01\n" for e, a in enumerate(accs))
        path = tmp_path / f"bs={bs}_lr=0.01.csv"
        path.write_text("epoch,accuracy,loss,val_accuracy,val_loss,lr\n" + rows)
        paths.append(path)
    return paths


def test_a_log_without_times_gives_no_wall_time_and_no_seconds_in_the_report(tmp_path):
    from batchlab.analysis import analyze_experiment

    db = tmp_path / "s.db"
    res = batchlab("import", "csv", *keras_pair(tmp_path), "-e", "kn", "--store", db, "--set", "n_train=1000")
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        runs = st.runs("kn")
        for run in runs:  # not the time the import took to read the file
            assert run.wall_time is None and "samples_per_s" not in run.summary
            assert run.summary["unknown_clocks"] == ["wall_time"]
            assert set(st.metrics(run.id)["val_acc"].wall_time) == {0.0}
        a = analyze_experiment(st, "kn")
    # target 0.9025: batch 64 between epochs 2 (0.8) and 3 (0.95), 16 updates per epoch
    assert a.target == pytest.approx(0.9025)
    rows = {r["batch_size"]: r for r in a.to_target_by_batch}
    assert rows[64]["wall_time"] is None and rows[16]["wall_time"] is None
    assert rows[64]["steps"] == pytest.approx(32 + 16 * 0.1025 / 0.15)
    assert rows[16]["examples"] == pytest.approx(2000 + 1000 * 0.2025 / 0.22)
    assert a.answer.score == "Best val acc 95% (1 seed); it reaches the target (val acc 90.2%) in 43 steps."
    said = " ".join([*a.answer.sentences(), *a.conclusions,
                     *(d for points in a.answer.groups.values() for p in points for d in p.details)])
    assert not re.search(r"\d s\b|wall time:|nan", said), said
    assert "Batch 16, 64 reach the target; the logs hold no wall times to say which is first." in said
    assert "fewest examples: batch 64 (2,683 examples, 2.68 epochs)" in said
    listed = batchlab("ls", "kn", "--store", db)
    assert re.search(r"│ 0\.95\s+│ -\s+│", listed.stdout), listed.stdout  # time s: '-'
    shown = batchlab("show", runs[1].id, "--store", db)
    assert shown.returncode == 0 and "samples_per_s" not in shown.stdout and "wall time" not in shown.stdout


def test_without_n_train_no_examples_or_steps_are_claimed(tmp_path):
    from batchlab.analysis import analyze_experiment

    db = tmp_path / "s.db"
    assert batchlab("import", "csv", *keras_pair(tmp_path), "-e", "kn", "--store", db).returncode == 0
    with Store(db) as st:
        unknown = [r.summary["unknown_clocks"] for r in st.runs("kn")]
        assert unknown == [["examples", "steps", "wall_time"]] * 2
        a = analyze_experiment(st, "kn")
    rows = {r["batch_size"]: r for r in a.to_target_by_batch}
    assert [rows[64][c] for c in ("steps", "examples", "wall_time")] == [None] * 3
    assert rows[64]["epochs"] == pytest.approx(2 + 0.1025 / 0.15)
    said = " ".join([*a.answer.sentences(), *a.conclusions])
    assert not re.search(r"[\d)] (s|steps|examples)\b", said), said
    assert "fewest epochs to target: batch 64 (2.68 epochs)." in a.conclusions
    assert a.answer.score == "Best val acc 95% (1 seed); it reaches the target (val acc 90.2%)."


def test_excel_and_pandas_variants_of_a_keras_csv_import_like_the_original(tmp_path):
    rows = [["epoch", "loss", "accuracy"], ["0", "0.5", "0.7"], ["1", "0.25", "0.8"]]
    variants = {
        "bom.csv": "\ufeff" + "\r\n".join(",".join(r) for r in rows),  # saved again by Excel
        "semicolons.csv": "\n".join(";".join(r) for r in rows),  # CSVLogger(separator=";")
        "tabs.csv": "\n".join("\t".join(r) for r in rows),
        "pandas.csv": "\n".join(",".join([str(i - 1) if i else "", *r]) for i, r in enumerate(rows)),
    }
    for name, text in variants.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    db = tmp_path / "s.db"
    res = batchlab("import", "csv", *(tmp_path / n for n in variants), "-e", "v", "--store", db)
    assert res.returncode == 0, res.stderr
    with Store(db) as st:
        runs = st.runs("v")
        assert len(runs) == 4
        for rec in runs:
            m = st.metrics(rec.id)
            assert sorted(m) == ["train_acc", "train_loss"], rec.environment  # no '' column
            assert m["train_loss"].value.tolist() == [0.5, 0.25]
            assert m["train_acc"].value.tolist() == pytest.approx([0.7, 0.8])
