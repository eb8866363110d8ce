"""The image decoders side by side: milliseconds per image to decode and resize, one thread.

    python bench/image_decoders.py             # ~1 min: 200 images of each format, 5 rounds
    python bench/image_decoders.py --images 50 --rounds 3

``batchlab.data.images.read_image`` decodes JPEG and PNG with TorchCodec where it is installed,
else torchvision.io (deprecated since torchvision 0.29 for TorchCodec's decoders), and every
other format with Pillow. This measures each decoder the way ``read_image`` runs it (decode to
RGB, bilinear antialiased resize to the image size) on the same files: photo-like 320x256
images (smooth colour fields with noise), saved as JPEG (quality 90) and PNG, resized to 32 and
224 px. After one untimed decode each (loading its library), rounds interleave the decoders,
their order rotating each round; each figure is the median over rounds of the mean time per
image, and the ratio is Pillow's time over the decoder's (above 1: faster than Pillow).
Not part of batchlab and not a test module.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from batchlab.data import images

SIZES = (32, 224)
FORMATS = {".jpg": {"quality": 90}, ".png": {}}


def write_images(folder: Path, count: int) -> dict[str, list[Path]]:
    """``count`` photo-like 320x256 images in each format of ``FORMATS``."""
    rng = np.random.default_rng(0)
    out: dict[str, list[Path]] = {ext: [] for ext in FORMATS}
    for i in range(count):
        small = Image.fromarray(rng.integers(0, 256, (8, 10, 3), dtype=np.uint8))
        smooth = np.asarray(small.resize((320, 256), Image.Resampling.BICUBIC), dtype=np.int16)
        noisy = (smooth + rng.integers(-12, 13, smooth.shape)).clip(0, 255).astype(np.uint8)
        for ext, options in FORMATS.items():
            path = folder / f"{i:04d}{ext}"
            Image.fromarray(noisy).save(path, **options)
            out[ext].append(path)
    return out


def decoders() -> dict[str, tuple[str, images.Decoder | None]]:
    """What ``images.tensor_decoder`` can return here, by name: each installed tensor decoder,
    and Pillow alone (no tensor decoder)."""
    choices = {name: (name, decode) for name, decode in images.installed_decoders().items()}
    return {**choices, "Pillow": ("Pillow", None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200, help="images of each format")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    choices = decoders()
    names = list(choices)
    shipped = images.tensor_decoder()[0]
    current = [choices[shipped]]
    original, images.tensor_decoder = images.tensor_decoder, lambda: current[0]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = write_images(Path(tmp), args.images)
            for name in names:  # the first decode loads the decoder's library: not timed
                current[0] = choices[name]
                images.read_image(files[".jpg"][0], SIZES[0])
            print(f"decoders: {', '.join(names)} (read_image uses {shipped} here); "
                  f"{args.images} images per format, {args.rounds} rounds, 1 thread\n")
            print(f"{'format':6} {'size':>5}  " + "  ".join(f"{n:>24}" for n in names))
            for ext, paths in files.items():
                for size in SIZES:
                    times: dict[str, list[float]] = {n: [] for n in names}
                    for r in range(args.rounds):
                        for name in names[r % len(names):] + names[:r % len(names)]:
                            current[0] = choices[name]
                            start = time.perf_counter()
                            for path in paths:
                                images.read_image(path, size)
                            times[name].append((time.perf_counter() - start) / len(paths))
                    ms = {n: 1e3 * statistics.median(t) for n, t in times.items()}
                    cells = [f"{ms[n]:5.2f} ms ({ms['Pillow'] / ms[n]:4.2f}x Pillow)" for n in names]
                    print(f"{ext:6} {size:5}  " + "  ".join(f"{c:>24}" for c in cells))
    finally:
        images.tensor_decoder = original


if __name__ == "__main__":
    main()
