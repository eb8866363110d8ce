"""augment_batch: random crop and flip, vectorised, deterministic given the generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from batchlab.data import augment_batch


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(16, 3, 8, 10), (16, 2, 20), (16, 12)])
@pytest.mark.parametrize("ops", [["crop"], ["flip"], ["crop", "flip"], ["flip", "crop"]])
def test_shape_dtype_kept_and_deterministic(shape: tuple[int, ...], ops: list[str]) -> None:
    x = torch.randn(shape)
    before = x.clone()
    a = augment_batch(x, ops, 2, gen(5))
    b = augment_batch(x, ops, 2, gen(5))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert torch.equal(a, b)
    assert not torch.equal(a, augment_batch(x, ops, 2, gen(6)))
    assert torch.equal(x, before)  # the input batch is never modified


def test_crop_with_padding_zero_is_identity() -> None:
    x = torch.randn(8, 3, 6, 6)
    assert torch.equal(augment_batch(x, ["crop"], 0, gen()), x)


def test_crop_matches_a_per_example_reference() -> None:
    x, p = torch.randn(10, 3, 7, 9), 3
    out = augment_batch(x, ["crop"], p, gen(1))
    offsets = torch.randint(0, 2 * p + 1, (2, 10), generator=gen(1))  # the same draws
    padded = F.pad(x, (p, p, p, p))
    for i in range(10):
        dy, dx = offsets[:, i].tolist()
        assert torch.equal(out[i], padded[i, :, dy : dy + 7, dx : dx + 9])


def test_crop_of_signals_shifts_along_length() -> None:
    x, p = torch.arange(2 * 1 * 6, dtype=torch.float32).view(2, 1, 6), 2
    out = augment_batch(x, ["crop"], p, gen(3))
    (offsets,) = torch.randint(0, 2 * p + 1, (1, 2), generator=gen(3))
    padded = F.pad(x, (p, p))
    for i in range(2):
        assert torch.equal(out[i], padded[i, :, offsets[i] : offsets[i] + 6])


@pytest.mark.parametrize("shape", [(64, 3, 5, 4), (64, 2, 9)])
def test_flip_mirrors_a_random_half_exactly(shape: tuple[int, ...]) -> None:
    x = torch.randn(shape)
    out = augment_batch(x, ["flip"], 4, gen(2))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert 16 < sum(flipped) < 48  # about half, per example
    chosen = torch.rand(64, generator=gen(2)) < 0.5
    assert flipped == chosen.tolist()


def test_bad_input_rank() -> None:
    with pytest.raises(ValueError, match="augment_batch needs"):
        augment_batch(torch.zeros(4), ["flip"], 1, gen())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_result_on_cuda_as_on_cpu() -> None:
    x = torch.randn(32, 3, 8, 8)
    cpu = augment_batch(x, ["crop", "flip"], 2, gen(9))
    cuda = augment_batch(x.cuda(), ["crop", "flip"], 2, gen(9))
    assert cuda.device.type == "cuda" and torch.equal(cuda.cpu(), cpu)


def test_resized_crop_is_deterministic_and_stretches_a_sub_box():
    x = torch.arange(4 * 3 * 16 * 16, dtype=torch.float32).view(4, 3, 16, 16)
    a = augment_batch(x, ["resized_crop"], 0, gen(1))
    assert a.shape == x.shape and torch.equal(a, augment_batch(x, ["resized_crop"], 0, gen(1)))
    assert not torch.equal(a, augment_batch(x, ["resized_crop"], 0, gen(2)))
    for i in range(4):  # a box of the image stretched: values stay within the image's range,
        # and a box smaller than the image spans a narrower range of its (increasing) pixels
        assert x[i].min() <= a[i].min() and a[i].max() <= x[i].max()
        assert a[i].max() - a[i].min() < x[i].max() - x[i].min()


def test_resized_crop_needs_images():
    with pytest.raises(ValueError, match="resized_crop needs images"):
        augment_batch(torch.randn(4, 2, 9), ["resized_crop"], 0, gen())
