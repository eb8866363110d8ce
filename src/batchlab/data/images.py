"""One image file to pixels: the decoder of every image pipeline (memory, stream, the decoded
cache), so each sees the same pixels.

JPEG and PNG are decoded by TorchCodec where it is installed (``pip install batchlab[images]``),
else by torchvision.io while the installed torchvision still has it: torchvision deprecated its
image decoders in 0.29 for TorchCodec's, and the two give identical pixels. Every other file
(BMP, GIF, WebP, and one the tensor decoder refuses) goes to Pillow, which either decodes it or
names what is wrong. A 16-bit PNG is scaled to 8 bits (v * 255 / 65535, rounded) by every path:
Pillow's own conversion clips it, which turns most of such an image white.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from batchlab.data.fileio import UnreadableFiles, reading

# Both tensor decoders decode and resize a 320x256 JPEG 1.3-1.9x faster than Pillow (0.7-1.0 ms
# against 1.0-1.7 ms at 32-224 px, one thread) and a PNG 1.1-1.4x, within noise of each other
# (bench/image_decoders.py). GIF (a tensor decoder returns every frame of an animated one) and
# WebP stay with Pillow.
TENSOR_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})
FIX = "remove the file or replace it with a valid image"
#: Pillow's modes of a 16-bit PNG: scaled to 8 bits, not clipped
WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})

Decoder = Callable[[Path], torch.Tensor]


def codec_decoder() -> Decoder | None:
    """TorchCodec's JPEG/PNG decoder; None where it is not installed or does not load (built
    for another torch)."""
    try:
        from torchcodec.decoders import decode_image
    except (ImportError, OSError, RuntimeError):
        return None
    return lambda path: decode_image(path, mode="RGB", output_dtype="auto")


def vision_decoder() -> Decoder | None:
    """torchvision.io's JPEG/PNG decoder, its deprecation warning silenced (TorchCodec is used
    first where installed); None for a torchvision without it."""
    try:
        from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:
        return None

    def decode(path: Path) -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)

    return decode


def installed_decoders() -> dict[str, Decoder]:
    """Every tensor decoder that loads here, by name, in the order ``read_image`` prefers them:
    TorchCodec, then torchvision.io."""
    found = {"TorchCodec": codec_decoder(), "torchvision.io": vision_decoder()}
    return {name: decode for name, decode in found.items() if decode is not None}


@functools.cache
def tensor_decoder() -> tuple[str, Decoder | None]:
    """``(name, decode)``: what decodes JPEG and PNG files into (3, H, W) RGB tensors (uint8,
    or uint16 for a 16-bit PNG), the first of ``installed_decoders``; ``("Pillow", None)``
    without one. ``decode`` raises RuntimeError or ValueError on a file it cannot read."""
    return next(iter(installed_decoders().items()), ("Pillow", None))


def to_8bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit values (0..65535) as uint8, rounded to the nearest level."""
    return np.rint(pixels.astype(np.float64) * (255 / 65535)).astype(np.uint8)


def read_image(path: Path, size: int) -> np.ndarray:
    """(size, size, 3) uint8 pixels of one image: RGB (grey repeated, alpha dropped), bilinear
    antialiased resize; a file no decoder can read is a DataError (``UnreadableFiles``)."""
    with reading(path, FIX):
        if path.suffix.lower() in TENSOR_EXTENSIONS:
            pixels = _tensor_decode(path, size)
            if pixels is not None:
                return pixels
        with Image.open(path) as image:
            if image.mode in WIDE_MODES:
                image = Image.fromarray(to_8bit(np.asarray(image)))
            rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)


def _tensor_decode(path: Path, size: int) -> np.ndarray | None:
    """``read_image`` by the tensor decoder; None where Pillow should try instead (no tensor
    decoder, or a file it cannot decode: Pillow then decodes it or names the problem)."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2.functional import resize

    _, decode = tensor_decoder()
    if decode is None:
        return None
    try:
        image = decode(path)
    except (RuntimeError, ValueError):
        return None
    if image.dim() != 3:
        return None
    if image.dtype == torch.uint16:
        image = torch.from_numpy(to_8bit(image.numpy()))
    elif image.dtype != torch.uint8:
        return None
    image = resize(image, [size, size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return image.permute(1, 2, 0).contiguous().numpy()


def read_images(paths: list[Path], size: int) -> np.ndarray:
    """(N, size, size, 3) uint8 pixels of ``paths``. Every file is tried: those no decoder can
    read are one DataError naming them all (not one per attempt)."""
    pixels: list[np.ndarray] = []
    bad: list[UnreadableFiles] = []
    for path in paths:
        try:
            pixels.append(read_image(path, size))
        except UnreadableFiles as err:
            bad.append(err)
    if bad:
        raise UnreadableFiles.merge(bad)
    return np.stack(pixels)
