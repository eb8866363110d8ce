"""Remedies for an overfitting run: what applies to its spec, and the early-stopping point."""

from __future__ import annotations

import numpy as np
import pytest

from batchlab.analysis import analyze_experiment
from batchlab.analysis.findings import Finding
from batchlab.analysis.remedies import early_stop, remedies, with_remedies
from batchlab.execute.inline import InlineExecutor
from batchlab.execute.sweep import run_sweep
from batchlab.spec import RunConfig, spec_from_dict
from batchlab.store import Series, Store


def config(data=None, model=None, train=None) -> dict:
    s = spec_from_dict({"data": data or {"name": "digits"}, "model": model or {"name": "mlp"},
                        "train": train or {}})
    return RunConfig(data=s.data, model=s.model, train=s.train).model_dump(mode="json")


def kinds(found) -> list[str]:
    return [r.kind for r in found]


def test_an_unregularised_mlp_on_digits_gets_every_remedy_with_its_spec_changes():
    found = remedies(config(train={"batch_size": 16}), n_train=200)
    assert kinds(found) == ["augmentation", "weight_decay", "dropout", "smaller_model", "more_data"]
    by = {r.kind: r for r in found}
    # digits: a crop with a 1-pixel padding, never a flip (a mirrored digit is another digit)
    assert by["augmentation"].variants == ({"data.augment": ["crop"], "data.crop_padding": 1},)
    assert by["weight_decay"].variants == ({"train.weight_decay": 5e-4}, {"train.weight_decay": 5e-3})
    assert by["dropout"].variants == ({"model.dropout": 0.2}, {"model.dropout": 0.5})
    assert by["smaller_model"].variants == ({"model.hidden": [128, 64]},)
    assert by["more_data"].variants == ({"data.limit": 50}, {"data.limit": 100})
    assert "train.weight_decay is 0" in by["weight_decay"].words


def test_only_the_remedies_a_spec_does_not_have_yet_apply():
    # CIFAR with crop + flip on, weight decay in range, AlexNet's dropout already 0.5
    found = remedies(config({"name": "cifar10", "path": "x", "augment": ["crop", "flip"]},
                            {"name": "alexnet_small"}, {"weight_decay": 5e-4}), n_train=1000)
    assert kinds(found) == ["more_data"]
    # half of what CIFAR allows: only the missing flip is offered, beside the crop already on
    found = remedies(config({"name": "cifar10", "path": "x", "augment": ["crop"]}), None)
    assert found[0].variants == ({"data.augment": ["crop", "flip"]},)
    # signals (mnist1d) have no augmentation here; cnn1d takes no dropout and has no size knob;
    # AdamW's decoupled decay is judged on its own scale
    found = remedies(config({"name": "mnist1d"}, {"name": "cnn1d"},
                            {"optimizer": "adamw", "weight_decay": 0.001}), None)
    assert kinds(found) == ["weight_decay"] and found[0].variants[0] == {"train.weight_decay": 0.01}


def test_a_learning_curve_never_goes_below_one_batch():
    found = remedies(config(train={"batch_size": 64}), n_train=200)
    assert {r.kind: r for r in found}["more_data"].variants == ({"data.limit": 100},)
    assert "more_data" not in kinds(remedies(config(train={"batch_size": 256}), n_train=200))


def test_the_learning_curve_remedy_fits_a_regression():
    """It said a learning curve 'shows whether accuracy still grows' also of a regression, which
    has no accuracy: the words name validation, whatever its metric."""
    regression = config({"name": "npz", "path": "reg.npz", "task": "regression"},
                        train={"batch_size": 64})
    (more,) = [r for r in remedies(regression, n_train=240) if r.kind == "more_data"]
    assert more.words == ("more data: a learning curve over data.limit = 120 (of the 240 training "
                          "examples) shows whether validation still improves with the examples")


