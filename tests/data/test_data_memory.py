"""In-memory data for the Python API: arrays, tensors and Datasets in; a Dataset out."""

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from batchlab.data import load_dataset
from batchlab.data.memory import InMemoryData
from batchlab.errors import DataError
from batchlab.spec import DataSpec


def arrays(n=50):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype(np.float64), rng.integers(0, 4, size=n)


def test_numpy_tensor_and_dataset_give_the_same_content():
    x, y = arrays()
    a = InMemoryData.from_objects((x, y))
    b = InMemoryData.from_objects((torch.tensor(x), torch.tensor(y)))
    c = InMemoryData.from_objects(TensorDataset(torch.tensor(x), torch.tensor(y)))
    assert a.train_x.dtype == torch.float32 and a.train_y.dtype == torch.int64
    assert a.fingerprint() == b.fingerprint() == c.fingerprint()
    assert a.num_classes() == int(y.max()) + 1


def test_fingerprint_follows_the_content():
    x, y = arrays()
    base = InMemoryData.from_objects((x, y)).fingerprint()
    x2 = x.copy()
    x2[0, 0] += 1
    assert InMemoryData.from_objects((x2, y)).fingerprint() != base
    assert InMemoryData.from_objects((x, y), (x[:5], y[:5])).fingerprint() != base


def test_split_limit_and_caller_arrays_untouched():
    x, y = arrays(100)
    data = InMemoryData.from_objects((x, y))
    ds = data.dataset(data.spec(val_fraction=0.25, limit=40, normalize=True))
    assert (len(ds.train_y), len(ds.val_y)) == (40, 25)
    assert abs(float(ds.train_x.mean())) < 1e-5  # normalised on train statistics
    assert np.array_equal(data.train_x.numpy(), x.astype(np.float32))  # ours is a copy


def test_float_targets_are_a_regression():
    x, _ = arrays()
    data = InMemoryData.from_objects((x, x[:, :1]))
    assert not data.classification and data.num_classes() == 0
    ds = data.dataset(data.spec())
    assert ds.num_classes == 0 and "regression" in ds.description


@pytest.mark.parametrize("bad, words", [
    ((np.zeros((5, 2)), np.zeros(4)), "same first dimension"),
    ("not data", "pass (x, y) tensors"),
    ((np.zeros((0, 2)), np.zeros(0)), "no examples"),
])
def test_bad_inputs_say_what_to_fix(bad, words):
    with pytest.raises(DataError, match="train") as err:
        InMemoryData.from_objects(bad)
    assert words in str(err.value)


def test_a_dict_of_arrays_is_refused_with_the_tuple_to_pass():
    x, y = arrays()
    with pytest.raises(DataError) as err:
        InMemoryData.from_objects({"x": x, "y": y})
    assert str(err.value).startswith("train is a dict (keys 'x', 'y'); pass (x, y) tensors or "
                                     "numpy arrays as a tuple, e.g. train=(d['x'], d['y'])")


def test_a_dataset_of_pil_images_is_told_to_add_to_tensor():
    datasets = pytest.importorskip("torchvision.datasets")
    transforms = pytest.importorskip("torchvision.transforms")
    with pytest.raises(DataError) as err:
        InMemoryData.from_objects(datasets.FakeData(size=4, image_size=(3, 8, 8)))
    assert "train[0] input is a PIL image" in str(err.value)
    assert "transform=torchvision.transforms.ToTensor()" in str(err.value)
    fixed = InMemoryData.from_objects(datasets.FakeData(size=4, image_size=(3, 8, 8),
                                                        transform=transforms.ToTensor()))
    assert tuple(fixed.train_x.shape) == (4, 3, 8, 8)


def test_val_in_another_layout_is_refused():
    x, y = arrays()
    with pytest.raises(DataError, match="same layout"):
        InMemoryData.from_objects((x, y), (x[:, :2], y))


def test_a_spec_file_cannot_name_memory_data():
    with pytest.raises(DataError, match="Python API"):
        load_dataset(DataSpec(name="memory", path="memory:abc"))


