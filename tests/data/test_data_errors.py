"""Bad files and folders raise DataError naming the culprit, never a raw low-level exception."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from data_writers import write_cifar, write_idx, write_image_folder, write_npz

from batchlab.data import load_dataset
from batchlab.data.stream import open_stream
from batchlab.errors import DataError
from batchlab.spec import DataSpec


def fails(match: str, **fields: object) -> str:
    """Load DataSpec(**fields), assert DataError whose message contains ``match``; return it."""
    with pytest.raises(DataError, match=re.escape(match)) as info:
        load_dataset(DataSpec(**fields))
    message = str(info.value)
    assert "\n" not in message  # one paragraph
    return message


@pytest.mark.parametrize("name", ["mnist_idx", "cifar10", "cifar100", "image_folder", "npz"])
def test_missing_path(tmp_path: Path, name: str) -> None:
    message = fails("does not exist", name=name, path=str(tmp_path / "nowhere"))
    assert "nowhere" in message


def test_a_missing_relative_path_says_where_it_was_looked_for(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = fails(f"data.path 'data.npz' does not exist (a relative data.path is read from the "
                    f"current folder, '{tmp_path}', not the spec file's)", name="npz", path="data.npz")
    assert "np.savez" in message


# --------------------------------------------------------------------------- IDX


def test_idx_truncated_images(tmp_path: Path) -> None:
    write_idx(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-100])
    message = fails("train-images-idx3-ubyte", name="mnist_idx", path=str(tmp_path))
    assert "truncated" in message


def test_idx_header_shorter_than_itself(tmp_path: Path) -> None:
    write_idx(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00")
    fails("train-labels-idx1-ubyte' is truncated", name="mnist_idx", path=str(tmp_path))


def test_idx_wrong_magic(tmp_path: Path) -> None:
    write_idx(tmp_path)
    images = tmp_path / "train-images-idx3-ubyte"
    blob = images.read_bytes()
    images.write_bytes(struct.pack(">I", 0x00000804) + blob[4:])
    message = fails("train-images-idx3-ubyte", name="mnist_idx", path=str(tmp_path))
    assert "magic number 0x00000804" in message and "0x00000803" in message


def test_idx_truncated_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=True)
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:20])
    fails("train-labels-idx1-ubyte.gz", name="mnist_idx", path=str(tmp_path))


def test_idx_not_gzip(tmp_path: Path) -> None:
    write_idx(tmp_path, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"plain bytes, not gzip")
    fails("train-labels-idx1-ubyte.gz", name="mnist_idx", path=str(tmp_path))


def test_idx_missing_file(tmp_path: Path) -> None:
    write_idx(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    fails("has no train-labels-idx1-ubyte[.gz]", name="mnist_idx", path=str(tmp_path))


def test_idx_files_named_as_kaggle_names_them_are_read(tmp_path: Path) -> None:
    write_idx(tmp_path)
    for f in list(tmp_path.iterdir()):  # train-images-idx3-ubyte -> train-images.idx3-ubyte
        f.rename(f.with_name(f.name.replace("-idx", ".idx")))
    data = load_dataset(DataSpec(name="mnist_idx", path=str(tmp_path), validation="test"))
    assert len(data.train_y) == 30 and len(data.val_y) == 12


def test_idx_in_a_sub_folder_is_named(tmp_path: Path) -> None:
    write_idx(tmp_path / "MNIST" / "raw", gz=True)  # torchvision's download layout
    message = fails("has no train-images-idx3-ubyte[.gz]", name="mnist_idx", path=str(tmp_path))
    assert f"('{tmp_path / 'MNIST' / 'raw'}' has it: point data.path there)" in message

def test_idx_count_mismatch(tmp_path: Path) -> None:
    write_idx(tmp_path, n_train=30)
    labels = np.zeros(29, dtype=np.uint8)
    blob = struct.pack(">II", 0x00000801, 29) + labels.tobytes()
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(blob)
    fails("holds 29 labels", name="mnist_idx", path=str(tmp_path))


def test_idx_test_files_needed_only_for_validation_test(tmp_path: Path) -> None:
    write_idx(tmp_path)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).unlink()
    assert len(load_dataset(DataSpec(name="mnist_idx", path=str(tmp_path))).val_y) == 6
    fails("t10k-images-idx3-ubyte", name="mnist_idx", path=str(tmp_path), validation="test")


# --------------------------------------------------------------------------- CIFAR


def test_cifar_garbage_pickle(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "data_batch_3").write_bytes(os.urandom(500))
    fails("data_batch_3", name="cifar10", path=str(tmp_path))


def test_cifar_pickle_naming_other_globals_is_refused_not_run(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar100")
    marker = tmp_path / "ran"
    # would create `marker` when unpickled by an unrestricted loader
    payload = pickle.dumps(_Exploit(str(marker)), protocol=2)
    (tmp_path / "train").write_bytes(payload)
    message = fails("cifar-100-python", name="cifar100", path=str(tmp_path))
    assert "refusing to load global" in message and not marker.exists()


class _Exploit:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(self.path),))


def test_cifar_wrong_keys_and_shapes(tmp_path: Path) -> None:
    write_cifar(tmp_path, "cifar10")
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"pixels": np.zeros((2, 3072), np.uint8)}, protocol=2))
    fails("data_batch_1' has no b'data'", name="cifar10", path=str(tmp_path))
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    fails("data_batch_1' has b'data' of shape (2, 100)", name="cifar10", path=str(tmp_path))
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}))
    fails("has label 10, but this format has only 10 classes", name="cifar10", path=str(tmp_path))


def test_cifar_parent_folder_and_test_batch_only_when_needed(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py", "cifar10")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    assert len(load_dataset(DataSpec(name="cifar10", path=str(tmp_path))).train_y) == 32
    fails("has no test_batch", name="cifar10", path=str(tmp_path), validation="test")


# --------------------------------------------------------------------------- image folder


def test_image_folder_unreadable_image(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    (tmp_path / "train" / "dog" / "broken.png").write_text("this is no PNG")
    fails("broken.png", name="image_folder", path=str(tmp_path))


def test_image_folder_empty(tmp_path: Path) -> None:
    fails("has no class sub-folders", name="image_folder", path=str(tmp_path))
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "notes.txt").write_text("no images here")
    fails("class folder", name="image_folder", path=str(tmp_path))


def test_image_folder_one_level_too_high_names_the_folder_to_point_at(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "sets" / "pets", split=False)  # sets/pets/<class>/<image>
    message = fails("class folder", name="image_folder", path=str(tmp_path / "sets"))
    assert f"'{tmp_path / 'sets' / 'pets'}' holds no images but its sub-folders (cat, dog, eel) " \
        f"do: if they are the classes, point data.path at '{tmp_path / 'sets' / 'pets'}'" in message

def test_a_zip_made_on_a_mac_unpacks_into_a_folder_that_reads_as_it_should(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "pets", split=False)
    forks = tmp_path / "pets" / "__MACOSX" / "cat"  # resource forks: ._<name>, beside the classes
    forks.mkdir(parents=True)
    (forks / "._000.png").write_bytes(b"\x00\x05\x16\x07")
    data = load_dataset(DataSpec(name="image_folder", path=str(tmp_path / "pets"), image_size=8))
    assert data.num_classes == 3 and len(data.train_y) + len(data.val_y) == 18
    shutil.make_archive(str(tmp_path / "pets"), "zip", tmp_path / "pets")  # the zip itself
    fails(f"data.path '{tmp_path / 'pets.zip'}' is an archive, not a folder: extract it first",
          name="image_folder", path=str(tmp_path / "pets.zip"))

def test_image_folder_of_tiff_files_says_what_it_found(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / name / "0.tif")  # microscopes write TIFF
    message = fails(f"class folder '{tmp_path / 'a'}' holds no images it can read (.bmp .gif .jpeg "
                    ".jpg .png .webp), only .tif files: convert them to PNG or JPEG",
                    name="image_folder", path=str(tmp_path))
    assert "\n" not in message

def test_image_folder_test_class_unknown_to_train(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    (tmp_path / "val" / "yak").mkdir()
    fails("['yak']", name="image_folder", path=str(tmp_path), validation="test")



@pytest.mark.parametrize("name", ["valid", "validation"])
def test_image_folder_valid_or_validation_beside_train_is_the_test_split(tmp_path: Path, name: str) -> None:
    write_image_folder(tmp_path)
    (tmp_path / "val").rename(tmp_path / name)  # Kaggle's sets often name it so
    data = load_dataset(DataSpec(name="image_folder", path=str(tmp_path), validation="test",
                                 image_size=8))
    assert len(data.val_y) == 6 and len(data.train_y) == 18  # 2 and 6 per class: val/ as is
    shutil.rmtree(tmp_path / name)
    message = fails("has a train/ sub-folder but no val/, valid/, validation/ or test/ beside it",
                    name="image_folder", path=str(tmp_path), validation="test")
    assert 'data.validation = "split"' in message

@pytest.mark.parametrize("pipeline", ["memory", "stream"])
def test_image_folder_of_a_single_class_is_refused(tmp_path: Path, pipeline: str) -> None:
    write_image_folder(tmp_path / "split")
    for name in ("dog", "eel"):  # train/ keeps 'cat' alone
        shutil.rmtree(tmp_path / "split" / "train" / name)
    for validation in ("split", "test"):  # refused whether val/ is read or not
        message = fails("has a single class (every image is in class folder 'cat')",
                        name="image_folder", path=str(tmp_path / "split"), pipeline=pipeline,
                        validation=validation)
        assert f"folder '{tmp_path / 'split' / 'train'}'" in message
        assert "at least 2 classes" in message and "sub-folder of images for each other class" in message
    flat = tmp_path / "flat" / "cat"  # the flat layout: data.path/<class>/<image>
    shutil.copytree(tmp_path / "split" / "train" / "cat", flat)
    fails("has a single class (every image is in class folder 'cat')", name="image_folder",
          path=str(flat.parent), pipeline=pipeline)


def test_image_folder_val_classes_unlike_train(tmp_path: Path) -> None:
    write_image_folder(tmp_path)
    (tmp_path / "val" / "eel").rename(tmp_path / "val" / "Eel")  # a name that differs in case
    message = fails("has class folders ['Eel'] that", name="image_folder", path=str(tmp_path),
                    validation="test")
    assert "(and lacks ['eel'], which it has)" in message and "match exactly" in message
    # val/ lacking a class is allowed (a test split may), and the notes say which one
    shutil.rmtree(tmp_path / "val" / "Eel")
    data = load_dataset(DataSpec(name="image_folder", path=str(tmp_path), validation="test",
                                 image_size=8))
    assert data.num_classes == 3 and sorted(set(data.val_y.tolist())) == [0, 1]
    untested = [n for n in data.notes if "no images of class" in n]
    assert len(untested) == 1 and "class 'eel' (train/ has 3 classes)" in untested[0]
    streamed = open_stream(DataSpec(name="image_folder", path=str(tmp_path), validation="test",
                                    image_size=8, pipeline="stream"))
    assert [n for n in streamed.notes if "no images of class" in n] == untested
    full = load_dataset(DataSpec(name="image_folder", path=str(tmp_path), image_size=8))
    assert not [n for n in full.notes if "no images of class" in n]  # val/ not read: no note


# --------------------------------------------------------------------------- npz and splits


def test_npz_problems(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((4, 3)))
    fails("has no array 'y' (it has: x)", name="npz", path=str(path))
    np.savez(path, x=np.zeros((4, 3)), y=np.arange(3))
    fails("has 4 rows in 'x' but 3 in 'y'", name="npz", path=str(path))
    np.savez(path, x=np.array([["a"] * 3] * 4), y=np.arange(4))
    fails("must be numeric", name="npz", path=str(path))
    np.savez(path, x=np.zeros((4, 3)), y=np.array([[0, 1, 1], [1, 0, 0], [0, 0, 1], [1, 0, 0]]))
    fails("must be a 1-D array of class labels", name="npz", path=str(path), task="classification")
    np.savez(path, x=np.zeros((4, 3)), y=np.array(["a", "b", "a", "b"]))
    fails("integer class labels", name="npz", path=str(path))
    np.savez(path, x=np.zeros((40, 30)), y=np.arange(40))
    path.write_bytes(path.read_bytes()[:-40])  # truncated archive
    fails("d.npz", name="npz", path=str(path))
    path.write_bytes(b"garbage, not a zip archive")
    fails("d.npz", name="npz", path=str(path))
    # a CSV given as data.path: said to be no .npz, not a pickle to load with allow_pickle
    path.write_text("0.1,0.2,1\n0.3,0.4,0\n")
    message = fails(f"file '{path}' is not a NumPy .npz archive", name="npz", path=str(path))
    assert "pickle" not in message and "np.loadtxt" in message
    np.savez(path, x=np.zeros(4), y=np.arange(4) % 2)  # one feature, saved as a 1-D x
    fails("is 1-D, shape (4,), but must be (N, features, ...); for one feature per example "
          "reshape it, x.reshape(-1, 1), then save it", name="npz", path=str(path))


def test_npz_single_array_and_missing_test(tmp_path: Path) -> None:
    np.save(tmp_path / "one.npy", np.zeros((3, 2)))
    fails("not an .npz archive", name="npz", path=str(tmp_path / "one.npy"))
    write_npz(tmp_path / "d.npz", with_test=False)
    fails("lacks the x_test and y_test arrays", name="npz", path=str(tmp_path / "d.npz"),
          validation="test")


def test_npz_constant_channel_is_centred_not_divided_by_zero(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(10, 2, 3, 3))
    x[:, 0] = 5.0  # channel 0 is constant: std 0
    np.savez(tmp_path / "c.npz", x=x, y=np.arange(10) % 2)
    ds = load_dataset(DataSpec(name="npz", path=str(tmp_path / "c.npz")))
    assert (ds.train_x[:, 0] == 0).all() and (ds.val_x[:, 0] == 0).all()
    assert abs(ds.train_x[:, 1].std(correction=0).item() - 1) < 1e-4


def test_hold_out_leaving_no_training_data(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 3)), y=np.array([0, 1]))
    fails("data.val_fraction", name="npz", path=str(tmp_path / "d.npz"), val_fraction=0.9)


@pytest.mark.parametrize("validation", ["split", "test"])
def test_idx_of_a_single_class_is_refused(tmp_path: Path, validation: str) -> None:
    write_idx(tmp_path)
    for prefix in ("train", "t10k"):  # every label 7: a label file cut from one class
        labels = tmp_path / f"{prefix}-labels-idx1-ubyte"
        blob = labels.read_bytes()
        labels.write_bytes(blob[:8] + bytes([7]) * (len(blob) - 8))
    message = fails("has a single class (every label is 7)", name="mnist_idx", path=str(tmp_path),
                    validation=validation)
    assert f"data.path '{tmp_path}'" in message and "at least 2 classes" in message
