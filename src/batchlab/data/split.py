"""Deterministic hold-out split, training-set limit and per-channel/per-feature normalisation."""

from __future__ import annotations

import math

import torch

from batchlab.data.fileio import fail


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices of a random hold-out of ceil(n * val_fraction) examples.

    Seeded by ``seed`` alone, so the same spec always holds out the same examples. The train
    indices come in random order.
    """
    # ceil like scikit-learn's train_test_split; the epsilon keeps 0.2 * 1000 from becoming 201
    n_val = max(1, math.ceil(n * val_fraction - 1e-9))
    if n_val >= n:
        problem = f"leaves no training examples out of {n} (val_fraction holds out {n_val})"
        raise fail("data.val_fraction", problem, "lower data.val_fraction or use more data")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_val:], perm[:n_val]


def limit_indices(n: int, limit: int | None, seed: int) -> torch.Tensor | None:
    """Positions of at most ``limit`` of ``n`` training examples, or None to keep all.

    Drawn at random (a class-sorted set such as an image folder must not lose whole classes)
    but deterministically from ``seed``, and a smaller limit gives a subset of a larger one.
    """
    if limit is None or limit >= n:
        return None
    # seed + 1: not the very permutation split_indices drew from the same seed
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))[:limit]


def normalize(train_x: torch.Tensor, val_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardise both parts with mean/std computed on ``train_x`` only (no leak from val).

    Per channel (dim 1, over examples and positions) for images (N, C, H, W) and 1-D signals
    (N, C, L); per feature for flat inputs (N, D). Tabular features come in unrelated units
    (a wine's alcohol % next to its proline mg/L), so one mean/std for all of them leaves the
    small-valued features nearly constant: the wine set reaches 0.67 val accuracy that way and
    0.97 per feature. A constant channel or feature (std 0) is only centred. Works in place:
    callers pass tensors they own.
    """
    dims = (0, *range(2, train_x.dim()))  # (0,) for (N, D): every feature on its own
    std, mean = torch.std_mean(train_x, dim=dims, keepdim=True, correction=0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return train_x.sub_(mean).div_(std), val_x.sub_(mean).div_(std)


def limit_and_normalize(
    train_x: torch.Tensor, train_y: torch.Tensor, val_x: torch.Tensor, limit: int | None,
    seed: int, normalize_inputs: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The last steps every data source shares once it has a train/validation split: keep at
    most ``limit`` training examples (``limit_indices``), then standardise with training
    statistics when ``normalize_inputs``. The tensors must be this call's own copies (the
    normalisation works in place)."""
    keep = limit_indices(len(train_y), limit, seed)
    if keep is not None:
        train_x, train_y = train_x[keep], train_y[keep]
    if normalize_inputs:
        train_x, val_x = normalize(train_x, val_x)
    return train_x, train_y, val_x