@pytest.mark.parametrize("labels, k", [([-1, 1], 2), ([-1, 0, 1], 3), ([3, 7], 2)])
def test_labels_not_0_to_k_are_remapped_as_in_a_file(labels, k):
    x, _ = arrays(60)
    y = np.resize(labels, 60)
    data = InMemoryData.from_objects((x, y), (x[:4], y[:4]))
    assert data.num_classes() == k and set(data.train_y.tolist()) == set(range(k))
    assert data.val_y.tolist() == np.resize(range(k), 4).tolist()  # the same mapping
    (note,) = data.notes
    assert note.startswith("train with val: the labels are not 0..K-1") and "->0" in note
    ds = data.dataset(data.spec())
    assert ds.num_classes == k and ds.notes == data.notes
    assert set(ds.train_y.tolist()) <= set(range(k))


def test_labels_already_0_to_k_are_kept_without_a_note():
    x, y = arrays()
    data = InMemoryData.from_objects((x, y))
    assert torch.equal(data.train_y, torch.as_tensor(y)) and data.notes == ()


def test_integer_one_hot_labels_are_read_as_their_index():
    x, y = arrays()
    data = InMemoryData.from_objects((x, np.eye(4, dtype=np.int64)[y]))
    assert data.train_y.tolist() == y.tolist() and data.num_classes() == 4
    assert "one-hot (50 x 4" in data.notes[0] and "y.argmax(1)" in data.notes[0]
    assert data.fingerprint() == InMemoryData.from_objects((x, y)).fingerprint()


@pytest.mark.parametrize("targets, words", [
    (np.zeros((50, 1), np.int64), "pass y.reshape(-1)"),
    (np.ones((50, 3), np.int64), "nor one-hot"),
])
def test_other_integer_2d_targets_are_refused(targets, words):
    x, _ = arrays()
    with pytest.raises(DataError) as err:
        InMemoryData.from_objects((x, targets))
    assert words in str(err.value) and f"shape {targets.shape}" in str(err.value)


def test_a_single_class_is_refused():
    x, _ = arrays()
    with pytest.raises(DataError) as err:
        InMemoryData.from_objects((x, np.full(50, 2)))
    text = str(err.value)
    assert "train has a single class (every label is 2)" in text
    assert "at least 2 classes" in text and "float targets" in text


@pytest.mark.parametrize("part", ["inputs", "targets"])
def test_nan_or_inf_in_the_arrays_is_refused_naming_the_rows(part):
    x, y = arrays()
    y = y.astype(np.float32)  # float targets: a regression, which NaN targets would poison too
    (x if part == "inputs" else y)[[3, 7]] = [np.nan, np.inf] if part == "targets" else np.nan
    tx, ty = torch.tensor(x), torch.tensor(y)
    for train in ((x, y), (tx, ty), TensorDataset(tx, ty)):
        with pytest.raises(DataError) as err:
            InMemoryData.from_objects(train)
        text = str(err.value)
        assert f"train's {part} hold NaN or infinite values in 2 of 50 rows (rows 3, 7)" in text
    with pytest.raises(DataError, match=r"val's inputs hold NaN.*\(rows 0\)"):
        x_ok, y_ok = arrays()
        bad = x_ok.copy()
        bad[0, 1] = np.nan
        InMemoryData.from_objects((x_ok, y_ok), val=(bad, y_ok))


@pytest.mark.parametrize("dtype", ["U", object])
def test_class_names_are_refused_with_how_to_number_them(dtype):
    x, _ = arrays()
    names = np.array(["cat", "dog"] * 25, dtype=dtype)
    with pytest.raises(DataError) as err:
        InMemoryData.from_objects((x, names))
    text = str(err.value)
    assert "train[1] (targets) holds" in text and "e.g. 'cat'" in text
    assert "names, y = np.unique(y, return_inverse=True)" in text


class BrokenAt7(torch.utils.data.Dataset):
    """A Dataset whose example 7 cannot be read (a missing file), or is not a pair."""

    def __init__(self, error: Exception | None):
        self.error = error

    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == 7:
            if self.error is not None:
                raise self.error
            return torch.zeros(3), 1, "extra"
        return torch.zeros(3), i % 2


def test_a_dataset_failing_at_an_example_is_named_with_its_cause():
    # the KeyError came out raw from batchlab's materialise loop, and a triple at example 7
    # as "not enough values to unpack"
    with pytest.raises(DataError) as err:
        InMemoryData.from_objects(BrokenAt7(KeyError("missing file 7.png")), None)
    assert "train[7] fails: the Dataset's __getitem__ raised KeyError: 'missing file 7.png'" in str(err.value)
    assert isinstance(err.value.__cause__, KeyError)
    with pytest.raises(DataError, match=r"train\[7\] is a tuple, not an \(input, target\) pair"):
        InMemoryData.from_objects(BrokenAt7(None), None)