def test_a_function_sweep_run_gets_no_weight_decay_for_an_optimizer_it_did_not_use():
    """A function sweep's stored train.optimizer is the spec default ('sgd'): the function
    built its own optimizer, so 'train.weight_decay is 0; try ...' would advise a knob it may
    never read."""
    train = {"function": "mytrain:train", "batch_size": 16}
    found = remedies(config({"name": "custom"}, {"name": "custom"}, train), n_train=200)
    assert "weight_decay" not in kinds(found)
    assert "weight_decay" in kinds(remedies(config(train={"batch_size": 16}), n_train=200))


def series(values, epochs) -> Series:
    v = np.asarray(values, dtype=float)
    return Series(np.arange(len(v)), v, np.asarray(epochs, dtype=float), np.arange(len(v)), np.arange(len(v)))


def test_early_stop_is_the_best_validation_evaluation():
    acc = series([0.1, 0.8, 0.86, 0.84, 0.83], [0, 1, 2, 3, 4])
    assert early_stop({"val_acc": acc}) == (2.0, 0.86, 0.83, "val_acc")
    loss = series([2.3, 0.5, 0.4, 0.6], [0, 1, 2, 3])  # no accuracy: the lowest val loss
    assert early_stop({"val_loss": loss}) == (2.0, 0.4, 0.6, "val_loss")
    assert early_stop({}) is None


def test_with_remedies_changes_only_overfitting_findings():
    other = Finding("not_converged", "not converged", 1, 1.0, {})
    assert with_remedies(other, {}, config(), {"n_train": 100}) is other


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """Two tiny experiments: 60 digits with an MLP for 12 epochs (overfits: train acc 100%,
    val acc ~85%), and the full digits for 2 epochs at a small LR (no overfitting)."""
    path = tmp_path_factory.mktemp("remedies") / "store.db"
    train = {"batch_size": 16, "threads": 1, "checkpoint": False}
    with Store(path) as st:
        for name, limit, epochs, lr in (("overfit", 60, 12, 0.1), ("fits", None, 2, 0.01)):
            data = {"name": "digits", **({"limit": limit} if limit else {})}
            spec = spec_from_dict({"name": name, "data": data, "model": {"name": "mlp", "hidden": [64]},
                                   "train": {**train, "epochs": epochs, "lr": lr}})
            run_sweep(spec, st, InlineExecutor(threads=1))
    return path


def test_an_overfitting_run_is_told_its_early_stopping_point_and_remedies(tiny_store):
    with Store(tiny_store, create=False) as st:
        run = analyze_experiment(st, "overfit").runs[0]
        acc = st.metrics(run.run_id, ["val_acc"])["val_acc"]
    found = next(f for f in run.findings if f.kind == "overfitting")
    best = int(np.argmax(acc.value))
    assert found.numbers["best_epoch"] == acc.epoch[best] < acc.epoch[-1]
    assert found.numbers["best_score"] == acc.value.max() > found.numbers["final_score"] == acc.value[-1]
    assert f"early stopping would have kept epoch {acc.epoch[best]:.3g}: val acc" in found.message
    assert "remedies for this spec: augmentation: crop (crop padding 1 px)" in found.message
    for words in ("weight decay: train.weight_decay is 0", "dropout: mlp's is none",
                  "a smaller model: model.hidden [64] -> [32]", "data.limit = 30 (of the 60"):
        assert words in found.message


def test_a_run_that_does_not_overfit_gets_no_remedies(tiny_store):
    with Store(tiny_store, create=False) as st:
        run = analyze_experiment(st, "fits").runs[0]
    assert run.findings and not any(f.kind == "overfitting" for f in run.findings)
    assert not any("remedies" in f.message or "early stopping" in f.message for f in run.findings)


def test_an_end_that_ties_the_best_says_early_stopping_gains_nothing():
    acc = series([0.1, 0.9, 0.997, 0.99, 0.997], [0, 1, 2, 3, 4])
    found = with_remedies(Finding("overfitting", "overfits from epoch 2: ...", 2, 2.0, {}),
                          {"val_acc": acc}, config({"name": "mnist1d"}, {"name": "lenet5"}), {})
    assert ("early stopping would keep no better score: val acc at the end equals its best "
            "(99.7%, first reached at epoch 2)") in found.message
    assert "dropout: lenet5's is 0.25 and 0.5 by default; try model.dropout = 0.5" in found.message
