"""A folder of images with one sub-folder per class, decoded by ``data.images`` (TorchCodec or
torchvision.io for JPEG and PNG, Pillow for the other formats).

Layouts (classes are the sub-folder names, sorted, so label i is the i-th name):

* ``data.path/<class>/<image>``: the train part only; ``validation = "test"`` is an error.
* ``data.path/train/<class>/<image>`` plus ``data.path/val/...`` (or ``valid/``,
  ``validation/``, ``test/``, the first found in that order): train/ is the train part and
  that tree the test split. With ``validation = "split"`` the held-out
  part comes from train/ and val/ is not read. A train/ folder alone is used as the train part.

Images with extensions .png .jpg .jpeg .bmp .gif .webp (any case) are read, converted to RGB and
resized to ``image_size`` x ``image_size`` (bilinear, antialiased), giving (3, S, S) float32 in
[0, 1]. Hidden entries (and the __MACOSX folder of a zip made on a Mac) are ignored; other files
are skipped and counted in the data's notes.
Image files no decoder can read are one DataError naming every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from batchlab.data.fileio import (
    data_path,
    fail,
    images_tensor,
    no_test_split,
)
from batchlab.data.images import read_images
from batchlab.data.labels import refuse_single_class
from batchlab.data.raw import RawData
from batchlab.spec import DataSpec

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"})
FIX = (
    "lay the images out as data.path/<class_name>/<image>, optionally under data.path/train/ "
    "and data.path/val/ (or valid/, validation/, test/)"
)


def _visible(entries: list[Path]) -> list[Path]:
    # __MACOSX: the resource forks a zip made on a Mac unpacks beside the class folders
    return sorted(p for p in entries if not p.name.startswith(".") and p.name != "__MACOSX")


def _class_names(folder: Path) -> list[str]:
    return [p.name for p in _visible([p for p in folder.iterdir() if p.is_dir()])]


def _images_in(folder: Path) -> list[Path]:
    return [p for p in _visible(list(folder.iterdir())) if p.suffix.lower() in EXTENSIONS]


def _others_in(folder: Path) -> list[Path]:
    """The visible files of a class folder that are not images: skipped, and counted."""
    return [p for p in _visible(list(folder.iterdir()))
            if p.suffix.lower() not in EXTENSIONS and p.is_file()]


def part_files(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    """The image files of every class folder of ``folder`` that exists, with their labels, in
    class then file-name order; DataError when there is none."""
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue  # a test split may lack a class; the train part is checked by the caller
        found = _images_in(class_dir)
        paths += found
        labels += [label] * len(found)
    if not paths:
        exts = " ".join(sorted(EXTENSIONS))
        raise fail(f"folder '{folder}'", f"has no images ({exts}) in its class sub-folders", FIX)
    return paths, labels


def skipped_files(folders: list[Path], classes: list[str]) -> list[Path]:
    """The files in the class folders of ``folders`` that are not images (so not read)."""
    return [p for folder in folders for name in classes if (folder / name).is_dir()
            for p in _others_in(folder / name)]


# the names a held-out tree beside train/ goes by (Kaggle's sets often say valid/ or
# validation/), in the order one is picked when there are several
TEST_FOLDERS = ("val", "valid", "validation", "test")


def _layout(root: Path) -> tuple[Path, Path | None]:
    """(train folder, test folder or None) of the image tree at ``root``."""
    train = root / "train"
    if not train.is_dir():
        return root, None
    for name in TEST_FOLDERS:
        if (root / name).is_dir():
            return train, root / name
    return train, None


def _one_level_up(folder: Path) -> str:
    """What to add to 'holds no images': the kinds of file ``folder`` holds instead (TIFF, say),
    or, when its own sub-folders hold images, that data.path is a level above the class folders
    (a folder of data sets, say)."""
    inner = [name for name in _class_names(folder) if _images_in(folder / name)]
    if inner:
        shown = ", ".join(inner[:3]) + (", ..." if len(inner) > 3 else "")
        return (f" but its sub-folders ({shown}) do: if they are the classes, point data.path "
                f"at '{folder}'")
    kinds = sorted({p.suffix.lower() or p.name for p in _others_in(folder)})
    if not kinds:
        return ""
    return (f" it can read ({' '.join(sorted(EXTENSIONS))}), only {', '.join(kinds[:5])} files: "
            "convert them to PNG or JPEG")


@dataclass(frozen=True)
class FolderFiles:
    """The image files of an image folder: the train part and the test part (when asked)."""

    classes: list[str]
    train: tuple[list[Path], list[int]]
    test: tuple[list[Path], list[int]] | None = None
    skipped: tuple[Path, ...] = ()  # files in the class folders that are not images
    untested: tuple[str, ...] = ()  # classes of train/ with no image in the test tree
    unread_test: Path | None = None  # a val/ (or test/) tree beside train/ that is not read

    def notes(self) -> list[str]:
        """What listing found that the user should hear: the files that were skipped and the
        classes the test tree has no image of (its accuracy leaves them out)."""
        out = []
        if self.unread_test is not None:
            # the train/ + val/ layout promises a validation tree; silence would read as using it
            out.append(f"data.path: '{self.unread_test}' is not read: data.validation = 'split' "
                       "holds out val_fraction of train/ instead. Set data.validation = 'test' "
                       "to validate on that folder.")
        if self.untested:
            out.append(f"data.path: the validation tree has no images of class "
                       f"{', '.join(repr(c) for c in self.untested)} (train/ has "
                       f"{len(self.classes)} classes): validation accuracy and loss measure "
                       "the other classes only. Add their images to the validation tree to measure "
                       "every class.")
        if self.skipped:
            n = len(self.skipped)
            named = ", ".join(f"'{p}'" for p in self.skipped[:3]) + (", ..." if n > 3 else "")
            out.append(f"data.path: skipped {n} file{'s' if n > 1 else ''} in the class folders "
                       f"that {'are' if n > 1 else 'is'} not an image "
                       f"({' '.join(sorted(EXTENSIONS))}): {named}. Convert or rename such "
                       "files to train on them.")
        return out


def folder_files(spec: DataSpec, want_test: bool) -> FolderFiles:
    """List (not decode) the images of ``spec``'s folder: classes, train and test files. Every
    layout error is the DataError ``load_image_folder`` raises; the val/ (or test/) tree is
    listed only when ``want_test``."""
    root = data_path(spec, folder=True, fix=FIX)
    train_dir, test_dir = _layout(root)
    if want_test and test_dir is None:
        beside = "/, ".join(TEST_FOLDERS[:-1]) + f"/ or {TEST_FOLDERS[-1]}/"
        why = (f": '{root}' has a train/ sub-folder but no {beside} beside it" if train_dir != root
               else f": '{root}' has no train/ and val/ sub-folders")
        raise no_test_split("image_folder", why, "split the class folders into train/ and val/")
    classes = _class_names(train_dir)
    if not classes:
        raise fail(f"folder '{train_dir}'", "has no class sub-folders (zero classes)", FIX)
    for name in classes:
        if not _images_in(train_dir / name):
            raise fail(f"class folder '{train_dir / name}'", "holds no images" + _one_level_up(
                train_dir / name), FIX)
    refuse_single_class(len(classes), classes[0], f"folder '{train_dir}'", None)
    train = part_files(train_dir, classes)
    if not want_test:
        return FolderFiles(classes, train, skipped=tuple(skipped_files([train_dir], classes)),
                           unread_test=test_dir)
    assert test_dir is not None
    test_classes = _class_names(test_dir)
    unknown = sorted(set(test_classes) - set(classes))
    if unknown:  # a label train/ never taught: no class index to give it
        lacks = sorted(set(classes) - set(test_classes))
        lacking = f" (and lacks {lacks}, which it has)" if lacks else ""
        problem = f"has class folders {unknown} that '{train_dir}' does not have{lacking}"
        fix = "give both splits the same class folders (the names must match exactly)"
        raise fail(f"folder '{test_dir}'", problem, fix)
    skipped = tuple(skipped_files([train_dir, test_dir], classes))
    test = part_files(test_dir, classes)
    untested = tuple(name for i, name in enumerate(classes) if i not in set(test[1]))
    return FolderFiles(classes, train, test, skipped, untested)


def _decode(spec: DataSpec, files: tuple[list[Path], list[int]], part: str,
            notes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, S, S) float32 in [0, 1] and labels (N,) of listed files: decoded here, or
    copied from the decoded cache (``data.cache``), which decodes each image once for every
    run and sweep."""
    paths, labels = files
    pixels = None
    if spec.cache:
        from batchlab.data.decoded import cached_part  # it imports this module's decoder

        if (where := cached_part(spec, part, paths, notes)) is not None:
            pixels = np.load(where, mmap_mode="r")
    if pixels is None:
        pixels = read_images(paths, spec.image_size)
    return images_tensor(pixels.transpose(0, 3, 1, 2)), torch.tensor(labels, dtype=torch.int64)


def load_image_folder(spec: DataSpec, want_test: bool) -> RawData:
    """Images from class sub-folders; the val/ (or test/) tree is read only when ``want_test``."""
    files = folder_files(spec, want_test)
    notes = files.notes()
    train_x, train_y = _decode(spec, files.train, "train", notes)
    if files.test is None:
        return RawData(train_x, train_y, len(files.classes), notes=tuple(notes))
    test_x, test_y = _decode(spec, files.test, "test", notes)
    return RawData(train_x, train_y, len(files.classes), test_x, test_y, tuple(notes))
