"""Batch augmentation on the batch's own device: random crop and random flip.

Inputs are (N, C, H, W) images, (N, C, L) signals or (N, D) flat features (treated as one
signal of length D). Both ops act on the spatial axes, so:

* ``crop``: pad the spatial axes (H and W, or L) with ``crop_padding`` zeros on each side and
  cut a window of the original size at a random offset per example. Padding 0 is the identity.
* ``flip``: reverse the last axis (W for images: a horizontal flip; L for signals: time
  reversal) of each example with probability 1/2.

Randomness comes only from ``generator`` (a CPU torch.Generator), drawn on the CPU and moved to
the batch's device, so the result depends only on the generator's state and not on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


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


def augment_batch(
    x: torch.Tensor, ops: Sequence[str], crop_padding: int, generator: torch.Generator
) -> torch.Tensor:
    """Apply ``ops`` ("crop", "flip") in order to batch ``x``; ``x`` itself is never modified.

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
        else:
            raise ValueError(f"unknown augmentation {op!r}; use 'crop' or 'flip'")
    return x
