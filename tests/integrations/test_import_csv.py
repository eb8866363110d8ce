"""batchlab import csv: Keras CSVLogger files written by a real model.fit become runs whose
values match the files one by one (no tensorboard package needed)."""

import csv
import os
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


def test_a_bad_set_value_exits_2(tmp_path):
    (tmp_path / "good.csv").write_text("epoch,loss\n0,0.5\n")
    res = batchlab("import", "csv", tmp_path / "good.csv", "--set", "batch_size=big",
                   "--store", tmp_path / "s.db")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "'batch_size' = 'big' must be a positive integer" in " ".join(res.stderr.split())
