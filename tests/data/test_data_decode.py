"""read_image decodes JPEG and PNG with TorchCodec (or torchvision.io without it) and the rest
with Pillow: the two tensor decoders give identical pixels, which agree with Pillow's decoding
to one level out of 255 for every colour mode; a 16-bit PNG is scaled to 8 bits on every path."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from batchlab.data import images
from batchlab.data.images import read_image
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
def test_tensor_decoding_agrees_with_pillows(tmp_path, ext, mode, size):
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

    monkeypatch.setattr(images.Image, "open", no_pillow)
    for ext in (".jpg", ".png"):
        assert read_image(tmp_path / f"a{ext}", 8).shape == (8, 8, 3)


def test_formats_the_tensor_decoders_leave_to_pillow_still_decode(tmp_path):
    for ext in (".bmp", ".gif", ".webp"):
        photo("RGB", 1).save(tmp_path / f"a{ext}")
        assert read_image(tmp_path / f"a{ext}", 12).shape == (12, 12, 3)


def test_a_broken_jpeg_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg.*could not be read.*replace it with a valid image"):
        read_image(path, 8)


def test_torchcodec_decodes_when_installed_and_agrees_with_torchvision_pixel_for_pixel(tmp_path):
    pytest.importorskip("torchcodec", reason="TorchCodec is not installed (pip install batchlab[images])")
    assert images.tensor_decoder()[0] == "TorchCodec"
    found = images.installed_decoders()
    if "torchvision.io" not in found:
        pytest.skip("this torchvision has no image decoders left to compare with")
    for ext, mode in ((".jpg", "RGB"), (".jpg", "L"), (".png", "RGBA"), (".png", "P")):
        path = tmp_path / f"{mode}{ext}"
        photo(mode, 2).save(path)
        codec, vision = (found[name](path) for name in ("TorchCodec", "torchvision.io"))
        assert codec.dtype == torch.uint8 and codec.shape == (3, 48, 40)
        assert torch.equal(codec, vision)


def without_torchcodec(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torchcodec", None)  # import torchcodec: ImportError
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)
    images.tensor_decoder.cache_clear()
    monkeypatch.setattr(images, "tensor_decoder", images.tensor_decoder.__wrapped__)


def test_without_torchcodec_torchvision_decodes_without_its_deprecation_warning(tmp_path, monkeypatch):
    without_torchcodec(monkeypatch)
    assert images.codec_decoder() is None
    assert images.tensor_decoder()[0] == "torchvision.io"
    path = tmp_path / "a.jpg"
    photo("RGB", 3).save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = read_image(path, 16)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)]
    assert np.abs(ours.astype(int) - pillow(path, 16).astype(int)).max() <= 1


def test_without_a_tensor_decoder_pillow_decodes_everything(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "tensor_decoder", lambda: ("Pillow", None))
    for ext in (".jpg", ".png"):
        path = tmp_path / f"a{ext}"
        photo("RGB", 4).save(path)
        assert np.array_equal(read_image(path, 12), pillow(path, 12))


def sixteen_bit_png(path: Path) -> np.ndarray:
    """A 4x4 16-bit grey PNG whose columns are 0, 1000, 30000 and 65535; the 8-bit levels
    every decoder must give (v * 255 / 65535, rounded; Pillow's own conversion clips them to
    0, 255, 255, 255)."""
    Image.fromarray(np.tile(np.array([0, 1000, 30000, 65535], np.uint16), (4, 1))).save(path)
    return np.tile(np.array([0, 4, 117, 255], np.uint8), (4, 1))


@pytest.mark.parametrize("decoder", ["TorchCodec", "torchvision.io", "Pillow"])
def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path, monkeypatch, decoder):
    decode = images.installed_decoders().get(decoder) if decoder != "Pillow" else None
    if decoder != "Pillow" and decode is None:
        pytest.skip(f"{decoder} is not installed")
    monkeypatch.setattr(images, "tensor_decoder", lambda: (decoder, decode))
    path = tmp_path / "wide.png"
    levels = sixteen_bit_png(path)
    pixels = read_image(path, 4)
    assert pixels.dtype == np.uint8
    for channel in range(3):
        assert np.array_equal(pixels[:, :, channel], levels)
