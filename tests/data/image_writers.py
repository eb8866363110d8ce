"""Tiny generated image folders for the pipeline tests: learnable, mixed JPEG/PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_separable_folder(root: Path, per_class: int = 24, size: int = 16,
                           classes: int = 2) -> Path:
    """root/c<k>/<i>.(png|jpg): noise plus a bright colour channel per class, so any model
    separates the classes; alternating PNG and JPEG. Returns root."""
    rng = np.random.default_rng(0)
    for label in range(classes):
        folder = root / f"c{label}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
            pixels[..., label % 3] += 150
            Image.fromarray(pixels).save(folder / f"{i:03d}.{'jpg' if i % 2 else 'png'}")
    return root


def image_count(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.suffix in (".png", ".jpg"))
