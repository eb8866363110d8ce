"""Batch augmentation on the batch's own device: random crop, random flip, random resized crop.

Inputs are (N, C, H, W) images, (N, C, L) signals or (N, D) flat features (treated as one
signal of length D). Both ops act on the spatial axes, so:

* ``crop``: pad the spatial axes (H and W, or L) with ``crop_padding`` zeros on each side and
  cut a window of the original size at a random offset per example. Padding 0 is the identity.
* ``flip``: reverse the last axis (W for images: a horizontal flip; L for signals: time
  reversal) of each example with probability 1/2.
* ``resized_crop`` (images only): cut a random box of RESIZED_CROP_SCALE of the image's area
  and aspect ratio in RESIZED_CROP_RATIO, and stretch it back to the full size (bilinear), as
  torchvision's RandomResizedCrop does.

Both data pipelines use this one module: the memory path augments each batch, the stream path
each sample (a batch of one, from a per-sample generator), so a spec's ``augment`` means the
same thing whichever pipeline runs it.

Randomness comes only from ``generator`` (a CPU torch.Generator), drawn on the CPU and moved to
the batch's device, so the result depends only on the generator's state and not on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

# torchvision's RandomResizedCrop uses an area scale of (0.08, 1); at the 32-64 px a CPU study
# trains at, boxes under a quarter of the image leave too few pixels to recognise anything.
RESIZED_CROP_SCALE = (0.25, 1.0)
RESIZED_CROP_RATIO = (3 / 4, 4 / 3)


def _crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-example random crop of the zero-padded spatial axes, one gather for the batch."""
    if padding == 0:
        return x
    signal = x.dim() == 2  # (N, D): give it a channel axis so it goes through the 1-D path
    if signal:
        x = x.unsqueeze(1)
    n, spatial = x.shape[0], x.shape[2:]
    padded = F.pad(x, (padding, padding) * len(spatial))
    # One offset per example and spatial axis, in [0, 2 * padding]; drawn in axis order.
    offsets = torch.randint(0, 2 * padding + 1, (len(spatial), n), generator=generator)
    offsets = offsets.to(x.device)
    batch = torch.arange(n, device=x.device).view(n, 1, *[1] * len(spatial))
    channel = torch.arange(x.shape[1], device=x.device).view(1, -1, *[1] * len(spatial))
    index: list[torch.Tensor] = [batch, channel]
    for axis, size in enumerate(spatial):
        # positions along this axis for every example: offset + 0..size-1, shaped to broadcast
        view = [n, 1] + [1] * len(spatial)
        view[2 + axis] = size
        index.append((offsets[axis].view(n, 1) + torch.arange(size, device=x.device)).view(view))
    out = padded[tuple(index)]
    return out.squeeze(1) if signal else out


def _flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Reverse the last axis of a random half (each example independently, p = 1/2)."""
    chosen = (torch.rand(x.shape[0], generator=generator) < 0.5).to(x.device)
    return torch.where(chosen.view(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)


def _resized_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-example random box (area and aspect ratio drawn as above), resized to the full image
    by one batched ``grid_sample``."""
    if x.dim() != 4:
        raise ValueError(f"resized_crop needs images (N, C, H, W); got {tuple(x.shape)}")
    n = x.shape[0]
    draws = torch.rand(4, n, generator=generator, dtype=torch.float64)
    low, high = RESIZED_CROP_SCALE
    area = low + (high - low) * draws[0]
    lo, hi = torch.tensor(RESIZED_CROP_RATIO, dtype=torch.float64).log()
    ratio = torch.exp(lo + (hi - lo) * draws[1])
    # box sides as fractions of the image's sides; a box that would overflow is clipped to it
    w, h = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
    # centre in grid coordinates [-1, 1], anywhere the box stays inside the image
    cx, cy = (1 - w) * (2 * draws[2] - 1), (1 - h) * (2 * draws[3] - 1)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_batch(
    x: torch.Tensor, ops: Sequence[str], crop_padding: int, generator: torch.Generator
) -> torch.Tensor:
    """Apply ``ops`` ("crop", "flip", "resized_crop") in order to batch ``x``; ``x`` itself is never modified.

    Shape, dtype and device are preserved. Deterministic given the generator's state. With no
    ops (or only a crop with padding 0) ``x`` itself is returned, not a copy.
    """
    if not 2 <= x.dim() <= 4:
        shape = tuple(x.shape)
        raise ValueError(f"augment_batch needs (N, D), (N, C, L) or (N, C, H, W); got {shape}")
    for op in ops:
        if op == "crop":
            x = _crop(x, crop_padding, generator)
        elif op == "flip":
            x = _flip(x, generator)
        elif op == "resized_crop":
            x = _resized_crop(x, generator)
        else:
            raise ValueError(f"unknown augmentation {op!r}; use 'crop', 'flip' or 'resized_crop'")
    return x
