"""Batch augmentation on the batch's own device: random crop, random flip, random resized crop.

Inputs are (N, C, H, W) images, (N, C, L) signals or (N, D) flat features (treated as one
signal of length D). Both ops act on the spatial axes, so:

* ``crop``: pad the spatial axes (H and W, or L) with ``crop_padding`` zeros on each side and
  cut a window of the original size at a random offset per example. Padding 0 is the identity.
* ``flip``: reverse the last axis (W for images: a horizontal flip; L for signals: time
  reversal) of each example with probability 1/2.
* ``resized_crop`` (images only): cut a random box of RESIZED_CROP_SCALE of the image's area
  and aspect ratio in RESIZED_CROP_RATIO, and stretch it back to the full size (bilinear): the
  boxes are drawn as torchvision's ``RandomResizedCrop`` draws them (whole pixels, up to 10
  tries, then a centre crop), so both give the same distribution of boxes.

Both data pipelines use this one module: the memory path and the cached stream path
(``batchlab.data.cached``) augment each batch, the stream path without a cache each sample (a
batch of one, from a per-sample generator), so a spec's ``augment`` means the same thing
whichever pipeline runs it.

Randomness comes only from ``generator`` (a CPU torch.Generator), drawn on the CPU and moved to
the batch's device, so the result depends only on the generator's state and not on the device.

Why not ``torchvision.transforms.v2``: its transforms draw one set of parameters per call from
torch's global RNG. Per sample, on 128 images of 3x32x32 on one thread, crop + flip took 27 ms
with v2 (109 ms when seeded per sample with ``fork_rng``, which the stream path needs for the
same numbers for the same seed at any worker count) against 12 ms for this module's batched
ops and 42 ms one sample at a time; resized_crop 49 ms per sample with v2 against 5 ms batched.
The distributions agree (tests/data/test_data_augment.py compares them with v2's).
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


RESIZED_CROP_TRIES = 10  # torchvision's: draws per example before the centre-crop fallback


def resized_crop_boxes(n: int, height: int, width: int,
                       generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(top, left, box height, box width) in whole pixels, float64 tensors of ``n``: torchvision's
    ``RandomResizedCrop.make_params`` for every example at once (the first of
    RESIZED_CROP_TRIES draws of area and log-uniform aspect ratio whose rounded box fits, else
    the largest centred box of an allowed ratio)."""
    draws = torch.rand(2, RESIZED_CROP_TRIES, n, generator=generator, dtype=torch.float64)
    low, high = RESIZED_CROP_SCALE
    area = height * width * (low + (high - low) * draws[0])
    lo, hi = torch.tensor(RESIZED_CROP_RATIO, dtype=torch.float64).log()
    ratio = torch.exp(lo + (hi - lo) * draws[1])
    w, h = (area * ratio).sqrt().round(), (area / ratio).sqrt().round()  # half to even, as round()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.int8).argmax(0, keepdim=True)
    found = fits.any(0)
    w, h = w.gather(0, first)[0], h.gather(0, first)[0]
    in_ratio, (low_ratio, high_ratio) = width / height, RESIZED_CROP_RATIO
    fw, fh = ((width, round(width / low_ratio)) if in_ratio < low_ratio else
              (round(height * high_ratio), height) if in_ratio > high_ratio else (width, height))
    w, h = torch.where(found, w, float(fw)), torch.where(found, h, float(fh))
    where = torch.rand(2, n, generator=generator, dtype=torch.float64)
    top = torch.where(found, (where[0] * (height - h + 1)).floor(), ((height - h) // 2))
    left = torch.where(found, (where[1] * (width - w + 1)).floor(), ((width - w) // 2))
    return top, left, h, w


def crop_resize(x: torch.Tensor, boxes: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Each example's box (top, left, height, width in pixels) stretched to the full image by
    one batched bilinear ``grid_sample`` (inside the box: torchvision's crop + resize)."""
    top, left, h, w = boxes
    height, width = x.shape[-2:]
    theta = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    # box sides as fractions of the image's, its centre in grid coordinates [-1, 1]
    theta[:, 0, 0], theta[:, 1, 1] = w / width, h / height
    theta[:, 0, 2], theta[:, 1, 2] = (2 * left + w) / width - 1, (2 * top + h) / height - 1
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _resized_crop(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per-example random box (``resized_crop_boxes``), resized to the full image."""
    if x.dim() != 4:
        raise ValueError(f"resized_crop needs images (N, C, H, W); got {tuple(x.shape)}")
    return crop_resize(x, resized_crop_boxes(x.shape[0], x.shape[2], x.shape[3], generator))


def check_augment(ops: Sequence[str], input_shape: Sequence[int]) -> str | None:
    """Refuse (SpecError) an augmentation this data cannot take, before anything trains:
    ``resized_crop`` on examples that are not (C, H, W) images (it failed at the run's first
    step). Return a note for ``crop``/``flip`` on flat (D,) examples, which treat the D features
    as one signal (right for a signal such as MNIST-1D, a shuffle of columns for a table)."""
    from batchlab.errors import SpecError

    shape = tuple(input_shape)
    if "resized_crop" in ops and len(shape) != 3:
        raise SpecError(
            f"data.augment 'resized_crop' needs image examples (C x H x W), but this data's "
            f"examples have shape {shape}; leave it out (crop and flip act on signals too).")
    moving = [op for op in ops if op in ("crop", "flip")]
    if moving and len(shape) == 1:
        return (f"data.augment {' and '.join(moving)} on flat examples of {shape[0]} features "
                "treat them as one signal (shifted or reversed along the features): right for a "
                "1-D signal, a shuffle of columns for a table of unrelated features.")
    return None


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
