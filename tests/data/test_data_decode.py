"""read_image decodes JPEG and PNG with torchvision.io and the rest with Pillow: the pixels agree
with Pillow's decoding (the decoder before) to one level out of 255, for every colour mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from batchlab.data import imagefolder
from batchlab.data.imagefolder import read_image
from batchlab.errors import DataError


def pillow(path: Path, size: int) -> np.ndarray:
    """The earlier decoder: Pillow, RGB, bilinear resize."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))


def photo(mode: str, seed: int, shape=(48, 40)) -> Image.Image:
    """A smooth random picture (what photos look like to a resize) in Pillow ``mode``."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8))
    return small.resize(shape[::-1], Image.Resampling.BICUBIC).convert(mode)


@pytest.mark.parametrize(("ext", "mode"), [(".jpg", "RGB"), (".jpeg", "L"), (".png", "RGB"),
                                           (".png", "L"), (".png", "RGBA"), (".png", "P")])
@pytest.mark.parametrize("size", [16, 48, 64])
def test_torchvision_decoding_agrees_with_pillows(tmp_path, ext, mode, size):
    diffs = []
    for seed in range(4):
        path = tmp_path / f"{seed}{ext}"
        photo(mode, seed).save(path)
        ours, theirs = read_image(path, size), pillow(path, size)
        assert ours.shape == theirs.shape == (size, size, 3) and ours.dtype == np.uint8
        diffs.append(np.abs(ours.astype(int) - theirs.astype(int)))
    assert max(d.max() for d in diffs) <= 1
    assert np.mean(diffs) < 0.05


def test_jpeg_and_png_are_decoded_without_pillow(tmp_path, monkeypatch):
    for ext in (".jpg", ".png"):
        photo("RGB", 0).save(tmp_path / f"a{ext}")

    def no_pillow(*args, **kwargs):
        raise AssertionError("Pillow was asked to decode")

    monkeypatch.setattr(imagefolder.Image, "open", no_pillow)
    for ext in (".jpg", ".png"):
        assert read_image(tmp_path / f"a{ext}", 8).shape == (8, 8, 3)


def test_formats_torchvision_leaves_to_pillow_still_decode(tmp_path):
    for ext in (".bmp", ".gif", ".webp"):
        photo("RGB", 1).save(tmp_path / f"a{ext}")
        assert read_image(tmp_path / f"a{ext}", 12).shape == (12, 12, 3)


def test_a_broken_jpeg_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg.*could not be read.*replace it with a valid image"):
        read_image(path, 8)
