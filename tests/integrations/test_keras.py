"""The Keras 3 callback on the PyTorch backend: real model.fit runs recorded into a store."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from sklearn.datasets import load_digits  # noqa: E402

import batchlab as bl  # noqa: E402
from batchlab.integrations.keras import BatchlabCallback  # noqa: E402
from batchlab.store import Store  # noqa: E402


def test_per_batch_losses_are_the_batches_own(tmp_path):
    """With LR 0 the weights never move, so each batch's loss is the model's loss on that batch:
    the callback must store exactly those (recovered from Keras's running means), the last,
    partial batch included."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(50, 4)).astype("float32"), rng.integers(0, 3, 50)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    cb = BatchlabCallback("exact", config={"batch_size": 16, "n_train": 50}, store=tmp_path / "s.db")
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, validation_data=(x[:10], y[:10]),
              callbacks=[cb], verbose=0)
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    expected = [float(loss_fn(y[i:i + 16], model.predict(x[i:i + 16], verbose=0)))
                for i in range(0, 50, 16)] * 2
    val_loss = float(loss_fn(y[:10], model.predict(x[:10], verbose=0)))
    with Store(tmp_path / "s.db") as st:
        (rec,) = st.runs("exact")
        m = st.metrics(rec.id)
    assert rec.status == "completed" and rec.steps == 8
    assert m["train_loss"].value == pytest.approx(expected, rel=1e-4)
    assert m["train_loss"].examples.tolist() == [16, 32, 48, 50, 66, 82, 98, 100]
    assert m["lr"].value.tolist() == [0.0] * 8
    assert m["val_loss"].step.tolist() == [4, 8] and m["val_loss"].value == pytest.approx([val_loss] * 2,
                                                                                          rel=1e-5)
    assert m["val_acc"].epoch.tolist() == [1.0, 2.0]
    assert rec.config["train"]["optimizer"] == "sgd" and rec.config["train"]["epochs"] == 2


def test_a_top_k_accuracy_beside_the_accuracy_keeps_its_own_name(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 4)).astype("float32"), rng.integers(0, 3, 40)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2)])
    cb = BatchlabCallback("topk", config={"batch_size": 10, "n_train": 30}, store=tmp_path / "s.db")
    history = model.fit(x, y, batch_size=10, epochs=2, validation_split=0.25, callbacks=[cb],
                        verbose=0).history
    with Store(tmp_path / "s.db") as st:
        (rec,) = st.runs("topk")
        m = st.metrics(rec.id)
    # the top-2 accuracy came after the accuracy in Keras's logs and was stored as val_acc
    assert m["val_acc"].value == pytest.approx(history["val_accuracy"])
    assert m["train_acc"].value == pytest.approx(history["accuracy"])
    top_k = "val_sparse_top_k_categorical_accuracy"
    assert m[top_k].value == pytest.approx(history[top_k])


def test_the_optimizers_float32_lr_is_stored_as_the_decimal_given(tmp_path):
    x, y = np.zeros((20, 4), dtype="float32"), np.zeros(20, dtype="int64")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    cb = BatchlabCallback("lr", config={"batch_size": 10, "n_train": 20}, store=tmp_path / "s.db")
    model.fit(x, y, batch_size=10, epochs=1, callbacks=[cb], verbose=0)
    with Store(tmp_path / "s.db") as st:
        (rec,) = st.runs("lr")
        m = st.metrics(rec.id)
    # Keras holds it as float32: it was stored as 0.009999999776482582, apart from lr=0.01
    assert rec.config["train"]["lr"] == rec.summary["effective_lr"] == 0.01
    assert m["lr"].value.tolist() == [0.01, 0.01]


def lenet(classes: int = 10) -> "keras.Model":
    """The blog study's LeNet: conv32-conv64-maxpool-dropout-fc128-dropout-fc."""
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Dropout(0.25),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(classes, activation="softmax"),
    ], name="lenet")


def test_lenet_on_digits_at_two_batch_sizes_then_report(tmp_path):
    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")[..., None]
    y = digits.target
    x_train, y_train, x_val, y_val = x[:1200], y[:1200], x[1200:], y[1200:]
    db = tmp_path / "s.db"
    for batch_size in (16, 64):
        keras.utils.set_random_seed(0)
        model = lenet()
        model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        cb = BatchlabCallback("lenet-digits", store=db,
                              config={"batch_size": batch_size, "n_train": 1200, "num_classes": 10,
                                      "data": "digits"})
        with cb:
            model.fit(x_train, y_train, batch_size=batch_size, epochs=2,
                      validation_data=(x_val, y_val), callbacks=[cb], verbose=0)
    with Store(db) as st:
        runs = st.runs("lenet-digits")
        assert [r.config["train"]["batch_size"] for r in runs] == [16, 64]
        for rec in runs:
            m = st.metrics(rec.id)
            steps = 2 * math.ceil(1200 / rec.config["train"]["batch_size"])
            assert rec.status == "completed" and rec.steps == steps == len(m["train_loss"].step)
            assert m["lr"].value == pytest.approx([0.05] * steps)
            assert m["val_acc"].epoch.tolist() == [1.0, 2.0] and rec.summary["best_val_acc"] > 0.5
            assert rec.config["model"]["name"] == "lenet" and rec.config["train"]["lr"] == pytest.approx(0.05)
    res = subprocess.run([sys.executable, "-m", "batchlab", "report", "lenet-digits", "--store", db,
                          "-o", tmp_path / "r.html"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    html = (tmp_path / "r.html").read_text()
    assert "batch sizes [16, 64]" in html and "data digits, model lenet, optimizer sgd" in html


def test_a_crash_inside_fit_marks_the_run_failed(tmp_path):
    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 2:
                raise RuntimeError("disk on fire")

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.ones((40, 4), "float32"), np.zeros(40, int)
    with pytest.raises(RuntimeError, match="disk on fire"):
        with BatchlabCallback("crash", config={"batch_size": 8}, store=tmp_path / "s.db") as cb:
            model.fit(x, y, batch_size=8, epochs=1, callbacks=[cb, Boom()], verbose=0)
    with Store(tmp_path / "s.db") as st:
        (rec,) = st.runs("crash")
        assert rec.status == "failed" and rec.error == "RuntimeError: disk on fire"
        assert st.metrics(rec.id)["train_loss"].step.tolist() == [1, 2, 3]


def test_a_config_that_is_not_a_dict_is_refused_when_the_callback_is_made():
    # not at on_train_begin inside model.fit, with a traceback naming neither config nor the fix
    with pytest.raises(bl.BatchlabError, match=r"BatchlabCallback: config=16 \(int\) is not a dict"):
        BatchlabCallback("x", config=16)
