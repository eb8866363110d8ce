"""Normalisation per feature / per channel (issue 9 item 1) and .npz labels that are not
0..K-1 (issue 9 item 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batchlab.data import load_dataset
from batchlab.data.split import normalize
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
