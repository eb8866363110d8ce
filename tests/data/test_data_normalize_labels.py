"""Normalisation per feature / per channel (issue 9 item 1) and .npz labels that are not
0..K-1 (issue 9 item 6): negative ({-1, 1}), one-hot and single-class labels too."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batchlab.data import load_dataset
from batchlab.data.split import normalize
from batchlab.errors import DataError
from batchlab.spec import DataSpec


def test_flat_features_are_standardised_one_by_one():
    # three features in unrelated units, like the wine set's alcohol %, hue and proline mg/L
    rng = np.random.default_rng(0)
    x = np.stack([rng.normal(13, 0.8, 200), rng.normal(1, 0.2, 200), rng.normal(750, 300, 200)], 1)
    train, val = normalize(torch.tensor(x[:150], dtype=torch.float32),
                           torch.tensor(x[150:], dtype=torch.float32))
    assert torch.allclose(train.mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(train.std(0, correction=0), torch.ones(3), atol=1e-4)
    # validation uses the training statistics: close to, not exactly, 0/1
    assert val.mean(0).abs().max() < 0.5 and 0.5 < val.std(0).min() and val.std(0).max() < 1.5


def test_images_and_signals_are_standardised_per_channel():
    x = torch.randn(64, 2, 5, 5) * torch.tensor([1.0, 50.0]).view(1, 2, 1, 1) + 7
    train, _ = normalize(x.clone(), x[:4].clone())
    per_channel = train.transpose(0, 1).reshape(2, -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(2), atol=1e-4)
    assert torch.allclose(per_channel.std(1, correction=0), torch.ones(2), atol=1e-4)
    signal = torch.randn(64, 3, 40) * torch.tensor([1.0, 10.0, 0.1]).view(1, 3, 1)
    train, _ = normalize(signal.clone(), signal[:4].clone())
    assert torch.allclose(train.transpose(0, 1).reshape(3, -1).std(1, correction=0), torch.ones(3),
                          atol=1e-4)
    # positions within a channel keep their relative differences (no per-pixel standardising)
    assert not torch.allclose(train.std(0, correction=0), torch.ones(3, 40), atol=0.05)


def test_npz_flat_data_loads_per_feature_normalised(tmp_path):
    rng = np.random.default_rng(1)
    x = np.stack([rng.normal(0, 0.01, 120), rng.normal(500, 100, 120)], 1)
    np.savez(tmp_path / "t.npz", x=x, y=np.arange(120) % 2)
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz")))
    assert torch.allclose(ds.train_x.std(0, correction=0), torch.ones(2), atol=1e-4)


def test_npz_labels_not_starting_at_zero_are_remapped_and_said(tmp_path):
    x = np.random.default_rng(2).normal(size=(40, 4))
    y = np.where(np.arange(40) % 2 == 0, 3, 7)
    np.savez(tmp_path / "t.npz", x=x, y=y, x_test=x[:10], y_test=y[:10])
    for validation in ("split", "test"):
        ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz"), validation=validation))
        assert ds.num_classes == 2  # not an 8-class output layer with six classes never seen
        assert set(ds.train_y.tolist()) == {0, 1} and set(ds.val_y.tolist()) <= {0, 1}
        assert len(ds.notes) == 1 and "3->0, 7->1" in ds.notes[0] and "t.npz" in ds.notes[0]


def test_npz_test_labels_share_the_mapping(tmp_path):
    x = np.zeros((6, 2))
    np.savez(tmp_path / "t.npz", x=x, y=[2, 2, 5, 5, 2, 5], x_test=x[:3], y_test=[9, 5, 2])
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz"), validation="test",
                               normalize=False))
    assert ds.num_classes == 3 and ds.val_y.tolist() == [2, 1, 0]


@pytest.mark.parametrize("labels", [[0, 1, 2, 1], [1, 0, 0, 1]])
def test_npz_labels_already_0_to_k_are_kept_silently(tmp_path, labels):
    np.savez(tmp_path / "t.npz", x=np.zeros((20, 2)), y=labels * 5)
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz"), normalize=False))
    assert ds.num_classes == max(labels) + 1 and ds.notes == ()


@pytest.mark.parametrize("labels, mapping", [([-1, 1], "-1->0, 1->1"),
                                             ([-1, 0, 1], "-1->0, 0->1, 1->2")])
def test_npz_negative_labels_are_remapped_like_any_other(tmp_path, labels, mapping):
    # {-1, 1} is the most common binary encoding (SVMs, perceptrons)
    y = np.array(labels * 10)
    np.savez(tmp_path / "t.npz", x=np.random.default_rng(0).normal(size=(len(y), 3)), y=y,
             x_test=np.zeros((len(labels), 3)), y_test=np.array(labels))
    for validation in ("split", "test"):
        ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz"), validation=validation))
        assert ds.num_classes == len(labels)
        assert set(ds.train_y.tolist()) == set(range(len(labels)))
        assert set(ds.val_y.tolist()) <= set(range(len(labels)))
        assert len(ds.notes) == 1 and mapping in ds.notes[0] and "smallest -1" in ds.notes[0]


@pytest.mark.parametrize("task", ["auto", "classification"])
def test_npz_integer_one_hot_labels_are_read_as_their_index(tmp_path, task):
    y = np.array([0, 2, 1, 2, 0, 1] * 5)
    np.savez(tmp_path / "t.npz", x=np.zeros((30, 2)), y=np.eye(3, dtype=np.int64)[y])
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz"), task=task,
                               val_fraction=0.2, normalize=False))
    assert ds.num_classes == 3 and ds.train_y.ndim == 1 and ds.train_y.dtype == torch.int64
    assert sorted(ds.train_y.tolist() + ds.val_y.tolist()) == sorted(y.tolist())
    (note,) = ds.notes
    assert "'y' is one-hot (30 x 3" in note and "y.argmax(1)" in note and "t.npz" in note


def test_npz_one_hot_is_a_regression_when_asked_and_other_2d_integers_still_are(tmp_path):
    onehot = np.eye(3, dtype=np.int64)[np.arange(30) % 3]
    np.savez(tmp_path / "a.npz", x=np.zeros((30, 2)), y=onehot)
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "a.npz"), task="regression"))
    assert ds.num_classes == 0 and ds.train_y.shape[1:] == (3,)
    np.savez(tmp_path / "b.npz", x=np.zeros((30, 2)), y=onehot * 2)  # counts, not one-hot
    assert load_dataset(DataSpec(name="npz", path=str(tmp_path / "b.npz"))).num_classes == 0


@pytest.mark.parametrize("label", [0, 4, -1])
def test_npz_with_a_single_class_is_refused(tmp_path, label):
    np.savez(tmp_path / "t.npz", x=np.random.default_rng(0).normal(size=(50, 3)),
             y=np.full(50, label))
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(name="npz", path=str(tmp_path / "t.npz")))
    text = str(err.value)
    assert "\n" not in text and "t.npz" in text
    assert f"single class (every label is {label})" in text and "at least 2 classes" in text
    assert "data.task = 'regression'" in text


def test_npz_keras_style_label_column_is_refused_not_fitted_as_a_regression(tmp_path):
    # keras.datasets.cifar10.load_data() gives y of shape (N, 1) uint8: class labels
    y = (np.arange(30) % 3).astype(np.uint8)[:, None]
    np.savez(tmp_path / "k.npz", x=np.random.default_rng(0).normal(size=(30, 4)), y=y)
    for task in ("auto", "classification"):
        with pytest.raises(DataError) as err:
            load_dataset(DataSpec(name="npz", path=str(tmp_path / "k.npz"), task=task))
        text = str(err.value)
        assert "\n" not in text and "'y' in '" in text and "shape (30, 1)" in text
        assert "save y.reshape(-1)" in text and "data.task = 'regression'" in text
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "k.npz"), task="regression"))
    assert ds.num_classes == 0 and ds.train_y.shape[1:] == (1,)  # asked for: values to fit


def test_npz_channels_last_images_and_float_one_hot_get_a_note(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    np.savez(tmp_path / "c.npz", x=rng.integers(0, 255, (30, 8, 8, 3)).astype(np.uint8),
             y=np.eye(3, dtype=np.float32)[labels])  # Keras's to_categorical: float one-hot
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "c.npz")))
    assert ds.num_classes == 0 and ds.input_shape == (8, 8, 3)  # as saved: notes, no guessing
    text = " ".join(ds.notes)
    assert "looks like channels-last images (N, H, W, C)" in text
    assert "save x.transpose(0, 3, 1, 2)" in text
    assert "'y' is float one-hot (30 x 3, one 1 per row)" in text and "save y.argmax(1)" in text
    np.savez(tmp_path / "n.npz", x=rng.normal(size=(30, 3, 8, 8)), y=labels)  # channels first
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "n.npz")))
    assert ds.num_classes == 3 and ds.notes == ()


def test_npz_class_names_and_pandas_objects_are_refused_with_how_to_number_them(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3))
    np.savez(tmp_path / "s.npz", x=x, y=np.array(["cat", "dog"] * 10))
    np.savez(tmp_path / "o.npz", x=x, y=np.array(["cat", "dog"] * 10, dtype=object))  # pandas' .values
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(name="npz", path=str(tmp_path / "s.npz")))
    text = str(err.value)
    assert "'y' in '" in text and "holds strings (<U3, e.g. 'cat'), not integer class labels" in text
    assert "names, y = np.unique(y, return_inverse=True)" in text
    with pytest.raises(DataError) as err:
        load_dataset(DataSpec(name="npz", path=str(tmp_path / "o.npz")))
    text = str(err.value)
    assert "array 'y' in '" in text and "holds Python objects (dtype object" in text
    assert "names, y = np.unique(y, return_inverse=True)" in text and "\n" not in text
