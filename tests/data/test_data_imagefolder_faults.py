"""An image folder with several bad images, or with files that are not images: every bad file
is named in one error whatever the pipeline, and skipped files are counted in the notes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from data_writers import write_image_folder

from batchlab.data import load_dataset
from batchlab.data.fileio import NAMED_AT_MOST, UnreadableFiles
from batchlab.data.loader import Failed, collate, unwrap
from batchlab.data.stream import open_stream
from batchlab.errors import DataError
from batchlab.spec import DataSpec

PIPELINES = {"memory": {"pipeline": "memory"},
             "memory-cache": {"pipeline": "memory", "cache": True},
             "stream": {"pipeline": "stream"},
             "stream-cache-2-workers": {"pipeline": "stream", "cache": True, "workers": 2}}


def spec(root: Path, **fields: object) -> DataSpec:
    return DataSpec(name="image_folder", path=str(root), image_size=8,
                    cache_dir=str(root.parent / "cache"), **fields)


def break_images(root: Path, names: list[str]) -> list[Path]:
    bad = [root / "train" / ("cat", "dog", "eel")[i % 3] / name for i, name in enumerate(names)]
    for path in bad:
        path.write_bytes(b"no image in here")
    return bad


@pytest.mark.parametrize("fields", PIPELINES.values(), ids=PIPELINES.keys())
def test_every_bad_image_is_named_in_one_error(tmp_path, fields):
    root = tmp_path / "img"
    write_image_folder(root)
    bad = break_images(root, ["bad1.png", "bad2.jpg", "bad3.png"])
    with pytest.raises(DataError) as info:
        load_dataset(spec(root, **fields))
    message = str(info.value)
    assert message.startswith("3 files could not be read: ") and "\n" not in message
    assert all(message.count(f"'{path}'") == 1 for path in bad)  # each named once, all at once
    assert message.endswith("remove each file or replace it with a valid image.")
    assert not list((tmp_path / "cache").rglob("*.npy"))  # no half-built decoded cache


def test_past_ten_bad_images_the_rest_are_counted(tmp_path):
    root = tmp_path / "img"
    write_image_folder(root)
    break_images(root, [f"bad{i:02d}.png" for i in range(NAMED_AT_MOST + 2)])
    with pytest.raises(DataError, match=rf"^{NAMED_AT_MOST + 2} files could not be read: .*"
                                        r"; and 2 more; remove each file") as info:
        load_dataset(spec(root))
    assert len(re.findall(r"bad\d\d\.png' \(", str(info.value))) == NAMED_AT_MOST


def test_one_batch_with_two_bad_samples_names_both():
    one, two = (UnreadableFiles([(name, "broken")], "fix it") for name in ("a.png", "b.png"))
    batch = collate([Failed(one), Failed(two)])
    with pytest.raises(DataError, match=r"^2 files could not be read: 'a.png' \(broken\); "
                                        r"'b.png' \(broken\); fix it\.$"):
        list(unwrap([batch]))


@pytest.mark.parametrize("load,pipeline", [(load_dataset, "memory"), (open_stream, "stream")],
                         ids=["memory", "stream"])
def test_files_that_are_not_images_are_counted_in_the_notes(tmp_path, load, pipeline):
    root = tmp_path / "img"
    write_image_folder(root)
    (root / "train" / "cat" / "labels.csv").write_text("x")
    (root / "train" / "dog" / "notes.txt").write_text("x")
    (root / "val" / "eel" / "thumbs.db").write_text("x")
    (root / "train" / "cat" / ".DS_Store").write_text("x")  # hidden: not counted
    notes = load(spec(root, validation="test", pipeline=pipeline)).notes
    skipped = [n for n in notes if "skipped" in n]
    assert len(skipped) == 1
    assert "skipped 3 files in the class folders that are not an image" in skipped[0]
    assert "labels.csv" in skipped[0] and "thumbs.db" in skipped[0] and "DS_Store" not in skipped[0]
    (root / "train" / "cat" / "labels.csv").unlink()
    (root / "train" / "dog" / "notes.txt").unlink()
    (root / "val" / "eel" / "thumbs.db").unlink()
    notes = load(spec(root, validation="test", pipeline=pipeline)).notes
    assert not [n for n in notes if "skipped" in n]


@pytest.mark.parametrize("load,pipeline", [(load_dataset, "memory"), (open_stream, "stream")],
                         ids=["memory", "stream"])
def test_a_val_folder_that_split_does_not_read_is_named_in_the_notes(tmp_path, load, pipeline):
    """train/ + val/ with validation = "split" (the default) holds out part of train/; val/
    was skipped without a word."""
    root = tmp_path / "img"
    write_image_folder(root)
    (unread,) = [n for n in load(spec(root, pipeline=pipeline)).notes if "is not read" in n]
    assert unread == (f"data.path: '{root / 'val'}' is not read: data.validation = 'split' holds "
                      "out val_fraction of train/ instead. Set data.validation = 'test' to "
                      "validate on that folder.")
    assert not [n for n in load(spec(root, validation="test", pipeline=pipeline)).notes
                if "is not read" in n]
    flat = tmp_path / "flat"
    write_image_folder(flat, split=False)  # class folders only: nothing beside them to read
    assert not [n for n in load(spec(flat, pipeline=pipeline)).notes if "is not read" in n]
